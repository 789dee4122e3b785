#!/usr/bin/env python3
"""Derives the typed-decoding schema of the built-in kinds from upstream
v1.36's OpenAPI v2 document (../shared/reference/openapi-v1.36/swagger.json)
and writes apiserver/src/schema/schema.json, which is committed: the product
never reads ../shared. Run it again only when moving to a new upstream
version.

kube-apiserver decodes a create/update body into the kind's Go struct; the
OpenAPI document is generated from those structs, so it names every JSON
field of every struct and its type. The table keeps exactly that:

  kinds:        "<apiVersion>/<Kind>" (e.g. "apps/v1/Deployment", "v1/Pod")
                -> definition name, from x-kubernetes-group-version-kind.
  definitions:  definition name -> one of
                  {"fields": {name: type, ...}, "required": [...]}
                      a struct; "required" is omitted when empty;
                  {"special": "quantity" | "int-or-string" | "time" |
                              "micro-time" | "any"}
                      a type with its own JSON decoding (resource.Quantity,
                      intstr.IntOrString, metav1.Time, metav1.MicroTime,
                      and RawExtension, FieldsV1 and apiextensions JSON,
                      which hold any JSON);
                  {"special": "schema-or-bool" | "schema-or-array" |
                              "schema-or-string-array", "of": definition}
                      apiextensions' JSONSchemaPropsOr* wrappers, which
                      decode their content with a second, lenient decoder.

A field's type is a string:
  "string", "byte" (base64 []byte), "int32", "int64", "boolean", "double",
  "[]<type>" (array), "map[string]<type>" (additionalProperties), or a
  definition name; optionally followed by "|<Go type>" when the Go type
  upstream names in error messages is a named type the document does not
  show (v1.ResourceList, v1.ExtraValue).

Only definitions reachable from a kind are kept.
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
ref = os.path.join(repo, "..", "shared", "reference", "openapi-v1.36", "swagger.json")
out = os.path.join(repo, "apiserver", "src", "schema", "schema.json")

PREFIX = "#/definitions/"
APIEXT = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."

# Types whose Go implementation has its own UnmarshalJSON.
SPECIAL = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"special": "quantity"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"special": "int-or-string"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"special": "time"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": {"special": "micro-time"},
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {"special": "any"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": {"special": "any"},
    APIEXT + "JSON": {"special": "any"},
    APIEXT + "JSONSchemaPropsOrBool": {"special": "schema-or-bool", "of": APIEXT + "JSONSchemaProps"},
    APIEXT + "JSONSchemaPropsOrArray": {"special": "schema-or-array", "of": APIEXT + "JSONSchemaProps"},
    APIEXT + "JSONSchemaPropsOrStringArray": {"special": "schema-or-string-array", "of": APIEXT + "JSONSchemaProps"},
}

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def ref_name(schema):
    r = schema.get("$ref", "")
    return r[len(PREFIX):] if r.startswith(PREFIX) else None


def type_of(prop, where):
    """The type string of a property (or of array items / map values)."""
    target = ref_name(prop)
    if target:
        return target
    t = prop.get("type")
    fmt = prop.get("format")
    if t == "string":
        if fmt == "byte":
            return "byte"
        if fmt not in (None, ""):
            sys.exit(f"{where}: unexpected string format {fmt!r}")
        return "string"
    if t == "integer":
        if fmt not in ("int32", "int64"):
            sys.exit(f"{where}: unexpected integer format {fmt!r}")
        return fmt
    if t == "number":
        if fmt != "double":
            sys.exit(f"{where}: unexpected number format {fmt!r}")
        return "double"
    if t == "boolean":
        return "boolean"
    if t == "array":
        return "[]" + type_of(prop.get("items", {}), where + "[]")
    if t == "object" and "additionalProperties" in prop:
        return "map[string]" + type_of(prop["additionalProperties"], where + "{}")
    sys.exit(f"{where}: unexpected property shape {prop!r}")


def go_override(definition, field, typ):
    """The Go type upstream prints for a field whose Go type is named."""
    if typ == "map[string]" + QUANTITY and (
        definition.startswith("io.k8s.api.core.v1.") or definition == "io.k8s.api.node.v1.Overhead"
    ):
        return "v1.ResourceList"
    if field == "extra" and typ == "map[string][]string":
        return "map[string]v1.ExtraValue"
    return None


def referenced(typ):
    while True:
        if typ.startswith("[]"):
            typ = typ[2:]
        elif typ.startswith("map[string]"):
            typ = typ[len("map[string]"):]
        else:
            break
    return typ if "." in typ else None


def main():
    with open(ref) as f:
        swagger = json.load(f)
    defs = swagger["definitions"]

    kinds = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []) or []:
            api_version = gvk["version"] if not gvk["group"] else f'{gvk["group"]}/{gvk["version"]}'
            kinds[f'{api_version}/{gvk["kind"]}'] = name

    table = {}
    pending = sorted(set(kinds.values()))
    while pending:
        name = pending.pop()
        if name in table:
            continue
        if name not in defs:
            sys.exit(f"reference to missing definition {name}")
        if name in SPECIAL:
            entry = dict(SPECIAL[name])
            if "of" in entry:
                pending.append(entry["of"])
            table[name] = entry
            continue
        d = defs[name]
        if d.get("type") not in (None, "object") or ("properties" not in d and d.get("type") != "object"):
            sys.exit(f"{name}: not a struct and not a known special type: {d!r}")
        fields = {}
        for field, prop in sorted((d.get("properties") or {}).items()):
            typ = type_of(prop, f"{name}.{field}")
            target = referenced(typ)
            if target:
                pending.append(target)
            override = go_override(name, field, typ)
            fields[field] = typ + ("|" + override if override else "")
        entry = {"fields": fields}
        if d.get("required"):
            entry["required"] = sorted(d["required"])
        table[name] = entry

    with open(out, "w") as f:
        f.write('{\n"kinds":{\n')
        items = sorted(kinds.items())
        f.write(",\n".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in items))
        f.write('\n},\n"definitions":{\n')
        f.write(
            ",\n".join(
                f"{json.dumps(k)}:{json.dumps(v, separators=(',', ':'), sort_keys=True)}"
                for k, v in sorted(table.items())
            )
        )
        f.write("\n}}\n")
    print(
        f"wrote {len(kinds)} kinds and {len(table)} definitions to {os.path.relpath(out, repo)} "
        f"({os.path.getsize(out)} bytes)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
