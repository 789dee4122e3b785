#!/usr/bin/env python3
"""Derives the protobuf wire schema of the built-in kinds and writes
apiserver/src/protobuf/schema.json, which is committed (the product never
reads ../shared or the .proto files).

Usage:
  proto_schema.py PROTO_DIR [PROTO_DIR...]
      Reads every *.proto under the directories (upstream's
      k8s.io/api/<group>/<version>/generated.proto, apimachinery's
      meta/v1, runtime, resource and intstr ones, apiextensions-apiserver's
      and kube-aggregator's), in order: a later file may re-open a message
      to add fields (how newer upstream fields are layered over an older
      set). Kinds come from upstream v1.36's OpenAPI document
      (../shared/reference/openapi-v1.36/swagger.json), restricted to the
      group-versions rkube serves (apiserver/src/resources/builtin.json);
      every kind's message must exist, and every JSON field of a reachable
      struct must have a protobuf field (the run fails otherwise, listing
      what is missing).
  proto_schema.py --from-binary GO_BINARY OUT_DIR
      Writes minimal .proto text (messages and fields) for the gzipped
      FileDescriptorProtos that gogo-protobuf registers in a Go binary
      such as kubectl: upstream's compiled generated.proto files.

  proto_schema.py --pointers-from-binary GO_BINARY
      Writes proto_pointers.json (beside this script, committed): for every
      protobuf-tagged Go struct in the binary's reflection data, its JSON
      field names and which of them are pointers to scalars. main() reads it
      (plus POINTERS_EXTRA for fields the binary lacks) for the "p" flag.

The .proto files are upstream's and stay outside the repository.

How schema.json was last regenerated (v1.36):
  proto_schema.py --from-binary /usr/lib/google-cloud-sdk/bin/kubectl.1.33 k133
  proto_schema.py --pointers-from-binary /usr/lib/google-cloud-sdk/bin/kubectl.1.33
  proto_schema.py k133 supp supp136
where k133 holds the descriptors kubectl 1.33 compiled in; supp holds
messages kubectl does not link (apiextensions.k8s.io/v1 and
apiregistration.k8s.io/v1 from upstream's generated.proto, resource.k8s.io/v1
and storage VolumeAttributesClass, admissionregistration MutatingAdmissionPolicy)
and supp136 re-opens messages to add the fields newer than 1.33, read from
upstream kubernetes/kubernetes staging/src/k8s.io/api/{core,storage,resource}/v1
/generated.proto (and apiextensions.k8s.io/v1's from the k8s-pb crate 0.9.0,
whose prost code carries upstream's numbers; it also confirmed the core,
storage and resource numbers). Fields whose numbers were not found stay listed under
"gaps" (the run warns for each); they are not on the wire.

Output (compact JSON):
  {"packages": [<proto package>, ...],
   "kinds": {"<apiVersion>/<Kind>": <message>, ...},
   "messages": {<message>: [[number, "jsonName", type, flags], ...]}}
where <message> is "<package index>.<Name>" (nested: "<i>.Outer.Inner"),
type is a scalar ("string", "int32", "int64", "bool", "double", "float",
"bytes", "uint32", "uint64", ...), a <message>, or "map:<key>:<value>"
(key and value each a scalar or a <message>), and flags is a string of
letters: "r" repeated, "p" a Go pointer (a zero value is meaningful and
kept when decoding; every other zero scalar is what Go's non-pointer field
holds when unset, so it decodes as absent, like JSON's omitempty).
"""
import json
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
swagger = os.path.join(repo, "..", "shared", "reference", "openapi-v1.36", "swagger.json")
builtin = os.path.join(repo, "apiserver", "src", "resources", "builtin.json")
out = os.path.join(repo, "apiserver", "src", "protobuf", "schema.json")

