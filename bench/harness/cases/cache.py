"""The module cache (control-plane fetch): warm hits from Python (Client.fetch) and from C
(bench/cache_c.c, wasm_image_fetch), digest-pinned and by tag inside tag_ttl, with the
requests they make counted; one fetch of the 50 MiB oci image into an empty cache
against 64 concurrent fetches of it (64 threads, one client, an empty cache) with the
blob downloads counted, and a plain pull_to_file and pull of the same image beside them;
one durable insert, and gc() over 10,000 entries (a scan that evicts nothing, and an
evict-all).

Every fetch and pull here goes through the test bed's fault proxy, which counts the
requests, so the proxy's CPU is counted in these samples (via_proxy). Hits are timed per
call inside the process (a warming fetch first, then HITS calls): the sample's time is
the median call. The 10,000 entries gc looks at are one real entry per round plus copies
written in the cache's own on-disk form (10,000 durable inserts, each fsynced, would take
minutes; the insert is measured on its own)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.common import MiB, log
from harness.modules import small_module, write_module
from harness.processes import measure
from harness.servers import clear_requests
from harness.tools import link_c

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "cache"
PY = "wasm-image Python API (Client.fetch)"
C = "wasm-image C API (wasm_image_fetch)"
ONE = "one fetch, empty cache"
MANY = "64 concurrent fetches, empty cache (64 threads, one client)"
PULL_FILE = "pull_to_file (no cache)"
PULL_MEM = "pull into memory (no cache)"
INSERT = "one durable insert (4 KiB file:// module; median of 50)"
SCAN = "gc(), nothing to evict"
EVICT = "gc(max_bytes=0), evicting all"
HIT_PINNED = "cache warm hit, digest-pinned"
HIT_TAG = "cache warm hit, tag inside tag_ttl"
FETCH = "cache fetch 50 MiB"
GC = "cache gc over 10,000 entries"
CASES = {HIT_PINNED: None, HIT_TAG: None, FETCH: ONE, GC: None}  # case -> the peer of its × floor column
THREADS = 64
HITS = 2000  # timed calls per warm-hit sample
TAG_TTL_S = 3600  # the tag stays fresh over every round, however long the pauses
GC_ENTRIES = 10_000
INSERTS = 50
SETTLE_S = 0.5  # the proxy logs a request once it has answered it


def run(b: Bench) -> None:
    if not any(b.want(case) for case in CASES):
        return
    if not b.usable("py"):
        log(f"cache: skipped: {b.tools['py']}")
        return
    work = b.work / "cache"
    work.mkdir(exist_ok=True)
    c_exe, problem = link_c(b, "cache_c.c", "cache_c")
    if problem:
        b.tools["c-cache"] = b.res.skipped["c-cache"] = problem
        log(f"skipping the C cache hits: {problem}")
    for case, loc in ((HIT_PINNED, f"oci://{b.proxy}/bench/oci-1m@{b.digests['bench/oci-1m']['manifest']}"),
                      (HIT_TAG, f"oci://{b.proxy}/bench/oci-1m:v1")):
        if b.want(case):
            b.run_rounds(case, hit_runners(b, work, c_exe, case, loc), b.repeats)
    if b.want(FETCH):
        b.run_rounds(FETCH, fetch_runners(b), b.repeats)
    if b.want(GC):
        b.run_rounds(GC, [("gc", "py", gc_runner(b, work))], b.repeats)


def requests_since_cleared(b: Bench, match: str) -> list[dict]:
    time.sleep(SETTLE_S)
    return b.proxy_testbed.fault_log(match)


# -- warm hits --------------------------------------------------------------------------------


def hit_runners(b: Bench, work: Path, c_exe: str, case: str, loc: str) -> list[tuple[str, str, object]]:
    """Python and C, one process per sample, on one cache warmed here first; each sample
    keeps the requests the proxy saw while it ran (must be none)."""
    cache = work / ("hits-pinned" if case == HIT_PINNED else "hits-tag")
    p = measure(b.pyworker("cache_hits", {"cache": str(cache), "host": b.proxy, "location": loc, "n": 1, "tag_ttl": TAG_TTL_S}),
                env=b.py_env())
    if p.returncode != 0:
        raise RuntimeError(f"{case}: the warming fetch failed: {p.stderr.strip()[-500:]}")
    def counted(tool: str, argv: list[str], env: dict | None):
        def r(i):
            clear_requests(b)
            p = measure(argv, env=env)
            seen = requests_since_cleared(b, "/v2/")
            b.sample(case, tool, 1, i, [p], library=True, via_proxy=True,
                     extra={"requests": len(seen), "which": [f"{e['method']} {e['path']}" for e in seen]})
        return r

    py = b.pyworker("cache_hits", {"cache": str(cache), "host": b.proxy, "location": loc, "n": HITS, "tag_ttl": TAG_TTL_S})
    runners = [("py", "py", counted(PY, py, b.py_env()))]
    if c_exe:
        runners.append(("c", "c-cache", counted(C, [c_exe, str(cache), loc, b.proxy, str(HITS), str(TAG_TTL_S)], None)))
    return runners


# -- 50 MiB: one fetch, 64 at once, plain pulls -------------------------------------------------


def fetch_runners(b: Bench) -> list[tuple[str, str, object]]:
    repo = "bench/oci-50m"
    loc = f"{b.proxy}/{repo}:v1"
    blob = b.digests[repo]["blob"]
    nbytes = 50 * MiB

    def fetch(tool: str, threads: int):
        def r(i):
            cache = b.scratch(f"cache-fetch-{threads}")
            b.wipe(cache)
            clear_requests(b)
            p = measure(b.pyworker("cache_fetch", {"cache": str(cache), "host": b.proxy, "location": loc, "threads": threads}),
                        env=b.py_env())
            downloads = sum(1 for e in requests_since_cleared(b, f"/blobs/{blob}") if e["method"] == "GET")

            def check():
                if downloads != 1:
                    raise RuntimeError(f"{threads} fetches downloaded the module blob {downloads} times, expected once")
            b.sample(FETCH, tool, 50, i, [p], library=True, via_proxy=True, check=check, extra={"blob_downloads": downloads})
            b.wipe(cache)
        return r

    def r_pull_file(i):
        out = b.scratch("cache-pull.wasm")
        p = measure(b.pyworker("pull_to_file", {"host": b.proxy, "location": loc, "path": str(out), "size": nbytes}),
                    env=b.py_env())
        b.sample(FETCH, PULL_FILE, 50, i, [p], library=True, via_proxy=True)
        b.wipe(out)

    def r_pull_mem(i):
        p = measure(b.pyworker("pull", {"host": b.proxy, "location": loc, "size": nbytes}), env=b.py_env())
        b.sample(FETCH, PULL_MEM, 50, i, [p], library=True, via_proxy=True)

    return [("one", "py", fetch(ONE, 1)), ("many", "py", fetch(MANY, THREADS)),
            ("pull_to_file", "py", r_pull_file), ("pull", "py", r_pull_mem)]


# -- inserts and gc over 10,000 entries -----------------------------------------------------------


def gc_runner(b: Bench, work: Path):
    """One round: 50 durable inserts into a fresh cache (a sample), 9,950 copies of their
    first entry, then a gc that evicts nothing and one that evicts all (a sample each)."""
    base = small_module(work)

    def r(i):
        cache, modules = work / "gc", work / "inserts"
        b.wipe(cache, modules)
        modules.mkdir()
        files = []
        for k in range(INSERTS):
            path = modules / f"m{k}.wasm"
            write_module(path, base, 4096)
            files.append(str(path))
        p = measure(b.pyworker("cache_insert", {"cache": str(cache), "files": files}), env=b.py_env())
        b.sample(GC, INSERT, None, i, [p], library=True)
        if p.returncode != 0:
            return
        first = sorted((cache / "entries").glob("*.json"))[0]
        seed_entries(cache, json.loads(first.read_text())["digest"], GC_ENTRIES - INSERTS)
        os.sync()  # the copies reach the disk now, not during the timed gc
        for tool, evict_all in ((SCAN, False), (EVICT, True)):
            p = measure(b.pyworker("cache_gc", {"cache": str(cache), "entries": GC_ENTRIES, "evict_all": evict_all}),
                        env=b.py_env())
            b.sample(GC, tool, None, i, [p], library=True)
        b.wipe(cache, modules)
    return r


def seed_entries(cache_dir: Path, template_digest: str, count: int) -> None:
    """Copies one real entry (made by an insert) `count` times under new digests, in the
    cache's own on-disk form (module, record, lease file), with distinct last uses."""
    hex_ = template_digest.split(":", 1)[1]
    record = json.loads((cache_dir / "entries" / f"{hex_}.json").read_text())
    module = (cache_dir / "modules" / f"{hex_}.wasm").read_bytes()
    now = time.time()
    for i in range(count):
        data = module + i.to_bytes(8, "little")  # distinct bytes, distinct digest
        d = hashlib.sha256(data).hexdigest()
        m = cache_dir / "modules" / f"{d}.wasm"
        m.write_bytes(data)
        os.chmod(m, 0o444)
        e = cache_dir / "entries" / f"{d}.json"
        e.write_text(json.dumps(dict(record, digest=f"sha256:{d}", size=len(data))))
        (cache_dir / "leases" / f"{d}.lock").touch()  # every insert leaves its lease file
        os.utime(e, (now - count + i, now - count + i))
