#!/usr/bin/env python3
"""One measured operation of a Python library, in its own process (so that its peak RSS
is its own): run by bench/run.py, never by hand.

    pyworker.py OP JSON_ARGS

prints one JSON line: {"op_s": seconds of the operation itself, "import_s": seconds to
import the library, ...}. The operation is timed with perf_counter around exactly the
calls a user would make; interpreter start-up and the import are reported apart.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def _client(wi, args):
    return wi.Client(insecure=[args["host"]], use_config_files=False)


def op_noop(args):
    t0 = time.perf_counter()
    import wasm_image  # noqa: F401

    return {"import_s": time.perf_counter() - t0, "op_s": time.perf_counter() - t0}


def op_noop_oras(args):
    t0 = time.perf_counter()
    import oras.client  # noqa: F401

    return {"import_s": time.perf_counter() - t0, "op_s": time.perf_counter() - t0}


def op_pull(args):
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    client = _client(wi, args)
    # A signed image's signature is checked against this public key before the module
    # is read (the trust is made before the clock starts, as a control plane makes it once).
    trust = wi.Trust([args["verify_key"]]) if args.get("verify_key") else None
    t2 = time.perf_counter()
    img = client.pull(args["location"], verify=trust)
    module = img.module  # the bytes a caller gets
    t3 = time.perf_counter()
    if len(module) != args["size"]:
        raise SystemExit(f"pulled {len(module)} bytes, expected {args['size']}")
    return {"import_s": t1 - t0, "op_s": t3 - t2, "variant": img.variant, "manifest_digest": img.manifest_digest}


def op_pull_to_file(args):
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    client = _client(wi, args)
    t2 = time.perf_counter()
    info = client.pull_to_file(args["location"], args["path"])
    t3 = time.perf_counter()
    size = os.path.getsize(args["path"])
    if size != args["size"]:
        raise SystemExit(f"wrote {size} bytes, expected {args['size']}")
    return {"import_s": t1 - t0, "op_s": t3 - t2, "variant": info.variant}


def op_build_push(args):
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    client = _client(wi, args)
    t2 = time.perf_counter()
    img = wi.build(args["module"], variant=args["variant"])
    t3 = time.perf_counter()
    digest = client.push(img, args["location"])
    t4 = time.perf_counter()
    return {"import_s": t1 - t0, "op_s": t4 - t2, "build_s": t3 - t2, "push_s": t4 - t3, "digest": digest}


def op_resolve(args):
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    client = _client(wi, args)
    t2 = time.perf_counter()
    digest = client.resolve(args["location"])
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "op_s": t3 - t2, "digest": digest}


def op_pull_many(args):
    """n pulls of one image with one shared Client: all at once on n threads
    (released together by a barrier), or one after another on this thread."""
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    client = _client(wi, args)
    n, size, loc = args["n"], args["size"], args["location"]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one():
        s = time.perf_counter()
        try:
            img = client.pull(loc)
            ok = len(img.module) == size
            err = None if ok else f"{len(img.module)} bytes"
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            err = f"{type(e).__name__}: {e}"
        with lock:
            latencies.append(time.perf_counter() - s)
            if err:
                errors.append(err)

    if args["parallel"]:
        barrier = threading.Barrier(n + 1)

        def worker():
            barrier.wait()
            one()

        threads = [threading.Thread(target=worker) for _ in range(n)]
        for t in threads:
            t.start()
        t2 = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join()
    else:
        t2 = time.perf_counter()
        for _ in range(n):
            one()
    t3 = time.perf_counter()
    if errors:
        raise SystemExit(f"{len(errors)} of {n} pulls failed: {errors[:3]}")
    latencies.sort()
    return {
        "import_s": t1 - t0,
        "op_s": t3 - t2,
        "latency_median_s": latencies[len(latencies) // 2],
        "latency_max_s": latencies[-1],
    }


def op_work_floor(args):
    """The work a verifying pull cannot skip, timed in-process: one SHA-256 pass over the
    bytes (hashlib: OpenSSL, SHA-NI where the CPU has it) and one copy of them into fresh
    memory (a new bytearray: the copy and its page faults)."""
    import hashlib

    data = os.urandom(args["size"])
    t0 = time.perf_counter()
    hashlib.sha256(data).digest()
    t1 = time.perf_counter()
    copy = bytearray(data)
    t2 = time.perf_counter()
    if len(copy) != len(data):
        raise SystemExit("the copy lost bytes")
    return {"op_s": t2 - t0, "sha256_s": t1 - t0, "copy_s": t2 - t1, "sha256_gbps": len(data) / (t1 - t0) / 1e9}


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS in /proc/self/status")


def op_pull_async_rss(args):
    """`n` concurrent pull_async calls of one small image, on one asyncio loop and one
    Client, after a single pull (so what any first pull starts, the runtime, exists before
    the baseline; nothing that n pulls at once need): RSS over that baseline, sampled every
    millisecond while the pulls are in flight, and per in-flight pull."""
    import asyncio

    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    client = _client(wi, args)
    n, size, loc = args["n"], args["size"], args["location"]

    async def round_of_pulls():
        images = await asyncio.gather(*(client.pull_async(loc) for _ in range(n)))
        bad = [len(i.module) for i in images if len(i.module) != size]
        if bad:
            raise SystemExit(f"pulled {bad[:3]} bytes, expected {size}")

    async def measured():
        peak = 0
        done = asyncio.Event()

        async def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_kib())
                await asyncio.sleep(0.001)

        sampler = asyncio.ensure_future(sample())
        start = time.perf_counter()
        await round_of_pulls()
        took = time.perf_counter() - start
        done.set()
        await sampler
        return took, max(peak, _rss_kib())

    async def main():
        image = await client.pull_async(loc)
        if len(image.module) != size:
            raise SystemExit(f"pulled {len(image.module)} bytes, expected {size}")
        del image
        baseline = _rss_kib()
        took, peak = await measured()
        return baseline, took, peak

    baseline, took, peak = asyncio.run(main())
    over = max(0, peak - baseline)
    return {"import_s": t1 - t0, "op_s": took, "baseline_rss_mib": baseline / 1024, "peak_rss_mib": peak / 1024,
            "over_baseline_mib": over / 1024, "per_pull_kib": over / n, "n": n}


# -- the module cache (Client.fetch) ------------------------------------------------------


def _cached_client(wi, args, tag_ttl=60.0):
    cache = wi.Cache(dir=args["cache"], tag_ttl=tag_ttl)
    return cache, wi.Client(cache=cache, insecure=[args["host"]], use_config_files=False)


def op_cache_hits(args):
    """n fetches of a location already in the cache, each timed alone (fetch and release
    of the lease, its whole life); op_s is their median."""
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    cache, client = _cached_client(wi, args, tag_ttl=args["tag_ttl"])
    t2 = time.perf_counter()
    client.fetch(args["location"]).release()
    first = time.perf_counter() - t2
    took = []
    hits_before = cache.stats().hits
    for _ in range(args["n"]):
        s = time.perf_counter()
        with client.fetch(args["location"]):
            pass
        took.append(time.perf_counter() - s)
    took.sort()
    hits = cache.stats().hits - hits_before
    if hits != args["n"]:
        raise SystemExit(f"{hits} of {args['n']} timed fetches were cache hits")
    return {"import_s": t1 - t0, "op_s": took[len(took) // 2], "first_s": first, "p90_us": took[len(took) * 9 // 10] * 1e6,
            "min_us": took[0] * 1e6, "n": len(took)}


def op_cache_fetch(args):
    """`threads` fetches of one location at once (threads released together by a barrier)
    on one client with one cache; they must all get the same module."""
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    cache, client = _cached_client(wi, args)
    n = args["threads"]
    entries, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(n + 1)

    def one():
        barrier.wait()
        try:
            e = client.fetch(args["location"])
            with lock:
                entries.append(e)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            with lock:
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    t2 = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    t3 = time.perf_counter()
    if errors:
        raise SystemExit(f"{len(errors)} of {n} fetches failed: {errors[:3]}")
    digests = {e.module_digest for e in entries}
    for e in entries:
        e.release()
    if len(digests) != 1:
        raise SystemExit(f"{n} fetches got {len(digests)} different modules")
    s = cache.stats()
    return {"import_s": t1 - t0, "op_s": t3 - t2, "misses": s.misses, "hits": s.hits}


def op_cache_insert(args):
    """One durable insert per file:// module (a fetch into the cache); op_s is their median."""
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    _, client = _cached_client(wi, {**args, "host": "127.0.0.1"})
    took = []
    for path in args["files"]:
        s = time.perf_counter()
        client.fetch("file://" + path).release()
        took.append(time.perf_counter() - s)
    took.sort()
    return {"import_s": t1 - t0, "op_s": took[len(took) // 2], "n": len(took)}


def op_cache_gc(args):
    """gc() of a cache, with nothing to evict (scan) or evicting everything (max_bytes=0)."""
    t0 = time.perf_counter()
    import wasm_image as wi

    t1 = time.perf_counter()
    cache = wi.Cache(dir=args["cache"])
    entries = len(cache.entries())
    if entries != args["entries"]:
        raise SystemExit(f"{entries} entries in the cache, expected {args['entries']}")
    t2 = time.perf_counter()
    report = cache.gc(max_bytes=0) if args["evict_all"] else cache.gc()
    t3 = time.perf_counter()
    expect = entries if args["evict_all"] else 0
    if len(report.removed) != expect:
        raise SystemExit(f"gc removed {len(report.removed)} entries, expected {expect}")
    return {"import_s": t1 - t0, "op_s": t3 - t2, "entries": entries, "removed": len(report.removed)}


# -- oras-py, the peer Python client ---------------------------------------------------


def _oras(args):
    import logging

    import oras.client
    import oras.logger

    logging.disable(logging.CRITICAL)
    try:
        oras.logger.setup_logger(quiet=True)
    except Exception:  # noqa: BLE001 - older/newer oras-py: logging is cosmetic
        pass
    return oras.client.OrasClient(hostname=args["host"], insecure=True)


def op_oras_pull(args):
    t0 = time.perf_counter()
    import oras.client  # noqa: F401

    t1 = time.perf_counter()
    client = _oras(args)
    t2 = time.perf_counter()
    files = client.pull(target=args["target"], outdir=args["outdir"])
    t3 = time.perf_counter()
    sizes = sorted(os.path.getsize(f) for f in files)
    if not sizes or sizes[-1] != args["size"]:
        raise SystemExit(f"oras pulled {files} with sizes {sizes}, expected a {args['size']}-byte module")
    return {"import_s": t1 - t0, "op_s": t3 - t2}


def op_oras_push(args):
    t0 = time.perf_counter()
    import oras.client  # noqa: F401

    t1 = time.perf_counter()
    client = _oras(args)
    t2 = time.perf_counter()
    # oras-py names files relative to the working directory: run from the module's folder.
    os.chdir(os.path.dirname(args["module"]))
    resp = client.push(
        target=args["target"],
        files=[f"{os.path.basename(args['module'])}:application/vnd.module.wasm.content.layer.v1+wasm"],
        manifest_config=f"{os.path.basename(args['config'])}:application/vnd.module.wasm.config.v1+json",
        disable_path_validation=True,
        quiet=True,
    )
    t3 = time.perf_counter()
    if resp.status_code not in (200, 201):
        raise SystemExit(f"oras push: HTTP {resp.status_code}")
    return {"import_s": t1 - t0, "op_s": t3 - t2}


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


def main() -> int:
    op, raw = sys.argv[1], sys.argv[2]
    out = OPS[op](json.loads(raw))
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