META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# Messages every request or response may need besides the kinds.
EXTRA_ROOTS = [
    META + "Status",
    META + "DeleteOptions",
    META + "WatchEvent",
    META + "PartialObjectMetadata",
    META + "PartialObjectMetadataList",
    META + "APIResourceList",
    "k8s.io.apimachinery.pkg.runtime.Unknown",
]
# Messages with their own JSON form: their fields are kept, but the JSON
# names do not come from OpenAPI.
SPECIAL = {
    META + "Time",
    META + "MicroTime",
    META + "Duration",
    META + "FieldsV1",
    META + "Fields",
    "k8s.io.apimachinery.pkg.api.resource.Quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
}
# Proto field names that differ from the JSON name.
JSON_NAMES = {
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps": {
        "ref": "$ref",
        "schema": "$schema",
        "xKubernetesPreserveUnknownFields": "x-kubernetes-preserve-unknown-fields",
        "xKubernetesEmbeddedResource": "x-kubernetes-embedded-resource",
        "xKubernetesIntOrString": "x-kubernetes-int-or-string",
        "xKubernetesListMapKeys": "x-kubernetes-list-map-keys",
        "xKubernetesListType": "x-kubernetes-list-type",
        "xKubernetesMapType": "x-kubernetes-map-type",
        "xKubernetesValidations": "x-kubernetes-validations",
    },
}

# Scalar fields that are Go pointers (`*int32`, `*bool`, `*string`, ...): set
# by a client only when given, so an explicit zero ("", 0, false) is a value.
# Keyed "<package suffix>.<Message>". Most come from proto_pointers.json,
# read from the Go reflection data of kubectl 1.33 (`--pointers-from-binary`);
# resource.v1 takes resource.v1beta2's (v1 was copied from it). These are the
# fields that binary does not have: newer than 1.33, or in apiextensions and
# kube-aggregator (not linked into kubectl), written from upstream's types.go.
POINTERS_EXTRA = {
    "admissionregistration.v1.MutatingAdmissionPolicySpec": "failurePolicy",
    "core.v1.PodSpec": "hostnameOverride",
    "core.v1.FileKeySelector": "optional",
    "core.v1.PodCertificateProjection": "maxExpirationSeconds",
    "core.v1.ResourceHealth": "message",
    "storage.v1.CSIDriverSpec": "serviceAccountTokenInSecrets preventPodSchedulingIfMissing",
    "resource.v1.Device": "bindsToNode allowMultipleAllocations",
    "resource.v1.DeviceClassSpec": "extendedResourceName",
    "resource.v1.DeviceRequestAllocationResult": "shareID",
    "resource.v1.AllocatedDeviceStatus": "shareID",
    "apiextensions.v1.JSONSchemaProps": "maximum minimum maxLength minLength maxItems minItems maxProperties "
    "minProperties multipleOf x-kubernetes-preserve-unknown-fields x-kubernetes-list-type x-kubernetes-map-type",
    "apiextensions.v1.CustomResourceSubresourceScale": "labelSelectorPath",
    "apiextensions.v1.ServiceReference": "path port",
    "apiextensions.v1.WebhookClientConfig": "url",
    "apiextensions.v1.ValidationRule": "optionalOldSelf reason",
    "apiextensions.v1.CustomResourceDefinitionVersion": "deprecationWarning",
    "apiregistration.v1.ServiceReference": "port",
}
pointers_json = os.path.join(here, "proto_pointers.json")


def load_pointers():
    """POINTERS: the binary's table, resource.v1 aliased to v1beta2, plus
    POINTERS_EXTRA, which must not name a field the binary has as a
    non-pointer."""
    with open(pointers_json) as f:
        data = json.load(f)
    fields = {k: set(v) for k, v in data["fields"].items()}
    table = {k: set(v) for k, v in data["pointers"].items()}
    for k in list(table):
        if k.startswith("resource.v1beta2."):
            table.setdefault("resource.v1." + k[len("resource.v1beta2."):], set()).update(table[k])
    for k, v in POINTERS_EXTRA.items():
        for name in v.split():
            if name in fields.get(k, ()) and name not in table.get(k, ()):
                raise SystemExit("POINTERS_EXTRA %s.%s is not a pointer in the binary" % (k, name))
        table.setdefault(k, set()).update(v.split())
    return {k: " ".join(sorted(v)) for k, v in table.items()}


