#!/usr/bin/env python3
"""Derives the OpenAPI documents rkube serves from upstream v1.36's published
ones (../shared/reference/openapi-v1.36: swagger.json for v2, v3/*.json for
v3) and writes them, gzip-compressed, under apiserver/src/openapi/data/,
with the generated table apiserver/src/openapi/data/mod.rs that embeds them.
The output is committed: the product never reads ../shared. Run it again
when moving to a new upstream version or when the served resources
(apiserver/src/resources/builtin.json) change.

What is kept: only what rkube serves, i.e. the group-versions and resources
of builtin.json.
  v3: one document per served group-version ("api/v1", "apis/apps/v1"),
      per group with a served version ("apis/apps"), and the roots "api",
      "apis" and "version". Documents of unserved group-versions (alpha,
      beta) and endpoints rkube does not have (logs, openid) are dropped.
  v2: the paths of served resources and of the discovery and version
      endpoints; the definitions and shared parameters those paths
      reference, transitively; x-kubernetes-group-version-kind lists of
      shared definitions keep only served group-versions.

Each document is serialized as compact JSON with sorted keys; its hash is
kube-openapi's: sha512 of the JSON bytes, upper-case hex (the ETag, and
the ?hash= of /openapi/v3 URLs). v2 is also written as the protobuf
encoding of gnostic's openapi.v2.Document (OpenAPIv2.proto), which is what
kubectl asks for; vendor extensions and other `Any` values carry their
value as YAML text (`Any.yaml`), written here as JSON, which is valid YAML.
"""
import gzip
import hashlib
import json
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
ref = os.path.join(repo, "..", "shared", "reference", "openapi-v1.36")
builtin = os.path.join(repo, "apiserver", "src", "resources", "builtin.json")
out = os.path.join(repo, "apiserver", "src", "openapi", "data")


# ---------------------------------------------------------------- served set

def served_table():
    """(group, version) -> set of "resource" and "resource/subresource"."""
    with open(builtin) as f:
        items = json.load(f)
    served = {}
    for e in items:
        names = served.setdefault((e["group"], e["version"]), set())
        names.add(e["resource"])
        for s in e["subresources"]:
            names.add(e["resource"] + "/" + s["name"])
    return served


def classify(path):
    """Splits a URL path (without the leading "/") into what it serves:
    ("gv", group, version, rest), ("group", group), ("root", name) or
    ("other", path)."""
    segs = [s for s in path.strip("/").split("/") if s]
    if segs[:1] == ["api"]:
        if len(segs) == 1:
            return ("root", "api")
        return ("gv", "", segs[1], segs[2:])
    if segs[:1] == ["apis"]:
        if len(segs) == 1:
            return ("root", "apis")
        if len(segs) == 2:
            return ("group", segs[1])
        return ("gv", segs[1], segs[2], segs[3:])
    if segs == ["version"]:
        return ("root", "version")
    return ("other", path)


def resource_of(rest):
    """The resource (and subresource) a group-version-relative path names,
    or None for the group-version root."""
    if rest[:1] == ["watch"]:
        rest = rest[1:]
    if len(rest) > 2 and rest[0] == "namespaces" and rest[1] == "{namespace}":
        rest = rest[2:]
    if not rest:
        return None
    if len(rest) >= 3:
        return rest[0] + "/" + rest[2]
    return rest[0]


def is_served(path, served):
    kind = classify(path)
    if kind[0] == "root":
        return True
    if kind[0] == "group":
        return any(g == kind[1] for g, _ in served)
    if kind[0] == "gv":
        names = served.get((kind[1], kind[2]))
        if names is None:
            return False
        res = resource_of(kind[3])
        return res is None or res in names
    return False


def filter_gvks(value, served):
    kept = [g for g in value if (g.get("group", ""), g.get("version", "")) in served]
    return kept


# ---------------------------------------------------------------- JSON, hash

