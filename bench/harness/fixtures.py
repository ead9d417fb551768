"""The images every case pulls: modules of each size written and validated, then pushed
as an oci-variant and a compat image each (by wasm-image's Python API, else by a plain
HTTP pusher of the same layouts, so the peers can still be measured)."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import testbed
from harness.common import MiB, log
from harness.modules import small_module, validate_module, write_module
from harness.processes import measure

if TYPE_CHECKING:
    from harness.state import RunState

SOLO_CONFIG = "application/vnd.module.wasm.config.v1+json"
SOLO_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
COMPRESSIBLE = "50c"  # key of the compressible 50 MiB module
HTTP_TIMEOUT = 30.0


def make_modules(b: RunState) -> None:
    base = small_module(b.work)
    d = b.work / "modules"
    d.mkdir()
    for size in b.sizes:
        path = d / f"module-{size}m.wasm"
        b.nonce_offset[size] = write_module(path, base, size * MiB)
        b.modules[size] = path
    path = d / "module-50m-compressible.wasm"
    b.nonce_offset[COMPRESSIBLE] = write_module(path, base, 50 * MiB, compressible=True)
    b.modules[COMPRESSIBLE] = path
    v = validate_module(b.modules[1])
    for key in b.modules:
        validate_module(b.modules[key])
    with open(path, "rb") as f:
        sample = f.read(8 * MiB)
    b.compress_ratio = len(sample) / len(zlib.compress(sample, 6))
    b.res.notes.append(f"compressible module: gzip -6 ratio {b.compress_ratio:.2f} (random bytes: 1.00)")
    b.res.notes.append(f"modules: {len(base)}-byte proxy-wasm module + one custom section of random bytes; {v}")
    log(f"modules written and validated ({v})")
    abi = ["proxy_abi_version_0_2_1"] if len(base) > 8 else []
    b.runtime_config = json.dumps({"type": "envoy_proxy", "abiVersions": abi}).encode()


def push_fixtures(b: RunState) -> None:
    """The images pulled: one oci-variant and one compat image per size, pushed by
    wasm-image itself (the Python API) when it works, else by a plain HTTP pusher
    here (same layouts) so the peers can still be measured."""
    use_api = False
    p = measure(b.pyworker("noop", {}), env=b.py_env())
    if p.returncode == 0:
        use_api = True
    for size in b.sizes:
        for variant in ("oci", "compat"):
            repo = f"bench/{variant}-{size}m"
            loc = f"{b.host}/{repo}:v1"
            pushed_by = "wasm-image Python API"
            if use_api:
                r = measure(
                    b.pyworker("build_push", {"host": b.host, "module": str(b.modules[size]), "variant": variant, "location": loc}),
                    env=b.py_env(),
                    timeout=600,
                )
                if r.returncode != 0:
                    log(f"wasm-image could not push {loc}: {r.stderr.strip()[-300:]}; using the plain pusher")
                    use_api = False
            if not use_api:
                pushed_by = "bench/run.py's plain HTTP pusher (wasm-image could not push)"
                plain_push(b, repo, b.modules[size], variant)
            b.digests[repo] = describe(b.host, repo)
            b.digests[repo]["pushed_by"] = pushed_by
    b.res.notes.append("fixture images pushed by " + b.digests["bench/oci-1m"]["pushed_by"])
    log("fixture images pushed by " + b.digests["bench/oci-1m"]["pushed_by"])


def describe(host: str, repo: str) -> dict:
    digest, m, headers = testbed.get_manifest(host, repo, "v1")
    layers = m["layers"]
    module_layer = max(layers, key=lambda l: l["size"])
    return {
        "manifest": digest,
        "manifest_media_type": m.get("mediaType") or headers.get("Content-Type"),
        "config_media_type": m["config"]["mediaType"],
        "blob": module_layer["digest"],
        "blob_media_type": module_layer["mediaType"],
        "blob_size": module_layer["size"],
        "layers": len(layers),
    }


def plain_push(b: RunState, repo: str, module: Path, variant: str) -> None:
    import gzip
    import io
    import tarfile

    def put_blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, h, body = testbed.http_request("POST", f"http://{b.host}/v2/{repo}/blobs/uploads/", timeout=HTTP_TIMEOUT)
        if st != 202:
            raise RuntimeError(f"upload start: {st} {body[:200]!r}")
        loc = h["Location"]
        if loc.startswith("/"):
            loc = f"http://{b.host}{loc}"
        sep = "&" if "?" in loc else "?"
        st, _, body = testbed.http_request("PUT", f"{loc}{sep}digest={digest}", headers={"Content-Type": "application/octet-stream"},
                                           body=data, timeout=300)
        if st != 201:
            raise RuntimeError(f"upload: {st} {body[:200]!r}")
        return {"digest": digest, "size": len(data)}

    data = module.read_bytes()
    if variant == "oci":
        cfg = {"mediaType": SOLO_CONFIG, **put_blob(b.runtime_config)}
        layers = [
            {"mediaType": SOLO_CONFIG, **put_blob(b.runtime_config), "annotations": {"org.opencontainers.image.title": "runtime-config.json"}},
            {"mediaType": SOLO_LAYER, **put_blob(data), "annotations": {"org.opencontainers.image.title": "plugin.wasm"}},
        ]
        annotations = {}
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            ti = tarfile.TarInfo("plugin.wasm")
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
        tar = buf.getvalue()
        layer = gzip.compress(tar, compresslevel=6, mtime=0)
        diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
        config = json.dumps(
            {"architecture": "wasm", "os": "wasip1", "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}}
        ).encode()
        cfg = {"mediaType": "application/vnd.oci.image.config.v1+json", **put_blob(config)}
        layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put_blob(layer)}]
        annotations = {"module.wasm.image/variant": "compat"}
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": layers, "annotations": annotations}
    ).encode()
    st, _, body = testbed.http_request("PUT", f"http://{b.host}/v2/{repo}/manifests/v1",
                                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, body=manifest,
                                       timeout=HTTP_TIMEOUT)
    if st != 201:
        raise RuntimeError(f"manifest put: {st} {body[:200]!r}")