def go_binary_pointers(binary):
    """Writes proto_pointers.json from a Go binary's reflection data: for
    every struct with protobuf-tagged fields, its JSON field names and
    those whose Go type is a pointer to a scalar. A struct field is
    {name *runtime.name (flags, varint length, name, varint tag length,
    tag), typ *_type, offset}; a struct _type is 48 bytes (kind at 23,
    tflag at 20, name offset at 40), then pkgPath, the fields slice, and
    (tflag uncommon) an uncommonType whose first int32 is the package
    path's offset from the start of .rodata."""
    import struct as st

    data = open(binary, "rb").read()
    phoff, = st.unpack_from("<Q", data, 0x20)
    phnum, = st.unpack_from("<H", data, 0x38)
    segs = []
    for i in range(phnum):
        typ, _, off, vaddr, _, size = st.unpack_from("<IIQQQQ", data, phoff + i * 56)
        if typ == 1:
            segs.append((vaddr, off, size))

    def v2o(v):
        return next((off + v - va for va, off, size in segs if va <= v < va + size), None)

    def o2v(o):
        return next((va + o - off for va, off, size in segs if off <= o < off + size), None)

    shoff, = st.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = st.unpack_from("<HH", data, 0x3C)
    secs = [st.unpack_from("<IIQQQQ", data, shoff + i * 64) for i in range(shnum)]
    strtab = secs[shstrndx][4]
    sec = {data[strtab + s[0]:data.index(b"\0", strtab + s[0])].decode(): s for s in secs}
    base, ro_off, ro_size = sec[".rodata"][3], sec[".rodata"][4], sec[".rodata"][5]

    def varint(o):
        r = s = 0
        while True:
            c = data[o]
            o += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, o

    def rname(o):
        n, p = varint(o + 1)
        name, p, tag = data[p:p + n].decode("latin1"), p + n, ""
        if data[o] & 2:
            t, p = varint(p)
            tag = data[p:p + t].decode("latin1")
        return name, tag

    names = {}
    for m in re.finditer(rb'json:"', data[ro_off:ro_off + ro_size]):
        ts = ro_off + m.start()
        for vl in (1, 2):
            tl, after = varint(ts - vl)
            if after != ts or b'protobuf:"' not in data[ts:ts + tl]:
                continue
            for n in range(1, 64):
                fo = ts - vl - n - 2
                if data[fo + 1] == n and data[fo] & 2 and re.fullmatch(rb"[A-Za-z_]\w*", data[fo + 2:fo + 2 + n]):
                    names[o2v(fo)] = fo
                    break

    def struct_of(fo):
        for k in range(400):
            first = fo - 24 * k
            for back in range(8, 200, 8):
                ptr, ln, cap = st.unpack_from("<QQQ", data, first - back)
                t = first - back - 56
                if ptr != o2v(first) or ln != cap or not k < ln <= 400 or data[t + 23] & 0x1F != 25:
                    continue
                name = rname(v2o(base + st.unpack_from("<i", data, t + 40)[0]))[0]
                name = name[1:] if data[t + 20] & 2 else name
                pkg = rname(v2o(base + st.unpack_from("<i", data, t + 80)[0]))[0] if data[t + 20] & 1 else ""
                return pkg, name.split(".", 1)[-1]
        return None, None

    scalars = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 24}
    fields, pointers = {}, {}
    ro = data[ro_off:ro_off + ro_size // 8 * 8]
    for i, (v,) in enumerate(st.iter_unpack("<Q", ro)):
        if v not in names:
            continue
        fo = ro_off + i * 8
        _, tag = rname(names[v])
        pkg, sname = struct_of(fo)
        js = re.search(r'json:"([^",]*)', tag)
        if not pkg or not js:
            continue
        key = short(pkg.replace("/", ".").replace("-", "_") + "." + sname)
        fields.setdefault(key, set()).add(js.group(1))
        to = v2o(st.unpack_from("<Q", data, fo + 8)[0])
        if data[to + 23] & 0x1F == 22:
            eo = v2o(st.unpack_from("<Q", data, to + 48)[0])
            if data[eo + 23] & 0x1F in scalars:
                pointers.setdefault(key, set()).add(js.group(1))
    with open(pointers_json, "w") as f:
        json.dump({"source": os.path.basename(binary),
                   "fields": {k: sorted(v) for k, v in sorted(fields.items())},
                   "pointers": {k: sorted(v) for k, v in sorted(pointers.items())}}, f, indent=0, sort_keys=True)
        f.write("\n")
    print("%d structs, %d with pointer scalars -> %s" % (len(fields), len(pointers), pointers_json))


PKG_SHORT = [
    ("k8s.io.apimachinery.pkg.apis.", ""),
    ("k8s.io.apiextensions_apiserver.pkg.apis.", ""),
    ("k8s.io.kube_aggregator.pkg.apis.", ""),
    ("k8s.io.api.", ""),
]

SCALARS = {
    "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string", "bytes",
    "uint32", "sfixed32", "sfixed64", "sint32", "sint64",
}


def short(full):
    for p, r in PKG_SHORT:
        if full.startswith(p):
            return r + full[len(p):]
    return full


# ---------------------------------------------------------------- parsing

TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|"(?:[^"\\]|\\.)*"|[A-Za-z_.][A-Za-z0-9_.]*|-?\d+|[{}<>;=,()\[\]]', re.S)