def to_json(doc):
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def etag(data):
    return hashlib.sha512(data).hexdigest().upper()


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---------------------------------------------------------------- v2 filter

def refs(value, acc):
    """Every "$ref" string under value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str):
                acc.append(v)
            else:
                refs(v, acc)
    elif isinstance(value, list):
        for v in value:
            refs(v, acc)
    return acc


def filter_v2(doc, served):
    paths = {p: item for p, item in doc["paths"].items() if is_served(p, served)}
    definitions, parameters = {}, {}
    todo = refs(paths, [])
    while todo:
        r = todo.pop()
        if r.startswith("#/definitions/"):
            name = r[len("#/definitions/"):]
            if name not in definitions:
                definitions[name] = doc["definitions"][name]
                todo.extend(refs(definitions[name], []))
        elif r.startswith("#/parameters/"):
            name = r[len("#/parameters/"):]
            if name not in parameters:
                parameters[name] = doc["parameters"][name]
                todo.extend(refs(parameters[name], []))
        else:
            raise SystemExit(f"unexpected $ref {r}")
    for d in definitions.values():
        gvks = d.get("x-kubernetes-group-version-kind")
        if isinstance(gvks, list):
            kept = filter_gvks(gvks, served)
            if kept:
                d["x-kubernetes-group-version-kind"] = kept
            else:
                del d["x-kubernetes-group-version-kind"]
    out_doc = dict(doc)
    out_doc["paths"] = paths
    out_doc["definitions"] = definitions
    out_doc["parameters"] = parameters
    return out_doc


# ---------------------------------------------------------------- protobuf
#
# Hand-written proto3 wire encoding of gnostic's openapi.v2 messages. Field
# numbers are those of OpenAPIv2.proto. proto3 leaves out scalar fields at
# their default value; a set oneof member and a present sub-message are
# always written.

def varint(n):
    out = bytearray()
    if n < 0:
        n += 1 << 64
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wire):
    return varint(field << 3 | wire)


def f_msg(field, body):
    return tag(field, 2) + varint(len(body)) + body


def f_str(field, s):
    if s == "" or s is None:
        return b""
    data = s.encode()
    return tag(field, 2) + varint(len(data)) + data


def f_strs(field, values):
    return b"".join(tag(field, 2) + varint(len(v.encode())) + v.encode() for v in values)


def f_bool(field, b, always=False):
    if not b and not always:
        return b""
    return tag(field, 0) + varint(1 if b else 0)


def f_int(field, n):
    return tag(field, 0) + varint(int(n)) if n else b""


def f_double(field, x):
    return tag(field, 1) + struct.pack("<d", float(x)) if x else b""


def any_msg(value):
    """gnostic's Any: the value as YAML text in field 2 (JSON is YAML)."""
    return f_str(2, json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False))


def named_any(field, name, value):
    return f_msg(field, f_str(1, name) + f_msg(2, any_msg(value)))


def extensions(field, obj):
    return b"".join(named_any(field, k, v) for k, v in obj.items() if k.startswith("x-"))


def check_keys(obj, allowed, what):
    for k in obj:
        if k not in allowed and not k.startswith("x-"):
            raise SystemExit(f"{what}: unsupported key {k!r}")


SCHEMA_KEYS = {
    "$ref": (1, "str"), "format": (2, "str"), "title": (3, "str"), "description": (4, "str"),
    "default": (5, "any"), "multipleOf": (6, "double"), "maximum": (7, "double"),
    "exclusiveMaximum": (8, "bool"), "minimum": (9, "double"), "exclusiveMinimum": (10, "bool"),
    "maxLength": (11, "int"), "minLength": (12, "int"), "pattern": (13, "str"), "maxItems": (14, "int"),
    "minItems": (15, "int"), "uniqueItems": (16, "bool"), "maxProperties": (17, "int"),
    "minProperties": (18, "int"), "required": (19, "strs"), "enum": (20, "anys"),
    "additionalProperties": (21, "addl"), "type": (22, "type"), "items": (23, "items"),
    "allOf": (24, "schemas"), "properties": (25, "props"), "discriminator": (26, "str"),
    "readOnly": (27, "bool"), "example": (30, "any"),
}


