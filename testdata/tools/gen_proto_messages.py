#!/usr/bin/env python3
"""Generate core/data/proto-messages.json.gz: the Kubernetes protobuf message table that
core/src/protobuf.rs uses to decode `application/vnd.kubernetes.protobuf` request bodies into
the JSON kubectl would have sent.

Inputs (all local, nothing is fetched):
  1. The k8s-pb 0.9.0 crate sources (prost-generated from the Kubernetes generated.proto files,
     Apache-2.0), found under ~/.cargo/registry/src/*/k8s-pb-0.9.0/src (or --k8s-pb DIR).
     Gives every message, its fields, tags, wire types, repeated/map and message references.
  2. A kubectl binary (Go, Apache-2.0), default /usr/lib/google-cloud-sdk/bin/kubectl.1.33
     (or --kubectl PATH). Its Go reflection metadata holds the struct tags of every
     k8s.io/api and apimachinery type (`json:"name,omitempty" protobuf:"varint,1,opt,..."`)
     and each field's Go type. From it come the exact JSON names, `omitempty`, whether a
     field is a Go pointer (so an explicit 0/false/"" is kept), embedded `json:",inline"`
     structs (Probe.ProbeHandler, Volume.VolumeSource, ...), and named slice types that
     protobuf wraps in a message (authentication ExtraValue, meta Verbs).
  3. core/data/kubernetes-v1.33-definitions.json.gz (JSON names and `required` for the few
     messages kubectl does not link, e.g. apiextensions and apiregistration; and
     group/version/kind triples).

Without a kubectl binary (--kubectl none) the table is still produced from 1 and 3 alone,
with JSON names from the definitions and "omit zero unless required" for every scalar.

Usage:  python3 testdata/tools/gen_proto_messages.py [--out core/data/proto-messages.json.gz]

Output format (gzip -9 of compact JSON):
  {"source": "...",
   "groupVersions": {"apps/v1": "k8s.io.api.apps.v1", "v1": "k8s.io.api.core.v1", ...},
   "kinds": {"apps/v1": {"Deployment": "k8s.io.api.apps.v1.Deployment", ...}, ...},
   "messages": {"k8s.io.api.apps.v1.DeploymentSpec":
                  {"f": [[tag, jsonName, type, flags], ...]}  # Go struct order
                "k8s.io.apimachinery.pkg.apis.meta.v1.Time": {"x": "time"}, ...}}
  type is a scalar name (string bytes bool int32 int64 uint32 uint64 sint32 sint64 fixed32
  fixed64 sfixed32 sfixed64 float double) or a message's full name; for maps it is the
  value type (keys are strings in every Kubernetes message).
  flags: 1 repeated, 2 map, 4 Go pointer, 8 omitempty, 16 inline (embedded struct),
         32 Go slice/map value is itself a wrapped slice (see "x": "items").
  "x" (special JSON form): time, microtime, duration, quantity, intorstring, rawextension,
  fieldsv1, json (apiextensions JSON), orarray, orbool, orstringarray, items (a Go named
  slice type: JSON is the array in field 1).
"""
import argparse
import glob
import gzip
import json
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# ---------------------------------------------------------------------------------------------
# 1. k8s-pb sources

TOP_PACKAGES = {
    "api": "k8s.io.api",
    "apimachinery": "k8s.io.apimachinery",
    "apiextensions_apiserver": "k8s.io.apiextensions-apiserver",
    "kube_aggregator": "k8s.io.kube-aggregator",
    "metrics": "k8s.io.metrics",
}

SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "float", "double"}


def rust_package(modpath):
    """['api','apps','v1'] -> k8s.io.api.apps.v1"""
    return TOP_PACKAGES[modpath[0]] + "".join("." + p for p in modpath[1:])