def tokens(text):
    pos = 0
    out = []
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise ValueError("cannot tokenize at %r" % text[pos:pos + 40])
        t = m.group(0)
        pos = m.end()
        if t.strip() and not t.startswith("//") and not t.startswith("/*"):
            out.append(t)
    return out


class Parser:
    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def next(self):
        t = self.t[self.i]
        self.i += 1
        return t

    def expect(self, want):
        t = self.next()
        if t != want:
            raise ValueError("expected %r, got %r" % (want, t))

    def skip_statement(self):
        depth = 0
        while True:
            t = self.next()
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if depth == 0:
                    return
            elif t == ";" and depth == 0:
                return


def parse_file(text, messages):
    """Adds `full name -> {"fields": {number: field}, "pkg": package,
    "scope": [names]}` to messages; re-opened messages merge."""
    p = Parser(tokens(text))
    pkg = ""
    while p.peek() is not None:
        t = p.next()
        if t == "package":
            pkg = p.next()
            p.expect(";")
        elif t == "message":
            parse_message(p, pkg, [], messages)
        elif t in ("syntax", "import", "option"):
            while p.next() != ";":
                pass
        elif t == "enum" or t == "service" or t == "extend":
            p.next()
            p.i -= 2
            p.skip_statement()
        elif t == ";":
            pass
        else:
            raise ValueError("unexpected %r at top level" % t)


def parse_message(p, pkg, outer, messages):
    name = p.next()
    path = outer + [name]
    full = pkg + "." + ".".join(path)
    msg = messages.setdefault(full, {"fields": {}, "pkg": pkg, "path": path})
    p.expect("{")
    while True:
        t = p.next()
        if t == "}":
            return
        if t == "message":
            parse_message(p, pkg, path, messages)
        elif t in ("enum", "oneof", "extensions", "reserved", "option"):
            p.i -= 1
            p.skip_statement()
        elif t == "map":
            p.expect("<")
            k = p.next()
            p.expect(",")
            v = p.next()
            p.expect(">")
            fname = p.next()
            p.expect("=")
            num = int(p.next())
            skip_field_tail(p)
            msg["fields"][num] = {"name": fname, "map": (k, v), "label": "optional"}
        else:
            label = t
            if label not in ("optional", "repeated", "required"):
                typ, label = label, "optional"
            else:
                typ = p.next()
            fname = p.next()
            p.expect("=")
            num = int(p.next())
            skip_field_tail(p)
            msg["fields"][num] = {"name": fname, "type": typ, "label": label}


def skip_field_tail(p):
    while p.next() != ";":
        pass


def resolve(typ, msg, messages):
    """A type name as written in `msg` -> scalar or full message name."""
    if typ in SCALARS:
        return typ
    if typ.startswith("enum:"):
        return "int32"
    if typ.startswith("."):
        return typ[1:]
    # Innermost scope first, like protoc.
    scope = msg["pkg"].split(".") + msg["path"]
    while True:
        cand = ".".join(scope + [typ])
        if cand in messages:
            return cand
        if not scope:
            break
        scope = scope[:-1]
    if typ in messages:
        return typ
    raise ValueError("unresolved type %s in %s" % (typ, ".".join(msg["path"])))


# ---------------------------------------------------------------- building