def encode_field(field, kind, value):
    if kind == "str":
        return f_str(field, value)
    if kind == "strs":
        return f_strs(field, value)
    if kind == "bool":
        return f_bool(field, value)
    if kind == "int":
        return f_int(field, value)
    if kind == "double":
        return f_double(field, value)
    if kind == "any":
        return f_msg(field, any_msg(value))
    if kind == "anys":
        return b"".join(f_msg(field, any_msg(v)) for v in value)
    if kind == "addl":
        # AdditionalPropertiesItem: oneof schema = 1, boolean = 2.
        if isinstance(value, bool):
            return f_msg(field, f_bool(2, value, always=True))
        return f_msg(field, f_msg(1, schema(value)))
    if kind == "type":
        # TypeItem: repeated string value = 1.
        return f_msg(field, f_strs(1, value if isinstance(value, list) else [value]))
    if kind == "items":
        # ItemsItem: repeated Schema schema = 1.
        values = value if isinstance(value, list) else [value]
        return f_msg(field, b"".join(f_msg(1, schema(v)) for v in values))
    if kind == "schemas":
        return b"".join(f_msg(field, schema(v)) for v in value)
    if kind == "props":
        # Properties: repeated NamedSchema additional_properties = 1.
        return f_msg(field, b"".join(f_msg(1, f_str(1, k) + f_msg(2, schema(v))) for k, v in value.items()))
    raise SystemExit(f"unknown field kind {kind}")


def schema(s):
    check_keys(s, SCHEMA_KEYS, "schema")
    parts = []
    for key, (field, kind) in sorted(SCHEMA_KEYS.items(), key=lambda kv: kv[1][0]):
        if key in s:
            parts.append(encode_field(field, kind, s[key]))
    parts.append(extensions(31, s))
    return b"".join(parts)


# Non-body parameter sub-schemas: the fields Kubernetes' document uses,
# with their numbers in each message.
NON_BODY = {
    # in: (oneof field in NonBodyParameter, {key: (field, kind)}, extension field)
    "header": (1, {"required": (1, "bool"), "in": (2, "str"), "description": (3, "str"), "name": (4, "str"),
                   "type": (5, "str"), "format": (6, "str"), "uniqueItems": (19, "bool")}, 22),
    "query": (3, {"required": (1, "bool"), "in": (2, "str"), "description": (3, "str"), "name": (4, "str"),
                  "allowEmptyValue": (5, "bool"), "type": (6, "str"), "format": (7, "str"),
                  "uniqueItems": (20, "bool")}, 23),
    "path": (4, {"required": (1, "bool"), "in": (2, "str"), "description": (3, "str"), "name": (4, "str"),
                 "type": (5, "str"), "format": (6, "str"), "uniqueItems": (19, "bool")}, 22),
}


def parameter(p):
    """Parameter: oneof body_parameter = 1, non_body_parameter = 2."""
    where = p.get("in")
    if where == "body":
        check_keys(p, {"description", "name", "in", "required", "schema"}, "body parameter")
        body = (f_str(1, p.get("description")) + f_str(2, p.get("name")) + f_str(3, "body")
                + f_bool(4, p.get("required", False)))
        if "schema" in p:
            body += f_msg(5, schema(p["schema"]))
        body += extensions(6, p)
        return f_msg(1, body)
    if where not in NON_BODY:
        raise SystemExit(f"unsupported parameter location {where!r}")
    oneof, fields, ext = NON_BODY[where]
    check_keys(p, fields, f"{where} parameter")
    sub = b"".join(encode_field(f, k, p[key]) for key, (f, k) in sorted(fields.items(), key=lambda kv: kv[1][0])
                   if key in p)
    sub += extensions(ext, p)
    return f_msg(2, f_msg(oneof, sub))


