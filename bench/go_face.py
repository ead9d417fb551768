#!/usr/bin/env python3
"""The Go face (package wasmimage) against go-containerregistry, side by side in one run.

    python3 bench/go_face.py [--repeats N] [--quick] [--json FILE]

go-containerregistry (`remote`, what Istio's and Envoy Gateway's Wasm fetchers pull
with) is the Go peer. Both are driven by small Go programs in bench/go/ that take the
same flags, so each measured figure is a whole process doing the same work. The script
installs libwasmimage with `ffi/install.sh --static-only` into a temporary prefix,
builds the programs, starts its own docker-registry on 127.0.0.1, pushes 1, 50 and
200 MiB modules as oci-variant and compat images, and measures, repeated and
interleaved (every tool once per round, so drifting load hits all alike):

* a 50 MiB pull into memory and to a file, both variants;
* 64 goroutines in one process pulling one 1 MiB image;
* the peak RSS of pulling a 200 MiB module to a file;
* the cost of one cgo call: a Go benchmark (go test -bench) of Resolve of an oci:
  layout, and of ModuleFacts of the smallest module (no I/O);
* crane's own `crane pull` (OCI layout on disk) as a reference line.

Written files are flushed to disk before they are renamed into place, by both (the
peer program does what wasm-image does, so a crash never leaves a torn module).

Wall time and peak RSS come from wait4 on each process (bench/runstat.c). Prints a
Markdown table and writes every sample to --json (default bench/go_face.json).
The one entry point for other scripts is `run(repeats, quick, json_path)`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MiB = 1 << 20

OURS = "wasmimage (Go)"
PEER = "go-containerregistry remote"
CRANE = "crane pull (OCI layout)"

TARGET_RATIO = 0.7  # Go pull time / ggcr's
TARGET_RSS_MIB = 40  # peak RSS pulling 200 MiB to a file
TARGET_CGO_US = 20  # one cgo call (Resolve of an oci: layout)


def log(msg: str) -> None:
    print(f"[go_face {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_quiet(argv: list[str], *, env: dict | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


# ------------------------------------------------------------------------------ modules --


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def compressible_bytes(n: int) -> bytes:
    """Bytes gzip shrinks about 2.6 times, like real Wasm code: 6-byte words drawn from
    a vocabulary of 2048 random words."""
    vocab = [os.urandom(6) for _ in range(2048)]
    count = n // 6 + 1
    idx = os.urandom(2 * count)
    return b"".join(vocab[(idx[2 * i] << 8 | idx[2 * i + 1]) & 2047] for i in range(count))[:n]


def write_module(path: Path, total: int, compressible: bool) -> None:
    """The empty module plus one custom section, exactly `total` bytes: valid Wasm."""
    base, name = b"\0asm\x01\0\0\0", leb128(5) + b"bench"
    for size_len in range(1, 6):
        content = total - len(base) - 1 - size_len
        if len(leb128(content)) == size_len:
            break
    with open(path, "wb") as f:
        f.write(base + b"\x00" + leb128(content) + name)
        left = content - len(name)
        while left:
            n = min(left, 4 * MiB)
            f.write(compressible_bytes(n) if compressible else os.urandom(n))
            left -= n
    assert path.stat().st_size == total


# ------------------------------------------------------------------------------ servers --


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'registry'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "registry.log", "wb"),
        start_new_session=True,
    )
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()
            return proc, f"127.0.0.1:{port}"
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("docker-registry did not start: " + (work / "registry.log").read_text())
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------------------- the tools --


def go_env(prefix: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(["/usr/local/go/bin", env.get("PATH", "")])
    env["PKG_CONFIG_PATH"] = str(prefix / "lib" / "pkgconfig")
    # Go's build cache does not notice a changed C library or prefix: name both.
    h = hashlib.sha256(str(prefix).encode())
    for part in (prefix / "lib" / "libwasmimage.a", prefix / "include" / "wasm_image.h"):
        h.update(part.read_bytes())
    env["CGO_CFLAGS"] = f"-O2 -g -DWASMIMAGE_LIBRARY_BUILD={h.hexdigest()[:16]}"
    return env


def build_tools(work: Path) -> tuple[dict, dict]:
    prefix = work / "prefix"
    log("installing libwasmimage (release, static) with ffi/install.sh --static-only")
    run_quiet(["bash", str(ROOT / "ffi" / "install.sh"), "--static-only", str(prefix)])
    env = go_env(prefix)
    tools = {}
    for name in ("wasmimage", "ggcr"):
        log(f"building bench/go/{name}")
        out = work / f"bench-{name}"
        run_quiet(["go", "build", "-o", str(out), f"./{name}"], env=env, cwd=HERE / "go")
        tools[name] = out
    run_quiet(["cc", "-O2", "-o", str(work / "runstat"), str(HERE / "runstat.c")])
    tools["runstat"] = work / "runstat"
    # .ci/install builds crane into this cache (see .ci/env.sh).
    go_tools = os.environ.get("WASM_IMAGE_GO_TOOLS") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wasm-image" / "go-tools"
    )
    crane = shutil.which("crane", path=env["PATH"] + os.pathsep + go_tools + "/bin")
    if crane:
        tools["crane"] = Path(crane)
    return tools, env


def measure(runstat: Path, argv: list[str], work: Path, env: dict) -> tuple[float, float, float]:
    """Runs argv as its own process; gives (wall seconds, peak RSS in MiB, CPU seconds)."""
    report = work / "runstat.out"
    done = subprocess.run([str(runstat), str(report), "--", *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    _, maxrss_kib, wall, user, system = report.read_text().split()
    return float(wall), int(maxrss_kib) / 1024, float(user) + float(system)


def cgo_benchmarks(env: dict, quick: bool) -> dict[str, list[float]]:
    """ns per call of the Go benchmarks in go/bench_test.go."""
    count = "3" if quick else "5"
    out = run_quiet(
        ["go", "test", "-run", "^$", "-bench", "ResolveOCILayout|ModuleFacts", "-benchtime", "20000x", "-count", count, "."],
        env=env,
        cwd=ROOT / "go",
    )
    found: dict[str, list[float]] = {}
    for m in re.finditer(r"^Benchmark(\w+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op", out, re.M):
        found.setdefault(m.group(1), []).append(float(m.group(2)))
    if "ResolveOCILayout" not in found:
        raise RuntimeError("no benchmark result in:\n" + out)
    return found


# ---------------------------------------------------------------------------- the cases --


def cases(host: str, work: Path, quick: bool) -> list[dict]:
    """What to pull: (case name, location, flags, tools)."""
    out = []
    for variant in ("oci", "compat"):
        loc = f"{host}/bench/m50:{variant}"
        out.append({"case": f"pull 50 MiB {variant}, into memory", "location": loc, "flags": [], "key": "50", "variant": variant})
        out.append(
            {
                "case": f"pull 50 MiB {variant}, to a file",
                "location": loc,
                "flags": ["-o", str(work / "out" / "m50.wasm")],
                "key": "50",
                "variant": variant,
                "crane": variant == "oci",
            }
        )
    out.append(
        {"case": "64 goroutines pull one 1 MiB image", "location": f"{host}/bench/m1:oci", "flags": ["-n", "64"], "key": "1", "variant": "oci"}
    )
    out.append(
        {
            "case": "pull 200 MiB oci to a file (peak RSS)",
            "location": f"{host}/bench/m200:oci",
            "flags": ["-o", str(work / "out" / "m200.wasm")],
            "key": "200",
            "variant": "oci",
            "rss": True,
        }
    )
    if quick:
        out = [c for c in out if "compat" not in c["case"] or "memory" in c["case"]]
    return out


def run(repeats: int = 5, quick: bool = False, json_path: Path | None = None) -> dict:
    """Runs every case `repeats` times, interleaved; returns (and writes) the results."""
    for tool in ("go", "docker-registry", "cc"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + os.pathsep + "/usr/local/go/bin"):
            raise SystemExit(f"go_face: {tool} is needed (bash .ci/install provides it)")
    work = Path(tempfile.mkdtemp(prefix="wasm-image-go-face-"))
    registry = None
    try:
        tools, env = build_tools(work)
        registry, host = start_registry(work)
        log(f"registry at {host}; writing modules")
        (work / "out").mkdir()
        sizes = {"1": 1 * MiB, "50": 50 * MiB, "200": 200 * MiB}
        for key, size in sizes.items():
            write_module(work / f"m{key}.wasm", size, compressible=(key == "50"))
            for variant in ("oci", "compat") if key == "50" else ("oci",):
                run_quiet(
                    [str(tools["wasmimage"]), "-insecure", "-push", str(work / f"m{key}.wasm"), "-variant", variant, f"{host}/bench/m{key}:{variant}"],
                    env=env,
                )
        todo = cases(host, work, quick)
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {c["case"]: {} for c in todo}
        for round_no in range(repeats):
            log(f"round {round_no + 1}/{repeats}")
            for i, case in enumerate(todo):
                runners = [(OURS, tools["wasmimage"]), (PEER, tools["ggcr"])]
                if round_no % 2:
                    runners.reverse()
                for label, binary in runners:
                    argv = [str(binary), "-insecure", *case["flags"], case["location"]]
                    samples[case["case"]].setdefault(label, []).append(measure(tools["runstat"], argv, work, env))
                if case.get("crane") and "crane" in tools:
                    layout = work / "out" / f"crane-{round_no}-{i}"
                    argv = [str(tools["crane"]), "pull", "--insecure", "--format", "oci", case["location"], str(layout)]
                    samples[case["case"]].setdefault(CRANE, []).append(measure(tools["runstat"], argv, work, env))
                    shutil.rmtree(layout, ignore_errors=True)
                for stale in (work / "out").glob("m*.wasm*"):
                    stale.unlink()
        log("cgo benchmarks (go test -bench)")
        cgo = cgo_benchmarks(env, quick)
        result = summarize(samples, cgo, repeats)
        result["machine"] = {"cores": os.cpu_count(), "go": run_quiet(["go", "version"], env=env).strip()}
        path = json_path or HERE / "go_face.json"
        path.write_text(json.dumps({**result, "samples": samples, "cgo_ns": cgo}, indent=2) + "\n")
        print(markdown(result))
        return result
    finally:
        if registry is not None:
            stop(registry)
        shutil.rmtree(work, ignore_errors=True)


def summarize(samples: dict, cgo: dict, repeats: int) -> dict:
    rows = []
    for case, by_tool in samples.items():
        ours = by_tool[OURS]
        peer = by_tool[PEER]
        row = {
            "case": case,
            "ours_s": statistics.median(s for s, _, _ in ours),
            "peer_s": statistics.median(s for s, _, _ in peer),
            "ours_rss_mib": max(r for _, r, _ in ours),
            "peer_rss_mib": max(r for _, r, _ in peer),
            "ours_cpu_s": statistics.median(c for _, _, c in ours),
            "peer_cpu_s": statistics.median(c for _, _, c in peer),
        }
        row["ratio"] = row["ours_s"] / row["peer_s"]
        if CRANE in by_tool:
            row["crane_s"] = statistics.median(s for s, _, _ in by_tool[CRANE])
            row["crane_rss_mib"] = max(r for _, r, _ in by_tool[CRANE])
        rows.append(row)
    resolve_us = statistics.median(cgo["ResolveOCILayout"]) / 1000
    facts_us = statistics.median(cgo.get("ModuleFacts", [float("nan")])) / 1000
    rss_row = next(r for r in rows if "RSS" in r["case"])
    time_rows = [r for r in rows if "RSS" not in r["case"]]
    targets = [
        {
            "target": f"Go pull ≤ {TARGET_RATIO}× ggcr's time (worst case)",
            "value": max(r["ratio"] for r in time_rows),
            "met": all(r["ratio"] <= TARGET_RATIO for r in time_rows),
        },
        {"target": f"peak RSS ≤ {TARGET_RSS_MIB} MiB, 200 MiB to a file", "value": rss_row["ours_rss_mib"], "met": rss_row["ours_rss_mib"] <= TARGET_RSS_MIB},
        {"target": f"cgo call (Resolve of an oci: layout) ≤ {TARGET_CGO_US} µs", "value": resolve_us, "met": resolve_us <= TARGET_CGO_US},
    ]
    return {"repeats": repeats, "rows": rows, "resolve_us": resolve_us, "module_facts_us": facts_us, "targets": targets}


def markdown(result: dict) -> str:
    lines = [
        f"Medians of {result['repeats']} interleaved runs; each figure is a whole process (wall time and peak RSS from wait4).",
        "",
        f"| case | {OURS} | {PEER} | ratio | CPU ours / ggcr (s) | peak RSS ours / ggcr (MiB) | {CRANE} |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        crane = f"{r['crane_s']:.3f} s ({r['crane_rss_mib']:.0f} MiB)" if "crane_s" in r else ""
        lines.append(
            f"| {r['case']} | {r['ours_s']:.3f} s | {r['peer_s']:.3f} s | {r['ratio']:.2f}× | "
            f"{r['ours_cpu_s']:.2f} / {r['peer_cpu_s']:.2f} | {r['ours_rss_mib']:.0f} / {r['peer_rss_mib']:.0f} | {crane} |"
        )
    lines += [
        "",
        f"cgo: Resolve of an oci: layout {result['resolve_us']:.1f} µs per call; ModuleFacts of the 8-byte module {result['module_facts_us']:.2f} µs per call (go test -bench).",
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['value']:.2f} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats, fewer cases")
    parser.add_argument("--json", type=Path, default=None, help="where to write the samples (default bench/go_face.json)")
    args = parser.parse_args(argv)
    result = run(3 if args.quick else args.repeats, args.quick, args.json)
    return 0 if all(t["met"] for t in result["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
