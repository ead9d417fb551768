"""Build + push of a 50 MiB module: compat (Python API, CLI, buildah; once more with a
module that compresses like code) and the oci variant (Python API, CLI, oras-py), each
beside the HTTP client floors (the upload alone, monolithic and in 4 MiB chunks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import testbed
from harness.common import BUILDAH, MiB
from harness.fixtures import COMPRESSIBLE
from harness.modules import NONCE_LEN, distinct_copy
from harness.processes import measure, run_quiet
from harness.push_floor import FLOOR_PATCH, FLOOR_PUT, UPLOAD_CHUNK, http_push_floor_argv, sha256_file
from testbed import MANIFEST_ACCEPT

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "push"
CASES = {  # case -> the tool its × floor column compares with, in table order
    "build+push compat": BUILDAH,
    "build+push compat (compressible module)": BUILDAH,
    "build+push oci": "oras-py push",
}
HTTP_TIMEOUT = 30.0


def run(b: Bench) -> None:
    push_cases(b, 50, "", ("compat", "oci"))
    # Random bytes do not compress, which flatters a compressor that detects it (Go's
    # klauspost/compress stores such blocks almost for free; zlib and miniz_oxide do
    # not): compat once more with a module that compresses like real code.
    push_cases(b, COMPRESSIBLE, " (compressible module)", ("compat",))


def push_cases(b: Bench, key, suffix: str, variants: tuple) -> None:
    size = 50
    src = b.modules[key]
    off = b.nonce_offset[key]
    tagk = "-z" if suffix else ""

    def distinct(tag: str) -> Path:
        d = b.scratch(f"push-{tag}")
        d.mkdir(exist_ok=True)
        p = d / "plugin.wasm"
        distinct_copy(src, p, off)
        return p

    def r_py(variant, i):
        m = distinct("py")
        loc = f"{b.host}/bench/push-{variant}{tagk}-py:r{i}"
        p = measure(b.pyworker("build_push", {"host": b.host, "module": str(m), "variant": variant, "location": loc}), env=b.py_env())
        b.sample(f"build+push {variant}{suffix}", "wasm-image Python API", size, i, [p], library=True,
                 check=lambda: check_pushed(b, f"bench/push-{variant}{tagk}-py", f"r{i}"))
        b.wipe(m.parent)

    def r_cli(variant, i):
        m = distinct("cli")
        loc = f"{b.host}/bench/push-{variant}{tagk}-cli:r{i}"
        p = measure([b.cli, "build", str(m), "-t", loc, "--variant", variant, "--insecure", b.host, "-q", "--no-config-files"], env=b.py_env())
        b.sample(f"build+push {variant}{suffix}", "wasm-image CLI", size, i, [p], library=False,
                 check=lambda: check_pushed(b, f"bench/push-{variant}{tagk}-cli", f"r{i}"))
        b.wipe(m.parent)

    def r_buildah(i):
        m = distinct("buildah")
        env = b.containers_env()
        bd = b.buildah()
        b.buildah_ids += 1
        name = f"bench-w{b.buildah_ids}"
        loc = f"{b.host}/bench/push-compat{tagk}-buildah:r{i}"
        procs = [measure([*bd, "from", "--signature-policy", b.policy, "--name", name, "scratch"], env=env)]
        if procs[-1].returncode == 0:
            procs.append(measure([*bd, "copy", name, str(m), "./"], env=env))
        if procs[-1].returncode == 0:
            procs.append(measure([*bd, "config", "--annotation", "module.wasm.image/variant=compat", name], env=env))
        if procs[-1].returncode == 0:
            procs.append(measure([*bd, "commit", "--signature-policy", b.policy, "--tls-verify=false", "--quiet",
                                  name, f"docker://{loc}"], env=env))
        b.sample(f"build+push compat{suffix}", BUILDAH, size, i, procs, library=False,
                 check=lambda: check_pushed(b, f"bench/push-compat{tagk}-buildah", f"r{i}"))
        run_quiet([*bd, "rm", name], env=env, check=False)
        b.wipe(m.parent)

    def r_oras(i):
        m = distinct("oras")
        cfg = m.parent / "config.json"
        cfg.write_bytes(b.runtime_config)
        target = f"{b.host}/bench/push-oci-oras:r{i}"
        p = measure(b.pyworker("oras_push", {"host": b.host, "target": target, "module": str(m), "config": str(cfg)}), env=b.py_env())
        b.sample("build+push oci", "oras-py push", size, i, [p], library=True,
                 check=lambda: check_pushed(b, "bench/push-oci-oras", f"r{i}"))
        b.wipe(m.parent)

    def floors(variant) -> list:
        """The upload alone of a blob as large as this variant's 50 MiB layer (the
        compat fixture's gzip layer, the oci fixture's module), both ways. Only for
        the random module: the compressible one's layer is smaller, and no fixture
        of it is pushed to take the size from."""
        if suffix:
            return []
        nbytes = b.digests[f"bench/{variant}-50m"]["blob_size"]
        case = f"build+push {variant}"
        blob = b.scratch(f"floor-{variant}.bin")

        def run(tool, chunk, i):
            if not blob.exists() or blob.stat().st_size != nbytes:
                with open(blob, "wb") as f:
                    for left in range(nbytes, 0, -4 * MiB):
                        f.write(os.urandom(min(left, 4 * MiB)))
            with open(blob, "r+b") as f:  # fresh random first bytes: a digest the registry has never seen
                f.write(os.urandom(NONCE_LEN))
            digest = sha256_file(blob)
            b.floor_ids += 1
            repo = f"bench/floor-{variant}-{'patch' if chunk else 'put'}-{b.floor_ids}"  # a fresh repository too
            p = measure(http_push_floor_argv({"host": b.host, "repo": repo, "blob": str(blob), "digest": digest,
                                              "chunk": chunk}))

            def check():
                st, h, _ = testbed.http_request("HEAD", f"http://{b.host}/v2/{repo}/blobs/{digest}", timeout=HTTP_TIMEOUT)
                if st != 200 or int(h.get("Content-Length", -1)) != nbytes:
                    raise RuntimeError(f"{repo}: blob not stored whole (HTTP {st}, {h.get('Content-Length')} bytes)")
            b.sample(case, tool, size, i, [p], library=True, check=check)

        return [("floor put", "http-floor", lambda i: run(FLOOR_PUT, 0, i)),
                ("floor patch", "http-floor", lambda i: run(FLOOR_PATCH, UPLOAD_CHUNK, i))]

    if "compat" in variants and b.want(f"build+push compat{suffix}"):
        b.run_rounds(f"build+push compat{suffix} 50 MiB", [
            ("py", "py", lambda i: r_py("compat", i)),
            ("cli", "cli", lambda i: r_cli("compat", i)),
            ("buildah", "buildah", r_buildah),
            *floors("compat"),
        ], b.repeats)
    if "oci" in variants and b.want("build+push oci"):
        b.run_rounds("build+push oci 50 MiB", [
            ("py", "py", lambda i: r_py("oci", i)),
            ("cli", "cli", lambda i: r_cli("oci", i)),
            ("oras", "oras-py", r_oras),
            *floors("oci"),
        ], b.repeats)


def check_pushed(b: Bench, repo: str, tag: str) -> None:
    st, _, _ = testbed.http_request("HEAD", f"http://{b.host}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT},
                                    timeout=HTTP_TIMEOUT)
    if st != 200:
        raise RuntimeError(f"{repo}:{tag} is not in the registry (HTTP {st})")
