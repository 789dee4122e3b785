#!/usr/bin/env python3
"""Derives the strategic-merge-patch metadata of the built-in kinds from
upstream v1.36's OpenAPI v2 document (../shared/reference/openapi-v1.36/
swagger.json) and writes apiserver/src/patch/patch_meta.json, which is
committed: the product never reads ../shared. Run it again only when moving
to a new upstream version.

Output:
  kinds:        "<apiVersion>/<Kind>" (e.g. "apps/v1/Deployment", "v1/Pod")
                -> definition name, from x-kubernetes-group-version-kind.
  definitions:  definition name -> {field -> meta}. A field's meta has
                  type           "struct" (a $ref to another definition),
                                 "array" or "map";
                  ref            the definition of a struct field;
                  items          the definition of an array's elements;
                  values         the definition of a map's values;
                  patchStrategy, patchMergeKey   (x-kubernetes-patch-*);
                  listType, listMapKeys          (x-kubernetes-list-*).

Only what the patch engine needs to walk a document is kept: a definition is
kept when one of its fields carries patch or list metadata, or leads to a
kept definition. Everything else (scalars, maps of scalars, references to
leaf types such as Quantity or Time) behaves like an unknown field: maps
merge, lists are replaced. Upstream reads the same facts from Go struct tags
(`patchStrategy`, `patchMergeKey`), which is what openapi-gen turns into the
x-kubernetes-patch-* extensions.
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
ref = os.path.join(repo, "..", "shared", "reference", "openapi-v1.36", "swagger.json")
out = os.path.join(repo, "apiserver", "src", "patch", "patch_meta.json")

PREFIX = "#/definitions/"


def ref_name(schema):
    r = schema.get("$ref", "")
    return r[len(PREFIX):] if r.startswith(PREFIX) else None


def raw_field(prop):
    """The field's meta before pruning, or None for a scalar."""
    meta = {}
    for src, dst in (
        ("x-kubernetes-patch-strategy", "patchStrategy"),
        ("x-kubernetes-patch-merge-key", "patchMergeKey"),
        ("x-kubernetes-list-type", "listType"),
        ("x-kubernetes-list-map-keys", "listMapKeys"),
    ):
        if src in prop:
            meta[dst] = prop[src]
    target = ref_name(prop)
    if target:
        meta["type"] = "struct"
        meta["ref"] = target
    elif prop.get("type") == "array":
        meta["type"] = "array"
        item = ref_name(prop.get("items", {}))
        if item:
            meta["items"] = item
    elif "additionalProperties" in prop:
        meta["type"] = "map"
        value = ref_name(prop["additionalProperties"])
        if value:
            meta["values"] = value
    else:
        return None
    return meta


def target_of(meta):
    return meta.get("ref") or meta.get("items") or meta.get("values")


def main():
    with open(ref) as f:
        swagger = json.load(f)
    defs = swagger["definitions"]

    raw = {}
    for name, d in defs.items():
        fields = {}
        for field, prop in (d.get("properties") or {}).items():
            meta = raw_field(prop)
            if meta is not None:
                fields[field] = meta
        raw[name] = fields

    def own_meta(meta):
        return any(k in meta for k in ("patchStrategy", "patchMergeKey", "listType", "listMapKeys"))

    # Fixpoint: a definition is kept when a field has metadata of its own or
    # leads to a kept definition.
    kept = set()
    changed = True
    while changed:
        changed = False
        for name, fields in raw.items():
            if name in kept:
                continue
            if any(own_meta(m) or target_of(m) in kept for m in fields.values()):
                kept.add(name)
                changed = True

    definitions = {}
    for name in sorted(kept):
        fields = {}
        for field, meta in raw[name].items():
            if not (own_meta(meta) or target_of(meta) in kept):
                continue
            meta = dict(meta)
            for key in ("ref", "items", "values"):
                if key in meta and meta[key] not in kept:
                    del meta[key]
            fields[field] = meta
        definitions[name] = fields

    kinds = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []) or []:
            api_version = gvk["version"] if not gvk["group"] else f'{gvk["group"]}/{gvk["version"]}'
            kinds[f'{api_version}/{gvk["kind"]}'] = name

    table = {"kinds": dict(sorted(kinds.items())), "definitions": definitions}
    with open(out, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    print(
        f"wrote {len(kinds)} kinds and {len(definitions)} definitions to {os.path.relpath(out, repo)} "
        f"({os.path.getsize(out)} bytes)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