def parameters_item(p):
    """ParametersItem: oneof parameter = 1, json_reference = 2."""
    if "$ref" in p:
        check_keys(p, {"$ref", "description"}, "parameter reference")
        return f_msg(2, f_str(1, p["$ref"]) + f_str(2, p.get("description")))
    return f_msg(1, parameter(p))


def response(r):
    """Response: description = 1, schema = 2 (SchemaItem: oneof schema = 1)."""
    check_keys(r, {"description", "schema"}, "response")
    body = f_str(1, r.get("description"))
    if "schema" in r:
        body += f_msg(2, f_msg(1, schema(r["schema"])))
    return body + extensions(5, r)


def operation(op):
    check_keys(op, {"tags", "summary", "description", "operationId", "produces", "consumes", "parameters",
                    "responses", "schemes", "deprecated"}, "operation")
    body = (f_strs(1, op.get("tags", [])) + f_str(2, op.get("summary")) + f_str(3, op.get("description"))
            + f_str(5, op.get("operationId")) + f_strs(6, op.get("produces", []))
            + f_strs(7, op.get("consumes", [])))
    body += b"".join(f_msg(8, parameters_item(p)) for p in op.get("parameters", []))
    # Responses: repeated NamedResponseValue response_code = 1; ResponseValue:
    # oneof response = 1.
    codes = b"".join(f_msg(1, f_str(1, code) + f_msg(2, f_msg(1, response(r))))
                     for code, r in op.get("responses", {}).items())
    body += f_msg(9, codes)
    body += f_strs(10, op.get("schemes", [])) + f_bool(11, op.get("deprecated", False))
    return body + extensions(13, op)


PATH_OPS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def path_item(item):
    check_keys(item, set(PATH_OPS) | {"$ref", "parameters"}, "path item")
    body = f_str(1, item.get("$ref"))
    for name, field in sorted(PATH_OPS.items(), key=lambda kv: kv[1]):
        if name in item:
            body += f_msg(field, operation(item[name]))
    body += b"".join(f_msg(9, parameters_item(p)) for p in item.get("parameters", []))
    return body + extensions(10, item)


def security_scheme(s):
    """SecurityDefinitionsItem; Kubernetes only has apiKey (oneof field 2)."""
    if s.get("type") != "apiKey":
        raise SystemExit(f"unsupported security scheme {s}")
    check_keys(s, {"type", "name", "in", "description"}, "security scheme")
    body = f_str(1, s["type"]) + f_str(2, s.get("name")) + f_str(3, s.get("in")) + f_str(4, s.get("description"))
    return f_msg(2, body + extensions(5, s))


def document(doc):
    """openapi.v2.Document."""
    check_keys(doc, {"swagger", "info", "host", "basePath", "schemes", "consumes", "produces", "paths",
                     "definitions", "parameters", "security", "securityDefinitions"}, "document")
    info = doc.get("info", {})
    check_keys(info, {"title", "version", "description"}, "info")
    body = f_str(1, doc["swagger"])
    body += f_msg(2, f_str(1, info.get("title")) + f_str(2, info.get("version")) + f_str(3, info.get("description"))
                  + extensions(7, info))
    body += f_str(3, doc.get("host")) + f_str(4, doc.get("basePath"))
    body += f_strs(5, doc.get("schemes", [])) + f_strs(6, doc.get("consumes", [])) + f_strs(7, doc.get("produces", []))
    # Paths: repeated NamedPathItem path = 2.
    body += f_msg(8, b"".join(f_msg(2, f_str(1, p) + f_msg(2, path_item(i))) for p, i in doc["paths"].items())
                  + extensions(1, doc["paths"]))
    # Definitions / ParameterDefinitions: repeated Named* additional_properties = 1.
    body += f_msg(9, b"".join(f_msg(1, f_str(1, n) + f_msg(2, schema(s))) for n, s in doc["definitions"].items()))
    if doc.get("parameters"):
        body += f_msg(10, b"".join(f_msg(1, f_str(1, n) + f_msg(2, parameter(p)))
                                   for n, p in doc["parameters"].items()))
    # SecurityRequirement: repeated NamedStringArray additional_properties = 1;
    # StringArray: repeated string value = 1.
    for req in doc.get("security", []):
        body += f_msg(12, b"".join(f_msg(1, f_str(1, n) + f_msg(2, f_strs(1, v))) for n, v in req.items()))
    if "securityDefinitions" in doc:
        body += f_msg(13, b"".join(f_msg(1, f_str(1, n) + f_msg(2, security_scheme(s)))
                                   for n, s in doc["securityDefinitions"].items()))
    return body + extensions(16, doc)


