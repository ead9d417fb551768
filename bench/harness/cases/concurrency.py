"""64 pulls of a 1 MiB image: 64 threads on one Client, the same 64 one after another,
and skopeo and curl run as 64 processes in parallel. And the memory of many pulls in
flight: 100 concurrent pull_async calls of a 16-byte module from an oci: layout."""

from __future__ import annotations

import concurrent.futures
import subprocess
import time
from typing import TYPE_CHECKING

from harness.common import MiB
from harness.cpu import server_marks, servers_used_ms
from harness.processes import Proc, client_cpu, measure
from harness.results import Sample
from testbed import MANIFEST_ACCEPT

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "concurrency"
CASE = "64 pulls of 1 MiB"
IN_FLIGHT = "100 concurrent pull_async of a 16-byte module (oci: layout)"
CASES = {CASE: "curl ×64 processes in parallel (floor)", IN_FLIGHT: None}  # case -> the tool its × floor column compares with
N = 64
PULLS_IN_FLIGHT = 100
ASYNC_TOOL = "wasm-image Python API, pull_async"
# The smallest module worth the name: the Wasm header and one 6-byte custom section.
SMALL_MODULE = b"\0asm\x01\0\0\0" + bytes([0, 6, 1]) + b"x" + bytes(4)


def run(b: Bench) -> None:
    run_64(b)
    run_in_flight(b)


def run_in_flight(b: Bench) -> None:
    """RSS over a one-pull baseline while 100 pull_async calls of a tiny image are in flight."""
    if not b.want("pull_async"):
        return
    layout = b.scratch("small-layout")
    b.wipe(layout)
    make = ("import sys, wasm_image as wi\n"
            "wi.push(wi.build(bytes.fromhex(sys.argv[2])), 'oci:' + sys.argv[1] + ':v1')\n")
    subprocess.run([b.python, "-c", make, str(layout), SMALL_MODULE.hex()], check=True, env=b.py_env())
    loc = f"oci:{layout}:v1"

    def r_async(i):
        p = measure(b.pyworker("pull_async_rss", {"host": b.host, "location": loc, "size": len(SMALL_MODULE),
                                                  "n": PULLS_IN_FLIGHT}), env=b.py_env())
        b.sample(IN_FLIGHT, ASYNC_TOOL, None, i, [p], library=True)

    b.run_rounds(IN_FLIGHT, [("async", "py", r_async)], b.repeats)


def run_64(b: Bench) -> None:
    if not b.want("64 pulls"):
        return
    repo = "bench/oci-1m"
    loc = f"{b.host}/{repo}:v1"
    d = b.digests[repo]

    def r_threads(i):
        p = measure(b.pyworker("pull_many", {"host": b.host, "location": loc, "size": MiB, "n": N, "parallel": True}), env=b.py_env())
        b.sample(CASE, "wasm-image: 64 threads, one Client", 1, i, [p], library=True)

    def r_seq(i):
        p = measure(b.pyworker("pull_many", {"host": b.host, "location": loc, "size": MiB, "n": N, "parallel": False}), env=b.py_env())
        b.sample(CASE, "wasm-image: 64 in sequence, one Client", 1, i, [p], library=True)

    def r_skopeo(i):
        base = b.scratch("skopeo64")
        b.wipe(base)
        base.mkdir()
        t0 = time.perf_counter()
        procs, servers = parallel_procs(lambda k: ["skopeo", "--policy", b.policy, "copy", "--quiet", "--retry-times", "0",
                                                   "--src-tls-verify=false", f"docker://{loc}", f"oci:{base / str(k)}:v1"],
                                        b.containers_env())
        wall = time.perf_counter() - t0
        concurrent_sample(b, "skopeo ×64 processes in parallel", i, procs, wall, servers)
        b.wipe(base)

    def r_curl(i):
        url_m = f"http://{b.host}/v2/{repo}/manifests/v1"
        url_b = f"http://{b.host}/v2/{repo}/blobs/{d['blob']}"
        t0 = time.perf_counter()
        procs, servers = parallel_procs(lambda k: ["curl", "-sS", "--fail", "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", "/dev/null", url_m,
                                                   "--next", "-sS", "--fail", "-o", "/dev/null", url_b], None)
        wall = time.perf_counter() - t0
        concurrent_sample(b, "curl ×64 processes in parallel (floor)", i, procs, wall, servers)

    b.run_rounds(CASE, [
        ("threads", "py", r_threads),
        ("seq", "py", r_seq),
        ("skopeo", "skopeo", r_skopeo),
        ("curl", "curl", r_curl),
    ], b.repeats)


def parallel_procs(make_argv, env) -> tuple[list[Proc], dict]:
    """The N processes, and the servers' CPU over the whole batch (each process's
    own figure overlaps the others')."""
    marks = server_marks()
    with concurrent.futures.ThreadPoolExecutor(N) as pool:
        futs = [pool.submit(measure, make_argv(k), env=env) for k in range(N)]
        procs = [f.result() for f in futs]
    return procs, servers_used_ms(marks, server_marks())


def concurrent_sample(b: Bench, tool: str, i: int, procs: list[Proc], wall: float, servers: dict) -> None:
    ok = all(p.returncode == 0 for p in procs)
    bad = [p for p in procs if p.returncode != 0]
    extra = {"processes": len(procs), "rss_sum_mib": round(sum(p.maxrss_kib for p in procs) / 1024, 1), **client_cpu(procs)}
    if "registry" in servers:
        extra["registry_cpu_ms"] = servers["registry"]
        extra["registry_cpu_stat_ms"] = servers["registry_stat"]
    b.res.add(
        Sample(
            case=CASE, tool=tool, size_mib=1, repeat=i, ok=ok, time_s=wall if ok else None, wall_s=wall, op_s=None,
            maxrss_mib=max(p.maxrss_kib for p in procs) / 1024,
            extra=extra,
            error=None if ok else f"{len(bad)} failed: {(bad[0].stderr or '')[-300:]}",
        )
    )
