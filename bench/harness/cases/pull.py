"""Pull by tag, into memory and to a file, of every size and both variants: the
Python API, the CLI and the C API against curl (the floor), a digest-checking curl,
skopeo and oras-py; the requests each tool makes for one pull; and the CLI's start-up
(`--version`, whole process), native and through `python -m wasm_image`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.common import CURL_W, VERIFIED, MiB, log
from harness.processes import measure
from harness.servers import clear_requests, record_requests
from testbed import MANIFEST_ACCEPT

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "pull"
# Not a tool: the work no verifying pull can skip (see pyworker's work_floor).
WORK_FLOOR = "SHA-256 + one copy of the bytes (work floor, in-process)"
CASES = {  # case -> the tool its × floor column compares with, in table order
    "pull-mem oci": "curl (floor)",
    "pull-file oci": "curl (floor)",
    "pull-mem compat": "curl (floor)",
    "pull-file compat": "curl (floor)",
    "cli start-up": None,
}
START_UP = "cli start-up"


def run_start_up(b: Bench) -> None:
    """`wasm-image --version` as a whole process: what every command pays before work."""
    if not b.want(START_UP):
        return

    def r_native(i):
        p = measure([b.cli, "--version"], env=b.py_env())
        b.sample(START_UP, "wasm-image CLI", None, i, [p], library=False)

    def r_python(i):
        p = measure([b.python, "-m", "wasm_image", "--version"], env=b.py_env())
        b.sample(START_UP, "python3 -m wasm_image", None, i, [p], library=False)

    b.run_rounds("cli start-up", [("cli", "cli", r_native), ("python -m", "py", r_python)], b.repeats)


def run(b: Bench) -> None:
    run_start_up(b)
    count_pull_requests(b)
    for variant in ("oci", "compat"):
        if not b.want(f"pull-mem {variant}") and not b.want(f"pull-file {variant}"):
            continue
        for size in b.sizes:
            runners = pull_runners(b, variant, size)
            b.run_rounds(f"pull {variant} {size} MiB", runners, b.repeats)


def count_pull_requests(b: Bench) -> None:
    """How many requests each tool makes for one pull (1 MiB oci image, via the proxy)."""
    if not b.want("pull-mem oci") and not b.want("requests"):
        return
    repo = "bench/oci-1m"
    loc = f"{b.proxy}/{repo}:v1"
    d = b.digests[repo]
    work = b.scratch("count")
    todo = []
    if b.usable("curl"):
        todo.append(("curl (floor)", ["curl", "-sS", "--fail", "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", "/dev/null",
                                      f"http://{b.proxy}/v2/{repo}/manifests/v1", "--next", "-sS", "--fail", "-o",
                                      "/dev/null", f"http://{b.proxy}/v2/{repo}/blobs/{d['blob']}"], None))
    if b.usable("py"):
        todo.append(("wasm-image Python API", b.pyworker("pull", {"host": b.proxy, "location": loc, "size": MiB}), b.py_env()))
    if b.usable("cli"):
        todo.append(("wasm-image CLI", [b.cli, "pull", loc, "-o", str(work / "cli.wasm"), "--insecure", b.proxy, "-q", "--no-config-files"], b.py_env()))
    if b.usable("c"):
        todo.append(("wasm-image C API", [b.c_exe, "mem", loc, "-", b.proxy], None))
    if b.usable("skopeo"):
        todo.append(("skopeo copy → oci:", ["skopeo", "--policy", b.policy, "copy", "--quiet", "--retry-times", "0",
                                             "--src-tls-verify=false", f"docker://{loc}", f"oci:{work / 'skopeo'}:v1"],
                     b.containers_env()))
    if b.usable("oras-py"):
        (work / "oras").mkdir(parents=True, exist_ok=True)
        todo.append(("oras-py", b.pyworker("oras_pull", {"host": b.proxy, "target": loc, "outdir": str(work / "oras"), "size": MiB}),
                     b.py_env()))
    for tool, argv, env in todo:
        clear_requests(b)
        p = measure(argv, env=env)
        if p.returncode != 0:
            log(f"  request count for {tool}: the pull failed: {p.stderr.strip()[-200:]}")
            continue
        record_requests(b, "pull", tool)
    b.wipe(work)


def pull_runners(b: Bench, variant: str, size: int) -> list[tuple[str, str, object]]:
    """(tool, needs, run(repeat)) for one image."""
    repo = f"bench/{variant}-{size}m"
    loc = f"{b.host}/{repo}:v1"
    d = b.digests[repo]
    nbytes = size * MiB
    case_mem, case_file = f"pull-mem {variant}", f"pull-file {variant}"
    manifest_url = f"http://{b.host}/v2/{repo}/manifests/v1"
    blob_url = f"http://{b.host}/v2/{repo}/blobs/{d['blob']}"
    runners = []
    shell_accept = MANIFEST_ACCEPT  # no quotes inside: safe between single quotes

    def file_check(path: Path, expect: int):
        def check():
            got = path.stat().st_size if path.exists() else -1
            if got != expect:
                raise RuntimeError(f"{path.name}: {got} bytes, expected {expect}")
        return check

    def curl(out: str) -> list[str]:
        return ["curl", "-sS", "--fail", "-w", CURL_W, "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", "/dev/null", manifest_url,
                "--next", "-sS", "--fail", "-w", CURL_W, "-o", out, blob_url]

    def r_curl_mem(i):
        p = measure(curl("/dev/null"))
        b.sample(case_mem, "curl (floor)", size, i, [p], library="curl")

    def r_curl_file(i):
        out = b.scratch("curl.out")
        p = measure(curl(str(out)))
        b.sample(case_file, "curl (floor)", size, i, [p], library="curl", check=file_check(out, d["blob_size"]))
        b.wipe(out)

    def verified(out: str | None) -> list[str]:
        # curl streams the blob into `openssl dgst -sha256` (SHA-NI; running on the other
        # core): what a client that checks the digest, as wasm-image and skopeo do,
        # cannot go below. (coreutils' sha256sum has no SHA-NI: 4x slower here.)
        tee = f" | tee {out}" if out else ""
        return ["sh", "-c", f"curl -sS --fail -H '{shell_accept}' -o /dev/null {manifest_url} --next -sS --fail {blob_url}"
                            f"{tee} | openssl dgst -sha256"]

    def digest_check(p_ref: list, path: Path | None = None):
        def check():
            got = "sha256:" + p_ref[0].stdout.split()[-1]
            if got != d["blob"]:
                raise RuntimeError(f"openssl dgst gave {got}, expected {d['blob']}")
            if path is not None:
                file_check(path, d["blob_size"])()
        return check

    def r_verified_mem(i):
        ref = [measure(verified(None))]
        b.sample(case_mem, VERIFIED, size, i, ref, library=False, check=digest_check(ref))

    def r_verified_file(i):
        out = b.scratch("verified.out")
        ref = [measure(verified(str(out)))]
        b.sample(case_file, VERIFIED, size, i, ref, library=False, check=digest_check(ref, out))
        b.wipe(out)

    def r_py_mem(i):
        p = measure(b.pyworker("pull", {"host": b.host, "location": loc, "size": nbytes}), env=b.py_env())
        b.sample(case_mem, "wasm-image Python API", size, i, [p], library=True)

    def r_py_file(i):
        out = b.scratch("py.wasm")
        p = measure(b.pyworker("pull_to_file", {"host": b.host, "location": loc, "path": str(out), "size": nbytes}), env=b.py_env())
        b.sample(case_file, "wasm-image Python API", size, i, [p], library=True, check=file_check(out, nbytes))
        b.wipe(out)

    def r_cli_file(i):
        out = b.scratch("cli.wasm")
        p = measure([b.cli, "pull", loc, "-o", str(out), "--insecure", b.host, "-q", "--no-config-files"], env=b.py_env())
        b.sample(case_file, "wasm-image CLI", size, i, [p], library=False, check=file_check(out, nbytes))
        b.wipe(out)

    def r_c_mem(i):
        p = measure([b.c_exe, "mem", loc, "-", b.host])
        b.sample(case_mem, "wasm-image C API", size, i, [p], library=True)

    def r_c_file(i):
        out = b.scratch("c.wasm")
        p = measure([b.c_exe, "file", loc, str(out), b.host])
        b.sample(case_file, "wasm-image C API", size, i, [p], library=True, check=file_check(out, nbytes))
        b.wipe(out)

    def r_skopeo(i):
        out = b.scratch("skopeo-oci")
        b.wipe(out)
        p = measure(["skopeo", "--policy", b.policy, "copy", "--quiet", "--retry-times", "0", "--src-tls-verify=false",
                     f"docker://{loc}", f"oci:{out}:v1"], env=b.containers_env())

        def check():
            blob = out / "blobs" / "sha256" / d["blob"].split(":", 1)[1]
            if not blob.exists() or blob.stat().st_size != d["blob_size"]:
                raise RuntimeError("skopeo's layout lacks the module blob")
        b.sample(case_file, "skopeo copy → oci:", size, i, [p], library=False, check=check)
        b.wipe(out)

    def r_work(i):
        p = measure(b.pyworker("work_floor", {"size": nbytes}), env=b.py_env())
        for case in (case_mem, case_file):
            b.sample(case, WORK_FLOOR, size, i, [p], library=True)

    def r_oras(i):
        out = b.scratch("oras-out")
        b.wipe(out)
        out.mkdir()
        p = measure(b.pyworker("oras_pull", {"host": b.host, "target": loc, "outdir": str(out), "size": nbytes}), env=b.py_env())
        b.sample(case_file, "oras-py", size, i, [p], library=True)
        b.wipe(out)

    runners += [
        ("curl (floor) mem", "curl", r_curl_mem),
        ("curl (floor) file", "curl", r_curl_file),
        ("verified mem", "curl", r_verified_mem),
        ("verified file", "curl", r_verified_file),
        ("py mem", "py", r_py_mem),
        ("py file", "py", r_py_file),
        ("cli file", "cli", r_cli_file),
        ("c mem", "c", r_c_mem),
        ("c file", "c", r_c_file),
        ("skopeo", "skopeo", r_skopeo),
    ]
    if variant == "oci":
        runners.append(("oras", "oras-py", r_oras))
        runners.append(("work floor", "py", r_work))
    return runners