def split_generics(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def type_text(text, pos):
    """The field type starting at pos, up to the ',' that ends the field (generics balanced)."""
    depth = 0
    for i in range(pos, len(text)):
        ch = text[i]
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            return text[pos:i]
    raise SystemExit("unterminated field type at %r" % text[pos:pos + 80])


def inner_type(ty):
    """Strip Option<>, Vec<>, Box<> wrappers; for BTreeMap return the value type."""
    ty = re.sub(r"\s+", "", ty).replace(",>", ">")
    while True:
        m = re.match(r"^(?:::core::option::Option|::prost::alloc::vec::Vec|::prost::alloc::boxed::Box)<(.*)>$", ty)
        if m:
            ty = m.group(1)
            continue
        m = re.match(r"^::prost::alloc::collections::BTreeMap<(.*)>$", ty)
        if m:
            ty = split_generics(m.group(1))[1]
            continue
        return ty


def resolve_path(modpath, ty):
    parts = ty.split("::")
    base = list(modpath)
    while parts and parts[0] == "super":
        base.pop()
        parts.pop(0)
    if parts and parts[0] == "crate":
        base = []
        parts.pop(0)
    full = base + parts
    return rust_package(full[:-1]) + "." + full[-1]


def parse_k8s_pb(src):
    messages = {}  # fq rust name -> {"pkg", "rust", "fields": [...]}
    resources = []  # (api_version, kind, fq rust name)
    for path in sorted(glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), src).split(os.sep)
        text = open(path, encoding="utf-8").read()
        if "::prost::Message" not in text:
            continue
        pkg = rust_package(rel)
        for m in re.finditer(r"pub struct (\w+) \{(\}|.*?\n\})", text, re.S):
            name, body = m.group(1), m.group(2)[:-1]
            fields = []
            lines = [ln for ln in body.split("\n") if not ln.strip().startswith("///")]
            body2 = "\n".join(lines) + "\n"
            for fm in re.finditer(r"#\[prost\((.*?)\)\]\s*pub (r#)?(\w+):", body2, re.S):
                attr, fname = fm.group(1), fm.group(3)
                ty = type_text(body2, fm.end())
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                first = attr.split(",")[0].strip()
                f = {"rust": fname, "tag": tag, "repeated": " repeated" in attr or attr.startswith("repeated"),
                     "map": False}
                mm = re.match(r'btree_map = "(\w+), (\w+)"', attr)
                if mm:
                    f["map"] = True
                    if mm.group(1) != "string":
                        raise SystemExit("non-string map key in %s.%s" % (name, fname))
                    vt = mm.group(2)
                    f["type"] = resolve_path(rel, inner_type(ty)) if vt == "message" else vt
                elif first == "message":
                    f["type"] = resolve_path(rel, inner_type(ty))
                elif first.startswith("bytes"):
                    f["type"] = "bytes"
                elif first.startswith("enumeration"):
                    f["type"] = "int32"
                elif first in SCALARS:
                    f["type"] = first
                else:
                    raise SystemExit("unknown prost attribute %r in %s.%s" % (attr, name, fname))
                fields.append(f)
            messages[pkg + "." + name] = {"pkg": pkg, "rust": name, "fields": fields}
        for m in re.finditer(r'impl crate::Resource for (\w+) \{\s*const API_VERSION: &\'static str = "([^"]*)";'
                             r'.*?const KIND: &\'static str = "([^"]*)";', text, re.S):
            resources.append((m.group(2), m.group(3), pkg + "." + m.group(1)))
    return messages, resources


# ---------------------------------------------------------------------------------------------
# 2. Go reflection metadata of a kubectl binary (ELF, amd64/arm64, Go >= 1.21 internal/abi).

