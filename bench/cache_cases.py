#!/usr/bin/env python3
"""Control-plane fetch through the module cache, against a plain pull of the same image
in the same run.

    python3 bench/cache_cases.py [--python PY] [--lib-dir DIR] [--repeats N] [--out FILE]

Starts its own docker-registry (CNCF distribution) on 127.0.0.1 with the test bed's
fault proxy in front of it (to count requests), pushes a small and a 50 MiB oci-variant
image, and measures:

* a warm hit of a digest-pinned location and of a tag inside `tag_ttl`, per call (fetch
  and release of the lease), from Python (`Client.fetch`) and from C (`bench/cache_c.c`),
  with the requests the proxy saw during the hits (must be 0);
* 64 concurrent fetches of the 50 MiB image (64 threads, one client, an empty cache)
  against one fetch into an empty cache, with the blob downloads counted (must be 1),
  and a plain `pull_to_file` and `pull` (into memory) of the same image beside them,
  interleaved round by round;
* `gc()` over 10,000 entries: a scan that evicts nothing, and one that evicts all.

`run_cache_cases(...)` is the one entry point (bench/run.py calls it with its
interpreter, library folder and work folder); run as a script it prints the results as
JSON and writes them to --out. Everything it starts lives in process groups and one
temporary folder removed in a `finally`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from testbed import Starter  # noqa: E402

MiB = 1 << 20
GC_ENTRIES = 10_000

# ---- the worker: runs in the measured interpreter ---------------------------------------

WORKER = textwrap.dedent(
    r'''
    import json, sys, threading, time, statistics
    import wasm_image

    def client(cache_dir, insecure, tag_ttl=60.0):
        cache = wasm_image.Cache(dir=cache_dir, tag_ttl=tag_ttl)
        return cache, wasm_image.Client(cache=cache, insecure=[insecure], use_config_files=False)

    def hits(a):
        cache, c = client(a["cache"], a["insecure"], tag_ttl=3600.0)
        t = time.perf_counter(); c.fetch(a["location"]).release(); first = time.perf_counter() - t
        took = []
        for _ in range(a["n"]):
            t = time.perf_counter()
            with c.fetch(a["location"]):
                pass
            took.append((time.perf_counter() - t) * 1e6)
        took.sort()
        return {"first_s": first, "median_us": took[len(took) // 2], "p90_us": took[len(took) * 9 // 10],
                "min_us": took[0], "n": len(took), "hits": cache.stats().hits}

    def concurrent(a):
        cache, c = client(a["cache"], a["insecure"])
        errors, entries = [], []
        barrier = threading.Barrier(a["threads"] + 1)
        def run():
            barrier.wait()
            try:
                entries.append(c.fetch(a["location"]))
            except Exception as e:
                errors.append(repr(e))
        threads = [threading.Thread(target=run) for _ in range(a["threads"])]
        [t.start() for t in threads]
        barrier.wait()
        t = time.perf_counter()
        [t_.join() for t_ in threads]
        took = time.perf_counter() - t
        digests = {e.module_digest for e in entries}
        [e.release() for e in entries]
        s = cache.stats()
        return {"op_s": took, "errors": errors, "digests": len(digests), "misses": s.misses, "hits": s.hits}

    def pull(a):
        c = wasm_image.Client(insecure=[a["insecure"]], use_config_files=False)
        t = time.perf_counter()
        if a["to_file"]:
            c.pull_to_file(a["location"], a["path"])
        else:
            len(c.pull(a["location"]).module)
        return {"op_s": time.perf_counter() - t}

    def gc(a):
        cache = wasm_image.Cache(dir=a["cache"])
        n = len(cache.entries())
        t = time.perf_counter(); scan = cache.gc(); scan_s = time.perf_counter() - t
        t = time.perf_counter(); all_ = cache.gc(max_bytes=0); evict_s = time.perf_counter() - t
        return {"entries": n, "scan_s": scan_s, "scan_removed": len(scan.removed),
                "evict_all_s": evict_s, "evicted": len(all_.removed)}

    def insert(a):
        cache, c = client(a["cache"], a["insecure"])
        took = []
        for p in a["files"]:
            t = time.perf_counter(); c.fetch("file://" + p).release(); took.append(time.perf_counter() - t)
        return {"median_ms": statistics.median(took) * 1e3, "n": len(took)}

    case, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(globals()[case](args)))
    '''
)


def worker(python: str, case: str, args: dict, env: dict, timeout: float = 600.0) -> dict:
    t = time.perf_counter()
    done = subprocess.run([python, "-c", WORKER, case, json.dumps(args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{case} worker failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    return out


# ---- modules and images -----------------------------------------------------------------


def module_of(size: int, nonce: int) -> bytes:
    """A valid module (the 8-byte header) plus one custom section filling it to `size`."""
    header = bytes.fromhex("0061736d01000000")
    name = b"bench-padding"
    fixed = len(header) + 1 + 5 + 1 + len(name) + 8
    payload = nonce.to_bytes(8, "little") + os.urandom(max(0, size - fixed))
    body = bytes([len(name)]) + name + payload
    n, leb = len(body), bytearray()
    for _ in range(5):  # a fixed 5-byte LEB128, so the size is exact
        leb.append((n & 0x7F) | 0x80)
        n >>= 7
    leb[-1] &= 0x7F
    return header + b"\x00" + bytes(leb) + body


PUSH = textwrap.dedent(
    """
    import sys, wasm_image
    c = wasm_image.Client(insecure=[sys.argv[3]], use_config_files=False)
    print(c.push(wasm_image.build(open(sys.argv[1], "rb").read()), sys.argv[2]))
    """
)


def proxy_log(control: str, match: str) -> list:
    with urllib.request.urlopen(f"{control}/__log__?match={match}", timeout=30) as r:
        return json.loads(r.read())


def blob_gets(control: str, repo: str, digest: str) -> int:
    """GETs of one blob (the module layer; the config is a blob of its own)."""
    return sum(1 for r in proxy_log(control, repo) if r["method"] == "GET" and f"/blobs/{digest}" in r["path"])


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# ---- seeding 10,000 entries ---------------------------------------------------------------


def seed_entries(cache_dir: Path, template_digest: str, count: int) -> None:
    """Copies one real entry (made by a fetch) `count` times under new digests, in the
    cache's own on-disk form, so gc has 10,000 entries to look at without 10,000 durable
    inserts (each one fsyncs; the insert cost is measured apart)."""
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
        rec = dict(record, digest=f"sha256:{d}", size=len(data))
        e = cache_dir / "entries" / f"{d}.json"
        e.write_text(json.dumps(rec))
        (cache_dir / "leases" / f"{d}.lock").touch()  # every insert leaves its lease file
        os.utime(e, (now - count + i, now - count + i))  # distinct last uses


# ---- the cases ---------------------------------------------------------------------------


def run_cache_cases(python: str, lib_dir: Path, work: Path, repeats: int = 5, hits_n: int = 2000) -> dict:
    """Runs every cache case; returns {case: figures}. `python` is the interpreter whose
    wasm_image is measured (a release build), `lib_dir` holds libwasmimage.a."""
    state = work / "servers"
    (state / "logs").mkdir(parents=True)
    starter = Starter(state, verbose=False)
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    results: dict = {}
    try:
        plain, _ = starter.start_registry("bench-registry", lambda port: "")
        port_file = state / "fault_proxy.port"
        starter.spawn("fault_proxy", [sys.executable, str(ROOT / "tests/support/fault_proxy.py"),
                                      "--upstream", plain, "--port-file", str(port_file)])
        starter.wait_http("bench-registry", f"http://{plain}/v2/", (200,))
        faulty = f"127.0.0.1:{starter.wait_port_file('fault_proxy', port_file)['port']}"
        control = f"http://{faulty}"
        starter.wait_http("fault_proxy", f"{control}/v2/", (200,))

        small, big = work / "small.wasm", work / "big.wasm"
        small.write_bytes(module_of(64 * 1024, 1))
        big.write_bytes(module_of(50 * MiB, 2))
        digests = {}
        for name, path in (("small", small), ("big", big)):
            done = subprocess.run([python, "-c", PUSH, str(path), f"{plain}/bench/{name}:v1", plain],
                                  capture_output=True, text=True, check=True, env=env)
            digests[name] = done.stdout.strip()

        # Warm hits: pinned and tag, Python and C, requests counted around them.
        cache_c = work / "cache_c"
        # Static, as bench/run.py links pull_c and the Go binding links the library.
        subprocess.run(["cc", "-O2", "-std=c99", "-Wall", "-Wextra", str(HERE / "cache_c.c"),
                        f"-I{ROOT / 'include'}", str(lib_dir / "libwasmimage.a"), "-lpthread", "-ldl", "-lm",
                        "-o", str(cache_c)], check=True)
        for kind, loc in (("pinned", f"oci://{faulty}/bench/small@{digests['small']}"),
                          ("tag", f"oci://{faulty}/bench/small:v1")):
            cdir = work / f"hits-{kind}"
            py = worker(python, "hits", {"cache": str(cdir), "location": loc, "insecure": faulty, "n": 1},
                        env)  # warms the cache; then count only the measured calls
            time.sleep(0.5)  # the proxy logs a request once it has answered it
            before = len(proxy_log(control, "bench/small"))
            py = worker(python, "hits", {"cache": str(cdir), "location": loc, "insecure": faulty, "n": hits_n}, env)
            done = subprocess.run([str(cache_c), str(cdir), loc, faulty, str(hits_n)], capture_output=True,
                                  text=True, check=True, env=env)
            c = json.loads(done.stdout)
            time.sleep(0.5)
            made = len(proxy_log(control, "bench/small")) - before
            # The tag stays inside tag_ttl (60 s in C, 3600 s in Python) since the warming fetch.
            results[f"warm hit, {kind}"] = {"python": py, "c": c, "requests_during_hits": made}

        # 64 concurrent fetches of 50 MiB vs one fetch vs plain pulls, interleaved.
        rounds: dict[str, list[float]] = {"one fetch": [], "64 concurrent fetches": [],
                                          "pull_to_file": [], "pull (memory)": []}
        downloads_64: list[int] = []
        loc = f"{faulty}/bench/big:v1"
        big_digest = "sha256:" + hashlib.sha256(big.read_bytes()).hexdigest()
        for r in range(repeats):
            one = worker(python, "concurrent", {"cache": str(work / f"one-{r}"), "location": loc,
                                                "insecure": faulty, "threads": 1}, env)
            rounds["one fetch"].append(one["op_s"])
            before = blob_gets(control, "bench/big", big_digest)
            many = worker(python, "concurrent", {"cache": str(work / f"many-{r}"), "location": loc,
                                                 "insecure": faulty, "threads": 64}, env)
            time.sleep(0.5)
            downloads_64.append(blob_gets(control, "bench/big", big_digest) - before)
            assert not many["errors"] and many["digests"] == 1, many
            rounds["64 concurrent fetches"].append(many["op_s"])
            for to_file, name in ((True, "pull_to_file"), (False, "pull (memory)")):
                out = worker(python, "pull", {"location": loc, "insecure": faulty, "to_file": to_file,
                                              "path": str(work / f"pulled-{r}.wasm")}, env)
                rounds[name].append(out["op_s"])
            for d in (work / f"one-{r}", work / f"many-{r}"):
                subprocess.run(["rm", "-rf", str(d)], check=False)
        results["50 MiB"] = {
            name: {"median_s": median(xs), "all_s": xs} for name, xs in rounds.items()
        }
        results["50 MiB"]["ratio 64 concurrent / one"] = (
            median(rounds["64 concurrent fetches"]) / median(rounds["one fetch"]))
        results["50 MiB"]["blob downloads per 64 concurrent fetches"] = downloads_64

        # Insert cost (durable: fsyncs) and gc over 10,000 entries, a few rounds (file
        # system metadata work is what other processes on the machine disturb most).
        inserts, scans, evicts = [], [], []
        for r in range(max(1, min(repeats, 3))):
            files = []
            for i in range(50):
                p = work / f"inserts-{r}" / f"m{i}.wasm"
                p.parent.mkdir(exist_ok=True)
                p.write_bytes(module_of(4096, 1000 * r + i))
                files.append(str(p))
            gc_dir = work / f"gc-{r}"
            ins = worker(python, "insert", {"cache": str(gc_dir), "insecure": faulty, "files": files}, env)
            inserts.append(ins["median_ms"])
            first_record = sorted((gc_dir / "entries").glob("*.json"))[0]
            seed_entries(gc_dir, json.loads(first_record.read_text())["digest"], GC_ENTRIES - 50)
            out = worker(python, "gc", {"cache": str(gc_dir)}, env)
            assert out["entries"] == GC_ENTRIES and out["evicted"] == GC_ENTRIES, out
            scans.append(out["scan_s"])
            evicts.append(out["evict_all_s"])
            subprocess.run(["rm", "-rf", str(gc_dir), str(work / f"inserts-{r}")], check=False)
        results["insert (file://, 4 KiB, durable)"] = {"median_ms": median(inserts), "all_ms": inserts}
        results["gc over 10,000 entries"] = {
            "scan (nothing to evict)": {"median_s": median(scans), "all_s": scans},
            "evict all (max_bytes=0)": {"median_s": median(evicts), "all_s": evicts},
        }
    finally:
        for name, proc in starter.popen.items():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=sys.executable, help="interpreter whose wasm_image is measured")
    p.add_argument("--lib-dir", default=str(ROOT / "target" / "release"), help="folder with libwasmimage.a")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--hits", type=int, default=2000, help="timed calls per warm-hit case")
    p.add_argument("--out", help="also write the results here (JSON)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="wasm-image-cache-bench.") as work:
        results = run_cache_cases(a.python, Path(a.lib_dir), Path(work), a.repeats, a.hits)
    text = json.dumps(results, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
