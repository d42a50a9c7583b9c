#!/usr/bin/env python3
"""Convert an OCI image layout directory (one image) into a `docker save` tarball.

Writes the classic docker-save format (what `docker save` wrote before Docker 25):
  <layer-id>/VERSION, <layer-id>/json, <layer-id>/layer.tar   (uncompressed layer tar)
  <config-hex>.json                                              (the image config, verbatim)
  manifest.json   [{"Config": ..., "RepoTags": [...], "Layers": [...]}]
  repositories    {"<repo>": {"<tag>": "<top layer id>"}}
The output is deterministic: fixed mtimes, root ownership, a fixed member order.

usage: oci2docker.py [--epoch N] [--tag NAME:TAG]... OCI_DIR OUTPUT.tar
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile


def blob_path(layout, digest):
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        sys.exit(f"oci2docker: unsupported digest {digest!r}")
    return os.path.join(layout, "blobs", algo, hexpart)


def read_json_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        data = f.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        sys.exit(f"oci2docker: digest mismatch for {digest}")
    return data, json.loads(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epoch", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000")))
    ap.add_argument("--tag", action="append", default=[], help="RepoTags entry (repeatable)")
    ap.add_argument("layout")
    ap.add_argument("output")
    args = ap.parse_args()

    with open(os.path.join(args.layout, "index.json"), "rb") as f:
        index = json.load(f)
    if not index.get("manifests"):
        sys.exit("oci2docker: index.json lists no manifests")
    _, manifest = read_json_blob(args.layout, index["manifests"][0]["digest"])
    config_digest = manifest["config"]["digest"]
    config_bytes, config = read_json_blob(args.layout, config_digest)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest.get("layers", [])):
        sys.exit("oci2docker: config diff_ids do not match the manifest's layers")

    members = []  # (name, bytes or path-of-file)
    tmp = tempfile.mkdtemp(prefix="oci2docker.")
    try:
        parent = ""
        layer_paths = []
        for i, layer in enumerate(manifest["layers"]):
            # Uncompress into a temporary file, checking the diff id on the way.
            raw = os.path.join(tmp, f"layer{i}.tar")
            h = hashlib.sha256()
            with open(blob_path(args.layout, layer["digest"]), "rb") as src:
                magic = src.read(2)
                src.seek(0)
                reader = gzip.GzipFile(fileobj=src) if magic == b"\x1f\x8b" else src
                with open(raw, "wb") as dst:
                    while True:
                        chunk = reader.read(1 << 20)
                        if not chunk:
                            break
                        h.update(chunk)
                        dst.write(chunk)
            if "sha256:" + h.hexdigest() != diff_ids[i]:
                sys.exit(f"oci2docker: layer {i}: diff id mismatch")
            layer_id = hashlib.sha256((parent + " " + diff_ids[i]).encode()).hexdigest()
            v1 = {"id": layer_id, "created": config.get("created", "1970-01-01T00:00:00Z"), "os": "linux"}
            if parent:
                v1["parent"] = parent
            members.append((f"{layer_id}/", None))
            members.append((f"{layer_id}/VERSION", b"1.0"))
            members.append((f"{layer_id}/json", json.dumps(v1, sort_keys=True).encode()))
            members.append((f"{layer_id}/layer.tar", raw))
            layer_paths.append(f"{layer_id}/layer.tar")
            parent = layer_id

        config_name = config_digest.split(":", 1)[1] + ".json"
        members.append((config_name, config_bytes))
        docker_manifest = [{"Config": config_name, "RepoTags": args.tag, "Layers": layer_paths}]
        members.append(("manifest.json", json.dumps(docker_manifest).encode()))
        repositories = {}
        for tag in args.tag:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = parent
        members.append(("repositories", json.dumps(repositories, sort_keys=True).encode()))

        out_tmp = args.output + ".tmp"
        with tarfile.open(out_tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for name, content in members:
                info = tarfile.TarInfo(name.rstrip("/"))
                info.mtime = args.epoch
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if content is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                elif isinstance(content, bytes):
                    info.mode = 0o644
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
                else:
                    info.mode = 0o644
                    info.size = os.path.getsize(content)
                    with open(content, "rb") as f:
                        tar.addfile(info, f)
        os.replace(out_tmp, args.output)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
