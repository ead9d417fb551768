#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/seeds/TARGET/) from the same fixtures the tests use: the
tests' smallest valid module, images of both Wasm Image variants as the library writes
them, a docker-save archive, tar layers in every compression, and the location, docker
config and WWW-Authenticate spellings the unit tests cover. Needs the wasm_image Python
package (`pip install .`) and the zstd command.

Run from anywhere: python3 fuzz/seeds.py
"""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

import wasm_image

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
# The tests' smallest valid module (core/tests/common: MODULE).
MODULE = b"\0asm\x01\0\0\0\x00\x06\x04name\x00"
SEPARATOR = b"\n%%\n"  # fuzz/src/lib.rs: SEPARATOR

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write(target, name, data):
    os.makedirs(os.path.join(SEEDS, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(SEEDS, target, name), "wb") as f:
        f.write(data)


def tar_of(files):
    """An uncompressed tar of (name, bytes) pairs, reproducible."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout


def layouts(tmp):
    """Both variants written by the library into oci: layouts; {variant: dir}."""
    dirs = {}
    for variant in ("oci", "compat"):
        image = wasm_image.build(
            MODULE,
            variant=variant,
            runtime_type="envoy_proxy",
            abi_versions=["v0-097b7f2e4cc1fb490cc1943d0d633655ac3c522f"],
            root_ids=["a"],
            source_date_epoch=0,
        )
        dirs[variant] = os.path.join(tmp, variant)
        wasm_image.push(image, f"oci:{dirs[variant]}:v1")
    return dirs


def blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def linked(layout):
    """A layout as one layout_read input: index.json first, then every blob it reaches,
    each digest+size pair replaced by @@k (fuzz/src/lib.rs: link)."""
    with open(os.path.join(layout, "index.json"), "rb") as f:
        docs = [f.read()]
    order = {}
    pattern = re.compile(rb'"digest":"(sha256:[0-9a-f]{64})","size":(\d+)')
    at = 0
    while at < len(docs):
        for digest in pattern.findall(docs[at]):
            digest = digest[0].decode()
            if digest not in order:
                order[digest] = len(docs)
                docs.append(blob(layout, digest))
        at += 1
    return SEPARATOR.join(
        pattern.sub(lambda m: b"@@%x" % order[m.group(1).decode()], d) for d in docs
    )


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    tmp = tempfile.mkdtemp()
    try:
        dirs = layouts(tmp)
        manifests, configs, layers = {}, {}, {}
        for variant, layout in dirs.items():
            index = json.load(open(os.path.join(layout, "index.json")))
            manifest = blob(layout, index["manifests"][0]["digest"])
            manifests[variant] = manifest
            parsed = json.loads(manifest)
            configs[variant] = blob(layout, parsed["config"]["digest"])
            layers[variant] = blob(layout, parsed["layers"][-1]["digest"])

        # location: every form the location tests cover.
        for i, text in enumerate([
            "localhost:5000/filters/add-header:v1",
            "docker://ghcr.io/org/repo@sha256:" + "a" * 64,
            "wasm/compat:v1",
            "ubuntu",
            "[::1]:5000/a/b:tag",
            "oci:./store:add-header",
            "oci:/s@sha256:" + "b" * 64,
            "oci-archive:/tmp/a.tar:v1",
            "docker-archive:/tmp/d.tar:wasm/compat:v1",
            "docker-archive:/tmp/d.tar:@0",
            "registry.example.com:443/x/y/z:latest@sha256:" + "c" * 64,
        ]):
            write("location", f"{i:02}", text)

        # manifest: the first byte picks the declared media type (fuzz_targets/manifest.rs).
        index = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": sha256(manifests["oci"]), "size": len(manifests["oci"]),
                 "platform": {"os": "wasip1", "architecture": "wasm"}},
                {"mediaType": OCI_MANIFEST, "digest": sha256(manifests["compat"]), "size": len(manifests["compat"]),
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": sha256(b"x"), "size": 1,
                 "platform": {"os": "unknown", "architecture": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            ]}, separators=(",", ":")).encode()
        docker = manifests["compat"].replace(
            OCI_MANIFEST.encode(), b"application/vnd.docker.distribution.manifest.v2+json")
        for declared in range(6):
            write("manifest", f"oci-{declared}", bytes([declared]) + manifests["oci"])
            write("manifest", f"compat-{declared}", bytes([declared]) + manifests["compat"])
        write("manifest", "index", b"\x00" + index)
        write("manifest", "docker", b"\x03" + docker)
        write("manifest", "schema1", b"\x00" + b'{"schemaVersion":1,"fsLayers":[]}')

        # image_config: the first byte picks the manifest shape (fuzz_targets/image_config.rs).
        write("image_config", "compat", b"\x00" + configs["compat"])
        write("image_config", "oci", b"\x03" + configs["oci"])
        write("image_config", "wasm-artifact", b"\x04" + json.dumps({
            "created": "1970-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip2",
            "layerDigests": [sha256(MODULE)], "component": {"exports": [], "imports": []}}).encode())
        write("image_config", "wasi-image", b"\x00" + json.dumps({
            "architecture": "wasm", "os": "wasip1", "config": {"Entrypoint": ["/app/module.wasm"]},
            "rootfs": {"type": "layers", "diff_ids": []}}).encode())
        write("image_config", "runtime-config", b"\x01" + json.dumps({
            "type": "envoy_proxy", "abiVersions": ["v0"], "config": {"rootIds": ["a", "b"]}}).encode())

        # docker_config: the first byte picks the registry asked about.
        basic = __import__("base64").b64encode(b"user:pass").decode()
        for i, config in enumerate([
            {"auths": {"https://index.docker.io/v1/": {"auth": basic}}},
            {"auths": {"127.0.0.1:5000": {"username": "u", "password": "p"}}},
            {"auths": {"ghcr.io": {"identitytoken": "tok", "username": "u"}}},
            {"auths": {"http://127.0.0.1:5000/v2/": {"registrytoken": "r"}}},
            {"https://index.docker.io/v1/": {"auth": basic, "email": "x@y"}},
            {"auths": {"localhost": {"auth": "bm90LWEtcGFpcg=="}}, "credHelpers": {"ghcr.io": "gcloud"},
             "credsStore": "desktop"},
        ]):
            write("docker_config", f"{i:02}", bytes([i]) + json.dumps(config).encode())

        # www_authenticate: one header value per line.
        for i, header in enumerate([
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
            'Basic realm="Registry Realm"',
            'Basic realm="a", Bearer realm="http://127.0.0.1:9/token", service="x"',
            'Bearer realm="https://a/t?x=\\"q\\"",error="invalid_token"\nBasic realm="b"',
            'Bearer realm=https://a/token,service=reg',
        ]):
            write("www_authenticate", f"{i:02}", header)

        # layer: the first byte picks tar / gzip / zstd and what is looked for.
        plain = tar_of([("plugin.wasm", MODULE),
                        ("runtime-config.json", configs["oci"])])
        write("layer", "tar", b"\x00" + plain)
        write("layer", "gzip", b"\x01" + layers["compat"])
        write("layer", "zstd", b"\x02" + zstd(plain))
        write("layer", "path", b"\x10" + tar_of([("app/module.wasm", MODULE)]))
        write("layer", "long-name", b"\x00" + tar_of([("d/" * 60 + "plugin.wasm", MODULE)]))

        # oci_archive: each layout as the tar oci-archive: reads.
        for variant, layout in dirs.items():
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for root, _, files in sorted(os.walk(layout)):
                    for name in sorted(files):
                        path = os.path.join(root, name)
                        info = tar.gettarinfo(path, os.path.relpath(path, layout))
                        info.mtime = 0
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
            write("oci_archive", variant, out.getvalue())

        # docker_archive: what `docker save` writes for the compat image.
        layer_tar = gzip.decompress(layers["compat"])
        config_hex = sha256(configs["compat"]).split(":")[1]
        layer_hex = sha256(layer_tar).split(":")[1]
        saved = tar_of([
            ("manifest.json", json.dumps([{
                "Config": f"{config_hex}.json",
                "RepoTags": ["wasm/compat:v1"],
                "Layers": [f"{layer_hex}/layer.tar"]}]).encode()),
            (f"{config_hex}.json", configs["compat"]),
            (f"{layer_hex}/layer.tar", layer_tar),
            ("repositories", json.dumps({"wasm/compat": {"v1": layer_hex}}).encode()),
        ])
        for first in range(4):
            write("docker_archive", f"compat-{first}", bytes([first]) + saved)

        # layout_read: each layout linked into one input.
        for variant, layout in dirs.items():
            write("layout_read", variant, linked(layout))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
