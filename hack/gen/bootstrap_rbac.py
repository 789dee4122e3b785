#!/usr/bin/env python3
"""Derives rkube's bootstrap RBAC policy from upstream v1.36's default
roles and bindings (../shared/reference/bootstrap-rbac-v1.36) and writes
apiserver/src/authz/bootstrap_policy.json, which is committed: the product
never reads ../shared. Run it again only when moving to a new upstream version.

Output: {"clusterRoles": [...], "clusterRoleBindings": [...], "roles": [...],
"roleBindings": [...]}, each object reduced to what the policy defines
(name, namespace, labels, annotations, rules, aggregationRule, roleRef,
subjects), in upstream's order.
"""
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
ref = os.path.join(repo, "..", "shared", "reference", "bootstrap-rbac-v1.36")
out = os.path.join(repo, "apiserver", "src", "authz", "bootstrap_policy.json")

KEEP_META = ("name", "namespace", "labels", "annotations")
KEEP = ("rules", "aggregationRule", "roleRef", "subjects")


def reduce(obj):
    meta = {k: obj["metadata"][k] for k in KEEP_META if k in obj["metadata"]}
    res = {"metadata": meta}
    for k in KEEP:
        if k in obj and obj[k] is not None:
            res[k] = obj[k]
    return res


def load(name):
    with open(os.path.join(ref, name + ".json")) as f:
        return [reduce(o) for o in json.load(f)["items"]]


def main():
    policy = {
        "clusterRoles": load("clusterroles"),
        "clusterRoleBindings": load("clusterrolebindings"),
        "roles": load("roles"),
        "roleBindings": load("rolebindings"),
    }
    with open(out, "w") as f:
        json.dump(policy, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"wrote {out}: " + ", ".join(f"{len(v)} {k}" for k, v in policy.items()))


if __name__ == "__main__":
    main()