def sorted_doc(doc):
    """The document with every object's keys sorted, as its JSON is."""
    return json.loads(to_json(doc))


# ---------------------------------------------------------------- output

def v3_path(filename):
    """"apis__apps__v1_openapi.json" -> "apis/apps/v1"."""
    return filename[: -len("_openapi.json")].replace("__", "/")


def rust_name(path):
    return path.replace("/", "__").replace(".", "_")


def main():
    served = served_table()
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        if old.endswith(".gz"):
            os.remove(os.path.join(out, old))
    written = {}

    def write(name, data):
        packed = gz(data)
        with open(os.path.join(out, name), "wb") as f:
            f.write(packed)
        written[name] = (len(data), len(packed))

    v3 = []
    for filename in sorted(os.listdir(os.path.join(ref, "v3"))):
        path = v3_path(filename)
        if not is_served(path, served):
            continue
        with open(os.path.join(ref, "v3", filename)) as f:
            data = to_json(json.load(f))
        name = f"v3_{rust_name(path)}.json.gz"
        write(name, data)
        v3.append((path, etag(data), name))

    v3.sort()
    with open(os.path.join(ref, "swagger.json")) as f:
        v2 = sorted_doc(filter_v2(json.load(f), served))
    v2_json = to_json(v2)
    write("v2.json.gz", v2_json)
    write("v2.pb.gz", document(v2))

    lines = [
        "//! Generated by hack/gen/openapi.py from upstream v1.36's OpenAPI documents,",
        "//! filtered to the resources rkube serves. Do not edit.",
        "",
        "use super::Document;",
        "",
        "/// The OpenAPI v3 documents, by path under `/openapi/v3/`, sorted.",
        "pub static V3: &[Document] = &[",
    ]
    for path, hash_, name in v3:
        lines += [
            "    Document {",
            f'        path: "{path}",',
            f'        hash: "{hash_}",',
            f'        gzip: include_bytes!("{name}"),',
            "    },",
        ]
    lines += [
        "];",
        "",
        "/// The OpenAPI v2 document as JSON; its hash is the ETag of both forms.",
        "pub static V2_JSON: Document = Document {",
        '    path: "v2",',
        f'    hash: "{etag(v2_json)}",',
        '    gzip: include_bytes!("v2.json.gz"),',
        "};",
        "",
        "/// The OpenAPI v2 document as gnostic's `openapi.v2.Document` protobuf.",
        'pub static V2_PROTOBUF: &[u8] = include_bytes!("v2.pb.gz");',
        "",
    ]
    with open(os.path.join(out, "mod.rs"), "w") as f:
        f.write("\n".join(lines))
    raw = sum(r for r, _ in written.values())
    packed = sum(p for _, p in written.values())
    print(f"wrote {len(v3)} v3 documents and v2 (JSON, protobuf) to {os.path.relpath(out, repo)}: "
          f"{raw} bytes, {packed} gzipped", file=sys.stderr)


if __name__ == "__main__":
    main()
