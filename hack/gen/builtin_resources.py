#!/usr/bin/env python3
"""Derives rkube's table of built-in API resources from upstream v1.36's
discovery documents (../shared/reference/discovery-v1.36) and writes
apiserver/src/resources/builtin.json, which is committed: the product never
reads ../shared. Run it again only when moving to a new upstream version.

Each entry: group, version, kind, resource (plural), singular, namespaced,
verbs, shortNames, categories, subresources [{name, kind, group, version, verbs}].
Groups keep upstream's order, and versions within a group are listed
preferred first.
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
ref = os.path.join(repo, "..", "shared", "reference", "discovery-v1.36")
out = os.path.join(repo, "apiserver", "src", "resources", "builtin.json")


def entries(doc):
    for g in doc["items"]:
        group = g["metadata"].get("name", "")
        for v in g["versions"]:
            for r in v["resources"]:
                subs = []
                for s in r.get("subresources", []) or []:
                    rk = s.get("responseKind") or {}
                    subs.append({
                        "name": s["subresource"],
                        "group": rk.get("group", ""),
                        "version": rk.get("version", ""),
                        "kind": rk.get("kind", ""),
                        "verbs": s.get("verbs", []),
                    })
                yield {
                    "group": group,
                    "version": v["version"],
                    "kind": r["responseKind"]["kind"],
                    "resource": r["resource"],
                    "singular": r.get("singularResource", ""),
                    "namespaced": r["scope"] == "Namespaced",
                    "verbs": r.get("verbs", []),
                    "shortNames": r.get("shortNames", []) or [],
                    "categories": r.get("categories", []) or [],
                    "subresources": subs,
                }


def main():
    items = []
    for name in ("aggregated-api.json", "aggregated-apis.json"):
        with open(os.path.join(ref, name)) as f:
            items.extend(entries(json.load(f)))
    with open(out, "w") as f:
        json.dump(items, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(items)} resources to {os.path.relpath(out, repo)}", file=sys.stderr)


if __name__ == "__main__":
    main()