def go_binary_to_protos(binary, outdir):
    import zlib

    data = open(binary, "rb").read()

    def varint(b, i):
        r = s = 0
        while True:
            c = b[i]
            i += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, i

    def fields(b):
        i = 0
        res = []
        while i < len(b):
            k, i = varint(b, i)
            f, wt = k >> 3, k & 7
            if wt == 0:
                v, i = varint(b, i)
            elif wt == 2:
                n, i = varint(b, i)
                v = b[i:i + n]
                i += n
            elif wt == 5:
                v = b[i:i + 4]
                i += 4
            elif wt == 1:
                v = b[i:i + 8]
                i += 8
            else:
                raise ValueError("wire type %d" % wt)
            res.append((f, v))
        return res

    types = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
             8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
             17: "sint32", 18: "sint64"}
    labels = {1: "optional", 2: "required", 3: "repeated"}

    def one(fs, n):
        return [v for f, v in fs if f == n]

    def typename(d):
        if d.get(5) in (11, 14):
            return ("enum:" if d[5] == 14 else "") + "." + d[6].decode().lstrip(".")
        return types[d[5]]

    def message(b, indent, lines):
        fs = fields(b)
        nested = {}
        for v in one(fs, 3):
            nf = fields(v)
            is_map = any(g == 7 and y == 1 for o in one(nf, 7) for g, y in fields(o))
            nested[one(nf, 1)[0].decode()] = (v, is_map)
        lines.append(" " * indent + "message %s {" % one(fs, 1)[0].decode())
        for v in one(fs, 2):
            d = dict(fields(v))
            name, num = d[1].decode(), d[3]
            if d.get(5) == 11:
                entry = d[6].decode().rsplit(".", 1)[-1]
                if entry in nested and nested[entry][1]:
                    kv = {}
                    for x in one(fields(nested[entry][0]), 2):
                        e = dict(fields(x))
                        kv[e[1].decode()] = e
                    lines.append(" " * indent + "  map<%s, %s> %s = %d;" % (
                        typename(kv["key"]), typename(kv["value"]), name, num))
                    continue
            lines.append(" " * indent + "  %s %s %s = %d;" % (labels[d.get(4, 1)], typename(d), name, num))
        for v, is_map in nested.values():
            if not is_map:
                message(v, indent + 2, lines)
        lines.append(" " * indent + "}")

    for m in re.finditer(b"\x1f\x8b\x08", data):
        try:
            z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = z.decompress(data[m.start():m.start() + (4 << 20)])
        except zlib.error:
            continue
        if not z.eof or raw[:1] != b"\x0a":
            continue
        try:
            fs = fields(raw)
            name = one(fs, 1)[0].decode()
        except (ValueError, IndexError, UnicodeDecodeError):
            continue
        if not name.startswith("k8s.io/"):
            continue
        lines = ["// compiled " + name, 'syntax = "proto2";', "package %s;" % one(fs, 2)[0].decode()]
        for v in one(fs, 4):
            message(v, 0, lines)
        path = os.path.join(outdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(name)


def inlined_names(full, messages, defs):
    """The JSON names an embedded message contributes: its field names, and
    those of a further embedded struct (a field named after its type that
    the message's OpenAPI definition does not list)."""
    if full not in messages:
        return set()
    msg = messages[full]
    props = defs.get(openapi_name(full), {}).get("properties")
    names = set()
    for f in msg["fields"].values():
        t = resolve(f["type"], msg, messages) if "type" in f else ""
        base = t.rsplit(".", 1)[-1]
        if props is not None and t in messages and f["name"] not in props and base[:1].lower() + base[1:] == f["name"]:
            names |= inlined_names(t, messages, defs)
        else:
            names.add(f["name"])
    return names


def openapi_name(full):
    """A proto message name -> its OpenAPI definition name."""
    for proto, api in [
        ("k8s.io.apiextensions_apiserver.", "io.k8s.apiextensions-apiserver."),
        ("k8s.io.kube_aggregator.", "io.k8s.kube-aggregator."),
        ("k8s.io.", "io.k8s."),
    ]:
        if full.startswith(proto):
            return api + full[len(proto):]
    return full


def proto_name(definition):
    for proto, api in [
        ("k8s.io.apiextensions_apiserver.", "io.k8s.apiextensions-apiserver."),
        ("k8s.io.kube_aggregator.", "io.k8s.kube-aggregator."),
        ("k8s.io.", "io.k8s."),
    ]:
        if definition.startswith(api):
            return proto + definition[len(api):]
    return definition


def main(dirs):
    global POINTERS
    POINTERS = load_pointers()
    messages = {}
    files = []
    for d in dirs:
        batch = []
        for root, _, names in os.walk(d):
            for n in names:
                if n.endswith(".proto"):
                    batch.append(os.path.join(root, n))
        files.extend(sorted(batch))
    for path in files:
        with open(path) as f:
            parse_file(f.read(), messages)

    with open(swagger) as f:
        defs = json.load(f)["definitions"]
    with open(builtin) as f:
        resources = json.load(f)
    served = set()
    for r in resources:
        served.add((r["group"], r["version"]))
    kinds = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            if (gvk["group"], gvk["version"]) not in served:
                continue
            api_version = gvk["version"] if not gvk["group"] else gvk["group"] + "/" + gvk["version"]
            full = proto_name(name)
            if full not in messages:
                continue
            kinds[api_version + "/" + gvk["kind"]] = full
    missing_kinds = []
    for r in resources:
        api_version = r["version"] if not r["group"] else r["group"] + "/" + r["version"]
        if api_version + "/" + r["kind"] not in kinds and "Options" not in r["kind"]:
            missing_kinds.append(api_version + "/" + r["kind"])

    # Reachable messages.
    keep = {}
    lists = set()
    gaps = []
    todo = list(kinds.values()) + EXTRA_ROOTS
    problems = []
    while todo:
        full = todo.pop()
        if full in keep:
            continue
        if full not in messages:
            problems.append("no message " + full)
            keep[full] = None
            continue
        msg = messages[full]
        suffix = short(full)
        ptrs = set(POINTERS.get(suffix, "").split())
        renames = JSON_NAMES.get(full, {})
        rows = []
        for num in sorted(msg["fields"]):
            f = msg["fields"][num]
            json_name = renames.get(f["name"], f["name"])
            flags = ""
            if "map" in f:
                k = resolve(f["map"][0], msg, messages)
                v = resolve(f["map"][1], msg, messages)
                for t in (k, v):
                    if t not in SCALARS:
                        todo.append(t)
                typ = "map:%s:%s" % (k, v)
            else:
                typ = resolve(f["type"], msg, messages)
                if typ not in SCALARS:
                    todo.append(typ)
                if f["label"] == "repeated":
                    flags += "r"
            rows.append([num, json_name, typ, flags])
        keep[full] = rows
        d = defs.get(openapi_name(full))
        if d is None and [(r[1], r[3]) for r in rows] == [("items", "r")]:
            # A named slice (`type ExtraValue []string`): JSON is the array.
            lists.add(full)
        if d and full not in SPECIAL:
            props = set(d.get("properties", {}))
            lower = {p.lower(): p for p in props}
            for r in rows:
                if r[1] in props:
                    continue
                if r[1].lower() in lower:
                    # go-to-protobuf named it after the Go field (`Webhooks`).
                    r[1] = lower[r[1].lower()]
                elif r[2] in messages and not r[3] and inlined_names(r[2], messages, defs) <= props:
                    # An embedded struct: its fields are the parent's in JSON.
                    r[3] += "i"
            # Every JSON field of the struct must be on the wire.
            have = set()
            for r in rows:
                have |= inlined_names(r[2], messages, defs) if "i" in r[3] else {r[1]}
            for prop in sorted(props - have - {"kind", "apiVersion"}):
                gaps.append("%s.%s" % (suffix, prop))
        for r in rows:
            if r[1] in ptrs:
                r[3] += "p"
                ptrs.discard(r[1])
        for p in sorted(ptrs):
            if "%s.%s" % (suffix, p) not in gaps:
                problems.append("pointer %s.%s is not a field" % (suffix, p))
    for k in missing_kinds:
        problems.append("no message for kind " + k)
    for g in gaps:
        print("warning: no protobuf field for %s (newer than the .proto files read)" % g, file=sys.stderr)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        sys.exit(1)

    pkgs = sorted({messages[m]["pkg"] for m in keep})
    index = {p: i for i, p in enumerate(pkgs)}

    def ref(full):
        if full in SCALARS:
            return full
        msg = messages[full]
        return "%d.%s" % (index[msg["pkg"]], ".".join(msg["path"]))

    def ref_type(t):
        if t.startswith("map:"):
            _, k, v = t.split(":")
            return "map:%s:%s" % (ref(k), ref(v))
        return ref(t)

    table = {
        "packages": pkgs,
        "kinds": {k: ref(v) for k, v in sorted(kinds.items())},
        "messages": {ref(m): [[n, j, ref_type(t), fl] for n, j, t, fl in rows] for m, rows in sorted(keep.items())},
        "lists": sorted(ref(m) for m in lists),
        "gaps": sorted(gaps),
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(table, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")
    print("%d kinds, %d messages, %d bytes -> %s" % (len(kinds), len(keep), os.path.getsize(out), out))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--from-binary":
        go_binary_to_protos(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "--pointers-from-binary":
        go_binary_pointers(sys.argv[2])
    elif len(sys.argv) >= 2:
        main(sys.argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
