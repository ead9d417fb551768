"""The Go face (package wasmimage) against go-containerregistry, the library Istio's and
Envoy Gateway's Wasm fetchers pull with: 50 MiB pulls into memory and to a file of both
variants, 64 goroutines in one process pulling one 1 MiB image, the peak RSS of a
200 MiB pull to a file (crane's own `crane pull` to an OCI layout beside the oci-variant
pulls to a file), and the cost of one cgo call (Go benchmarks: Resolve of an oci: layout,
ModuleFacts of the 8-byte module).

Both pullers are small Go programs in bench/go/ sharing one command line
(bench/go/pullflags), so each figure is a whole process doing the same work; written
files are flushed to disk before they are renamed into place by both. The Go programs
link libwasmimage statically, installed into the work folder by
`ffi/install.sh --static-only` (as tests/go/run.sh does)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from harness.common import BENCH, ROOT, MiB, log
from harness.processes import client_cpu, measure, run_quiet
from harness.results import Sample
from testbed import child_env

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "go_face"
GO = "wasm-image Go face"
GGCR = "go-containerregistry remote"
CRANE = "crane pull → OCI layout"
RESOLVE = "Resolve of an oci: layout (go test -bench)"
FACTS = "ModuleFacts of the 8-byte module (go test -bench)"
PULL_CASES = {  # case -> (variant, into memory?)
    "go pull-mem oci": ("oci", True),
    "go pull-file oci": ("oci", False),
    "go pull-mem compat": ("compat", True),
    "go pull-file compat": ("compat", False),
}
MANY = "go 64 goroutines pull 1 MiB"
CGO = "go cgo call"
CASES = {**{case: GGCR for case in PULL_CASES}, MANY: GGCR, CGO: None}  # case -> the peer of its × floor column
GOROUTINES = 64
BENCH_CALLS = "20000x"  # calls per Go benchmark run: a few hundred ms on a loaded machine
PULLED = re.compile(r"^(\d+) pulls of (\d+) bytes in [\d.]+ s$", re.M)


def run(b: Bench) -> None:
    if not any(b.want(case) for case in CASES):
        return
    work = b.work / "go-face"
    work.mkdir(exist_ok=True)
    exe = build(b, work)
    if exe is None:
        return
    for case, (variant, into_memory) in PULL_CASES.items():
        if b.want(case):
            for size in (50, 200) if case == "go pull-file oci" else (50,):
                if f"bench/{variant}-{size}m" in b.digests:
                    b.run_rounds(f"{case} {size} MiB", pull_runners(b, exe, case, variant, size, into_memory), b.repeats)
    if b.want(MANY):
        b.run_rounds(MANY, pull_runners(b, exe, MANY, "oci", 1, True, goroutines=GOROUTINES), b.repeats)
    if b.want(CGO):
        b.run_rounds(CGO, cgo_runners(b, exe["test"]), b.repeats)


# -- the programs -----------------------------------------------------------------------------


def go_env(prefix: Path) -> dict:
    """Go with libwasmimage from `prefix` (pkg-config). Go's build cache does not notice a
    changed C library or a new prefix: a define naming both changes its key exactly then
    (as tests/go/run.sh does)."""
    env = child_env({"PKG_CONFIG_PATH": str(prefix / "lib" / "pkgconfig")})
    env["PATH"] = os.pathsep.join(p for p in ("/usr/local/go/bin", env.get("PATH", ""), go_tools_bin()) if p)
    h = hashlib.sha256((str(prefix) + "\n").encode())
    for part in (prefix / "lib" / "libwasmimage.a", prefix / "include" / "wasm_image.h"):
        h.update(part.read_bytes())
    env["CGO_CFLAGS"] = f"{os.environ.get('CGO_CFLAGS', '-O2 -g')} -DWASMIMAGE_LIBRARY_BUILD={h.hexdigest()[:16]}"
    return env


def go_tools_bin() -> str:
    """Where .ci/install builds crane (see .ci/env.sh)."""
    tools = os.environ.get("WASM_IMAGE_GO_TOOLS") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wasm-image" / "go-tools")
    return str(Path(tools) / "bin")


def build(b: Bench, work: Path) -> dict[str, str] | None:
    """Installs the static library, builds the two pullers and the Go face's test binary;
    None (the family skipped, with the reason) when any of it fails."""
    path = os.pathsep.join(("/usr/local/go/bin", os.environ.get("PATH", "")))
    if not shutil.which("go", path=path):
        return skip(b, "go", "go not installed (bash .ci/install provides it)")
    prefix = work / "prefix"
    log("go_face: installing libwasmimage (release, static) with ffi/install.sh --static-only")
    try:
        run_quiet(["bash", str(ROOT / "ffi" / "install.sh"), "--static-only", str(prefix)], timeout=3600)
        env = go_env(prefix)
        exe = {}
        for name in ("wasmimage", "ggcr"):
            log(f"go_face: building bench/go/{name}")
            exe[name] = str(work / f"pull-{name}")
            run_go(["go", "build", "-o", exe[name], f"./{name}"], env, BENCH / "go")
        log("go_face: building the Go face's test binary (go test -c)")
        exe["test"] = str(work / "wasmimage.test")
        run_go(["go", "test", "-c", "-o", exe["test"], "."], env, ROOT / "go")
        b.versions["go"] = run_go(["go", "version"], env, BENCH / "go").strip().removeprefix("go version ")
        b.versions["go-containerregistry"] = run_go(
            ["go", "list", "-m", "-f", "{{.Version}}", "github.com/google/go-containerregistry"], env, BENCH / "go").strip()
    except Exception as e:  # noqa: BLE001
        return skip(b, "go", f"the Go face could not be built: {str(e)[-600:]}")
    crane = shutil.which("crane", path=env["PATH"])
    if crane:
        exe["crane"] = crane
        b.versions["crane"] = run_quiet([crane, "version"], check=False).strip() or "?"
        b.tools["crane"] = ""
    else:
        skip(b, "crane", f"crane not installed (bash .ci/install builds it into {go_tools_bin()})")
    b.tools["go"] = ""
    return exe


def run_go(argv: list[str], env: dict, cwd: Path) -> str:
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} (in {cwd}): exit {r.returncode}: {(r.stderr or r.stdout)[-800:]}")
    return r.stdout


def skip(b: Bench, tool: str, why: str) -> None:
    b.tools[tool] = why
    b.res.skipped[tool] = why
    log(f"skipping {tool}: {why}")
    return None


# -- the cases ----------------------------------------------------------------------------------


def pull_runners(b: Bench, exe: dict, case: str, variant: str, size: int, into_memory: bool,
                 goroutines: int = 1) -> list[tuple[str, str, object]]:
    """(tool, needs, run(repeat)) for one image: the Go face, ggcr and (to a file, oci) crane."""
    repo = f"bench/{variant}-{size}m"
    loc = f"{b.host}/{repo}:v1"
    d = b.digests[repo]
    nbytes = size * MiB

    def puller(tool: str, program: str):
        def r(i):
            out = b.scratch(f"go-{program}.wasm")
            argv = [exe[program], "-insecure", "-n", str(goroutines)]
            if not into_memory:
                argv += ["-o", str(out)]
            p = measure([*argv, loc])

            def check():
                m = PULLED.search(p.stdout)
                if not m or (int(m.group(1)), int(m.group(2))) != (goroutines, nbytes):
                    raise RuntimeError(f"expected {goroutines} pulls of {nbytes} bytes, got: {p.stdout.strip()[-200:]}")
                if not into_memory and (not out.exists() or out.stat().st_size != nbytes):
                    raise RuntimeError(f"{out.name}: {out.stat().st_size if out.exists() else -1} bytes, expected {nbytes}")
            b.sample(case, tool, size, i, [p], library=False, check=check)
            b.wipe(out)
        return r

    def r_crane(i):
        layout = b.scratch("go-crane-layout")
        b.wipe(layout)
        p = measure([exe["crane"], "pull", "--insecure", "--format", "oci", loc, str(layout)])

        def check():
            blob = layout / "blobs" / "sha256" / d["blob"].split(":", 1)[1]
            if not blob.exists() or blob.stat().st_size != d["blob_size"]:
                raise RuntimeError("crane's layout lacks the module blob")
        b.sample(case, CRANE, size, i, [p], library=False, check=check)
        b.wipe(layout)

    runners = [("go face", "go", puller(GO, "wasmimage")), ("ggcr", "go", puller(GGCR, "ggcr"))]
    if not into_memory and variant == "oci":
        runners.append(("crane", "crane", r_crane))
    return runners


def cgo_runners(b: Bench, test_exe: str) -> list[tuple[str, str, object]]:
    """One run of the Go face's test binary per benchmark and repeat: its ns/op is the
    sample's time (per call), the process its wall time and peak RSS."""

    def bench(tool: str, name: str):
        def r(i):
            p = measure([test_exe, "-test.run", "^$", "-test.bench", f"^Benchmark{name}$", "-test.benchtime", BENCH_CALLS,
                         "-test.count", "1"], cwd=str(ROOT / "go"))
            m = re.search(rf"^Benchmark{name}(?:-\d+)?\s+\d+\s+([\d.]+) ns/op", p.stdout, re.M)
            ok = p.returncode == 0 and m is not None
            per_call = float(m.group(1)) / 1e9 if ok else None
            b.res.add(Sample(case=CGO, tool=tool, size_mib=None, repeat=i, ok=ok, time_s=per_call, wall_s=p.wall_s,
                             op_s=per_call, maxrss_mib=p.maxrss_kib / 1024,
                             extra={"calls": int(BENCH_CALLS.rstrip("x")), **client_cpu([p])},
                             error=None if ok else f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[-500:]}"))
        return r

    return [("resolve", "go", bench(RESOLVE, "ResolveOCILayout")), ("facts", "go", bench(FACTS, "ModuleFacts"))]