class GoBinary:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2:
            raise ValueError("not a 64-bit ELF file")
        shoff = struct.unpack_from("<Q", d, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        secs = []
        for i in range(shnum):
            name, typ, _flags, addr, off, size = struct.unpack_from("<IIQQQQ", d, shoff + i * shentsize)
            secs.append((name, typ, addr, off, size))
        stroff = secs[shstrndx][3]
        self.secs = []
        named = {}
        for name, typ, addr, off, size in secs:
            n = d[stroff + name:d.index(b"\0", stroff + name)].decode()
            named[n] = (addr, off, size)
            if typ != 8 and addr:  # not NOBITS
                self.secs.append((addr, off, size))
        self.types_base = named[".rodata"][0]
        a, o, s = named[".typelink"]
        self.typelinks = [self.types_base + x for x in struct.unpack_from("<%di" % (s // 4), d, o)]

    def off(self, va):
        for addr, off, size in self.secs:
            if addr <= va < addr + size:
                return va - addr + off
        raise ValueError("address %x not mapped" % va)

    def u64(self, va):
        return struct.unpack_from("<Q", self.data, self.off(va))[0]

    def i32(self, va):
        return struct.unpack_from("<i", self.data, self.off(va))[0]

    def u8(self, va):
        return self.data[self.off(va)]

    def name(self, va):
        o = self.off(va)
        d = self.data
        flags = d[o]
        o += 1

        def varint(o):
            r = s = 0
            while True:
                b = d[o]
                o += 1
                r |= (b & 0x7F) << s
                s += 7
                if b < 0x80:
                    return r, o
        n, o = varint(o)
        nm = d[o:o + n].decode("utf-8", "replace")
        o += n
        tag = ""
        if flags & 2:
            t, o = varint(o)
            tag = d[o:o + t].decode("utf-8", "replace")
        return flags, nm, tag

    # abi.Type: Size 0, PtrBytes 8, Hash 16, TFlag 20, Align 21, FieldAlign 22, Kind 23,
    # Equal 24, GCData 32, Str 40, PtrToThis 44; sizeof 48.
    def kind(self, t):
        return self.u8(t + 23) & 0x1F

    def tname(self, t):
        _, n, _ = self.name(self.types_base + self.i32(t + 40))
        if self.u8(t + 20) & 2:  # TFlagExtraStar
            n = n[1:]
        return n

    def pkgpath(self, t):
        # StructType: Type, PkgPath Name (48), Fields slice (56); uncommon type follows at 80.
        if self.u8(t + 20) & 1:
            off = self.i32(t + 80)
            if off:
                return self.name(self.types_base + off)[1]
        p = self.u64(t + 48)
        return self.name(p)[1] if p else ""

    def structs(self):
        """Every struct type reachable from the typelinks, with its fields."""
        KPTR, KSLICE, KARRAY, KMAP, KSTRUCT = 22, 23, 17, 21, 25
        seen, queue, out = set(), list(self.typelinks), []
        while queue:
            t = queue.pop()
            if not t or t in seen:
                continue
            seen.add(t)
            try:
                k = self.kind(t)
            except ValueError:
                continue
            if k in (KPTR, KSLICE, KARRAY):
                queue.append(self.u64(t + 48))
            elif k == KMAP:
                queue.append(self.u64(t + 48))
                queue.append(self.u64(t + 56))
            elif k == KSTRUCT:
                fp, fn = self.u64(t + 56), self.u64(t + 64)
                fields = []
                for i in range(fn):
                    flags, fname, tag = self.name(self.u64(fp + 24 * i))
                    ft = self.u64(fp + 24 * i + 8)
                    queue.append(ft)
                    fields.append({"go": fname, "tag": tag, "embedded": bool(flags & 8),
                                   "shape": self.shape(ft)})
                if any('protobuf:"' in f["tag"] for f in fields):
                    out.append({"pkg": self.pkgpath(t), "name": self.tname(t).split(".")[-1],
                                "fields": fields})
        return out

    def shape(self, t):
        """('ptr'|'slice'|'map'|'struct'|'scalar', element shape for slice/map values)"""
        k = self.kind(t)
        if k == 22:
            return ["ptr", self.shape(self.u64(t + 48))]
        if k == 23:
            return ["slice", self.shape(self.u64(t + 48)), self.tname(t)]
        if k == 21:
            return ["map", self.shape(self.u64(t + 56))]
        if k == 25:
            return ["struct"]
        return ["scalar"]


def kubectl_git_version(path):
    try:
        out = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True,
                             timeout=30, check=True).stdout
        return json.loads(out)["clientVersion"]["gitVersion"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return os.path.basename(path)


def parse_tag(tag):
    return dict(re.findall(r'(\w+):"([^"]*)"', tag))


def go_package_to_proto(p):
    return p.replace("/", ".")


# ---------------------------------------------------------------------------------------------
# 3. Definitions

def load_definitions(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt", encoding="utf-8") as fh:
        d = json.load(fh)
    return d.get("$defs") or d.get("definitions")


def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())


def lower_camel(snake):
    if snake.startswith("x_kubernetes_"):
        return snake.replace("_", "-")
    parts = snake.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "fieldsv1",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "rawextension",
}
for _v in ("v1", "v1beta1"):
    _p = "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.%s." % _v
    SPECIAL[_p + "JSON"] = "json"
    SPECIAL[_p + "JSONSchemaPropsOrArray"] = "orarray"
    SPECIAL[_p + "JSONSchemaPropsOrBool"] = "orbool"
    SPECIAL[_p + "JSONSchemaPropsOrStringArray"] = "orstringarray"

META = "k8s.io.apimachinery.pkg.apis.meta.v1"

# Go pointer fields of the apiextensions JSONSchemaProps, which kubectl does not link.
POINTERS = {
    "jsonschemaprops": {"default", "maximum", "minimum", "maxLength", "minLength", "maxItems", "minItems",
                        "multipleOf", "maxProperties", "minProperties", "items", "not",
                        "additionalProperties", "additionalItems", "externalDocs", "example",
                        "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type",
                        "x-kubernetes-map-type"},
}

SPECIAL_LOWER = {k.lower(): v for k, v in SPECIAL.items()}

# Groups whose packages have no Resource impl in k8s-pb and no kind in the definitions.
EXTRA_GROUPS = {
    "k8s.io.api.admission": "admission.k8s.io",
    "k8s.io.api.extensions": "extensions",
    "k8s.io.api.imagepolicy": "imagepolicy.k8s.io",
    "k8s.io.api.apidiscovery": "apidiscovery.k8s.io",
    "k8s.io.metrics.pkg.apis.metrics": "metrics.k8s.io",
    "k8s.io.metrics.pkg.apis.custom_metrics": "custom.metrics.k8s.io",
    "k8s.io.metrics.pkg.apis.external_metrics": "external.metrics.k8s.io",
    "k8s.io.apimachinery.pkg.apis.meta": "meta.k8s.io",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k8s-pb", default=None)
    ap.add_argument("--kubectl", default="/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
    ap.add_argument("--definitions", default=os.path.join(ROOT, "core/data/kubernetes-v1.33-definitions.json.gz"))
    ap.add_argument("--out", default=os.path.join(ROOT, "core/data/proto-messages.json.gz"))
    ap.add_argument("--report", action="store_true", help="print messages lacking Go metadata")
    args = ap.parse_args()

    src = args.k8s_pb
    if src is None:
        cands = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/k8s-pb-0.9.0/src")))
        if not cands:
            raise SystemExit("k8s-pb-0.9.0 sources not found; `cargo fetch` a crate depending on k8s-pb 0.9")
        src = cands[0]
    messages, resources = parse_k8s_pb(src)
    defs = load_definitions(args.definitions)

    # Go structs keyed by (proto package, lowercased name).
    go = {}
    kubectl_version = "none"
    if args.kubectl != "none":
        gb = GoBinary(args.kubectl)
        for s in gb.structs():
            if not s["pkg"].startswith("k8s.io/"):
                continue
            go.setdefault((go_package_to_proto(s["pkg"]), s["name"].lower()), s)
        kubectl_version = "kubectl " + kubectl_git_version(args.kubectl)

    # Message naming: the proto (Go) name when known, else the definitions name, else Rust's.
    def_by_norm = {}
    for k in defs:
        if k.startswith("io.k8s."):
            pkg, _, nm = ("k8s.io." + k[len("io.k8s."):]).rpartition(".")
            def_by_norm[(pkg, nm.lower())] = (k, nm)
    proto_name = {}
    for fq, m in messages.items():
        key = (m["pkg"], m["rust"].lower())
        if key in go:
            nm = go[key]["name"]
        elif key in def_by_norm:
            nm = def_by_norm[key][1]
        else:
            nm = m["rust"]
        proto_name[fq] = m["pkg"] + "." + nm
    # Resolve names used as SPECIAL keys (they are proto names).
    wrappers = set()
    out_msgs = {}
    known = set(proto_name.values())
    missing_go = []
    for fq, m in messages.items():
        pname = proto_name[fq]
        key = (m["pkg"], m["rust"].lower())
        g = go.get(key)
        d = defs.get(def_by_norm[key][0]) if key in def_by_norm else None
        props = (d or {}).get("properties", {}) or {}
        required = set((d or {}).get("required", []) or [])
        prop_by_norm = {norm(p): p for p in props}
        gofields = {}
        order = {}
        if g:
            for i, gf in enumerate(g["fields"]):
                t = parse_tag(gf["tag"])
                if "protobuf" not in t:
                    continue
                ptag = t["protobuf"].split(",")
                if len(ptag) < 2:
                    continue
                num = int(ptag[1])
                gofields[num] = (gf, t)
                order[num] = i
        elif m["fields"]:
            missing_go.append(pname)
        fields = []
        for f in m["fields"]:
            ty = f["type"]
            ty = proto_name.get(ty, ty)
            flags = (1 if f["repeated"] else 0) | (2 if f["map"] else 0)
            if f["tag"] in gofields:
                gf, t = gofields[f["tag"]]
                js = t.get("json", "")
                jname, _, opts = js.partition(",")
                if jname == "-":
                    continue
                shape = gf["shape"]
                if shape[0] == "ptr":
                    flags |= 4
                if "omitempty" in opts.split(","):
                    flags |= 8
                if gf["embedded"] and jname == "" and "inline" in opts:
                    flags |= 16
                if jname == "":
                    jname = gf["go"]
                base = shape[1] if shape[0] == "ptr" else shape
                # A Go named slice (or map value) that protobuf carries as a message.
                if ty not in SCALARS and not f["repeated"]:
                    if (f["map"] and base[0] == "map" and base[1][0] == "slice") or \
                            (not f["map"] and base[0] == "slice"):
                        wrappers.add(ty)
                sortkey = order[f["tag"]]
            else:
                p = prop_by_norm.get(norm(f["rust"]))
                jname = p if p else lower_camel(f["rust"])
                if jname not in required:
                    flags |= 8
                if ty not in SCALARS and not f["repeated"] and not f["map"]:
                    flags |= 4  # a missing optional message stays missing
                if jname in POINTERS.get(m["rust"].lower(), ()):
                    flags |= 4
                sortkey = 10000 + f["tag"]
            fields.append((sortkey, [f["tag"], jname, ty, flags]))
        fields.sort(key=lambda x: x[0])
        for _, f in fields:
            if f[2] not in SCALARS and f[2] not in known:
                raise SystemExit("%s.%s: unresolved message type %s" % (pname, f[1], f[2]))
        entry = {"f": [x[1] for x in fields]}
        special = SPECIAL_LOWER.get(pname.lower())
        if special:
            entry["x"] = special
        out_msgs[pname] = entry
    for w in wrappers:
        out_msgs[w]["x"] = "items"
    for w in wrappers:
        # A wrapper's Go slice element: field 1, repeated.
        assert out_msgs[w]["f"] and out_msgs[w]["f"][0][0] == 1, (w, out_msgs[w])

    # Map wrapper flag 32 on fields whose type is a wrapper.
    for pname, e in out_msgs.items():
        for f in e.get("f", []):
            if f[2] in wrappers:
                f[3] |= 32

    # group/version -> package; kinds.
    gv = {}
    kinds = {}
    for api_version, kind, fq in resources:
        pkg = messages[fq]["pkg"]
        gv.setdefault(api_version, pkg)
        kinds.setdefault(api_version, {})[kind] = proto_name[fq]
    for k, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []) or []:
            g, v, kd = gvk.get("group", ""), gvk["version"], gvk["kind"]
            api_version = v if g == "" else g + "/" + v
            pkg, _, nm = ("k8s.io." + k[len("io.k8s."):]).rpartition(".")
            full = pkg + "." + nm
            if full not in out_msgs:
                cand = [p for p in out_msgs if p.lower() == full.lower()]
                if not cand:
                    continue
                full = cand[0]
            if not pkg.startswith("k8s.io.apimachinery"):
                gv.setdefault(api_version, pkg)
            kinds.setdefault(api_version, {}).setdefault(kd, full)
    groups = dict(EXTRA_GROUPS)
    for api_version, pkg in gv.items():
        groups.setdefault(pkg.rpartition(".")[0], api_version.rpartition("/")[0])
    for pkg in sorted({m["pkg"] for m in messages.values()}):
        base, _, ver = pkg.rpartition(".")
        if base in groups:
            g = groups[base]
            gv.setdefault(g + "/" + ver if g else ver, pkg)
    if "v1" in gv and gv["v1"] != "k8s.io.api.core.v1":
        raise SystemExit("v1 maps to %s" % gv["v1"])
    # Only kinds not derivable as <package>.<Kind> need listing.
    kinds_out = {}
    for api_version, ks in kinds.items():
        for kd, full in ks.items():
            if gv.get(api_version) and full == gv[api_version] + "." + kd:
                continue
            if full == META + "." + kd and (not gv.get(api_version) or gv[api_version] + "." + kd not in out_msgs):
                continue  # the decoder falls back to meta/v1 (DeleteOptions, WatchEvent, ...)
            kinds_out.setdefault(api_version, {})[kd] = full

    table = {
        "source": "generated by testdata/tools/gen_proto_messages.py from k8s-pb 0.9.0 (Apache-2.0), "
                  "Go type metadata of %s, and kubernetes-v1.33-definitions.json" % kubectl_version,
        "groupVersions": dict(sorted(gv.items())),
        "kinds": dict(sorted(kinds_out.items())),
        "messages": dict(sorted(out_msgs.items())),
    }
    raw = json.dumps(table, separators=(",", ":"), sort_keys=False).encode()
    with open(args.out, "wb") as fh:
        fh.write(gzip.compress(raw, 9, mtime=0))
    print("%d messages (%d without Go metadata), %d group-versions; %d bytes JSON, %d bytes gzip -> %s"
          % (len(out_msgs), len(missing_go), len(gv), len(raw), os.path.getsize(args.out), args.out))
    if args.report:
        for p in sorted(missing_go):
            print("  no Go metadata:", p)


if __name__ == "__main__":
    main()
