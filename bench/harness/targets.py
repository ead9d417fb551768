"""The targets the figures are held to (and the context lines beside them): ratios of
medians against the floors and peers measured in the same run."""

from __future__ import annotations

import os
import statistics

from harness.cases import cache, concurrency, go_face, pull, signing
from harness.common import BUILDAH, VERIFIED
from harness.push_floor import FLOOR_PATCH, FLOOR_PUT
from harness.results import Results, med_extra, ratio


def targets(res: Results, cores: int | None = None) -> list[dict]:
    cores = cores or os.cpu_count() or 1

    def med(case, tool, size=None):
        s = [x.time_s for x in res.samples if x.case == case and x.tool == tool and x.ok and (size is None or x.size_mib == size)]
        return statistics.median(s) if s else None

    def medw(case, tool, size=None):
        s = [x.wall_s for x in res.samples if x.case == case and x.tool == tool and x.ok and (size is None or x.size_mib == size)]
        return statistics.median(s) if s else None

    def rss(case, tool, size):
        s = [x.maxrss_mib for x in res.samples if x.case == case and x.tool == tool and x.ok and x.size_mib == size]
        return max(s) if s else None

    out = []

    def add(target, measured, limit, kind="ratio", note="", unit=None):
        if measured is None:
            met = None
        else:
            met = measured <= limit if kind != "lt" else measured < limit
        out.append({"target": target, "measured": measured, "limit": limit, "met": met, "note": note,
                    **({"unit": unit} if unit else {})})

    def cpu_floor(mode, tool, what):
        """Not a target: the lowest wall time the machine's cores allow for the CPU work of
        one pull by `tool` (its own CPU plus the registry's, medians, whole processes), as
        a multiple of the curl floor's wall time (whole process)."""
        ok = [x for x in res.samples if x.case == mode and x.tool == tool and x.ok and x.size_mib == 50]
        client, registry = med_extra(ok, "client_cpu_ms"), med_extra(ok, "registry_cpu_ms")
        curl_wall = medw(mode, "curl (floor)", 50)
        label = "curl itself" if tool == "curl (floor)" else tool
        if client is None or registry is None or not curl_wall:
            text, budget = f"(context) CPU floor, pull 50 MiB {what}, {label}: (client CPU + registry CPU) / {cores} cores vs curl's process", None
        else:
            budget = (client + registry) / cores
            text = (f"(context) CPU floor, pull 50 MiB {what}, {label}: (client {client:.0f} ms + registry {registry:.0f} ms CPU) "
                    f"/ {cores} cores = {budget:.0f} ms, against curl's {curl_wall * 1000:.0f} ms process")
        out.append({"target": text, "measured": ratio(budget / 1000 if budget is not None else None, curl_wall), "limit": None,
                    "met": None, "note": "informative: lowest wall time the cores allow for this work, × curl's wall",
                    "client_cpu_ms": client, "registry_cpu_ms": registry, "cores": cores,
                    "budget_ms": budget, "curl_wall_ms": curl_wall * 1000 if curl_wall else None})

    py, c, cli = "wasm-image Python API", "wasm-image C API", "wasm-image CLI"
    for mode, floor_case, what in (("pull-mem oci", "into memory vs curl → /dev/null", "into memory"),
                                   ("pull-file oci", "to a file vs curl → file", "to a file")):
        cpu_floor(mode, "curl (floor)", what)
        add(f"pull 50 MiB, Python API {floor_case}: ≤ 1.3× curl", ratio(med(mode, py, 50), med(mode, "curl (floor)", 50)), 1.3)
        cpu_floor(mode, py, what)
        add(f"pull 50 MiB, C API {floor_case}: ≤ 1.3× curl", ratio(med(mode, c, 50), med(mode, "curl (floor)", 50)), 1.3)
        cpu_floor(mode, c, what)
    # Pull at the speed of SHA-256: absolute times, ratios to curl and oras-py at 50 and
    # 200 MiB, and the CPU a pull adds per byte against the work no verifying pull skips.
    for mode, what, limit_ms in (("pull-file oci", "to a file", 55.0), ("pull-mem oci", "into memory", 60.0)):
        for tool, face in ((py, "Python"), (c, "C")):
            t = med(mode, tool, 50)
            add(f"pull 50 MiB {what}, {face} API: ≤ {limit_ms:.0f} ms", None if t is None else t * 1000, limit_ms, "abs", unit="ms")
    for size in (50, 200):
        for tool, face in ((py, "Python"), (c, "C")):
            add(f"pull {size} MiB to a file, {face} API vs curl → file: ≤ 1.35×",
                ratio(med("pull-file oci", tool, size), med("pull-file oci", "curl (floor)", size)), 1.35)
        add(f"pull {size} MiB to a file, Python API vs oras-py: ≤ 0.6×",
            ratio(med("pull-file oci", py, size), med("pull-file oci", "oras-py", size)), 0.6)
    for mode, what in (("pull-file oci", "to a file"), ("pull-mem oci", "into memory")):
        work = [x for x in res.samples if x.case == mode and x.tool == pull.WORK_FLOOR and x.ok and x.size_mib == 50]
        floor_s = med(mode, pull.WORK_FLOOR, 50)
        for tool, face in ((py, "Python"), (c, "C")):
            def cpu(size):
                return med_extra([x for x in res.samples if x.case == mode and x.tool == tool and x.ok and x.size_mib == size],
                                 "client_cpu_ms")
            big, small = cpu(50), cpu(1)
            # The 1 MiB pull's CPU is the process's start-up and fixed costs: what is left
            # is what 49 MiB more cost, held against the work floor for 49 MiB.
            per_pull = None if big is None or small is None else big - small
            budget = None if floor_s is None else floor_s * 1000 * 49 / 50
            sha = med_extra(work, "sha256_s")
            text = (f"pull {what}, {face} API: client CPU of 50 MiB less that of 1 MiB"
                    + (f" ({per_pull:.0f} ms)" if per_pull is not None else "")
                    + " ≤ 1.3× (SHA-256 + one copy) of 49 MiB"
                    + (f" ({budget:.0f} ms, of which SHA-256 {sha * 1000 * 49 / 50:.0f} ms)" if budget and sha else ""))
            add(text, ratio(per_pull, budget), 1.3)
    add("pull 50 MiB to a file, CLI vs curl, whole processes: ≤ 1.3×", ratio(medw("pull-file oci", cli, 50), medw("pull-file oci", "curl (floor)", 50)), 1.3)
    cpu_floor("pull-file oci", cli, "to a file")
    add("pull 50 MiB to a file, Python API vs skopeo copy: ≤ 0.5×", ratio(med("pull-file oci", py, 50), med("pull-file oci", "skopeo copy → oci:", 50)), 0.5)
    add("pull 1 MiB to a file, CLI (whole process) vs skopeo copy: ≤ 0.5×", ratio(med("pull-file oci", cli, 1), med("pull-file oci", "skopeo copy → oci:", 1)), 0.5)
    add("wasm-image --version, whole process: ≤ 10 ms", med(pull.START_UP, cli), 0.010, "abs", unit="s")
    add("pull 50 MiB to a file, CLI (whole process) vs skopeo copy: ≤ 0.5×", ratio(med("pull-file oci", cli, 50), med("pull-file oci", "skopeo copy → oci:", 50)), 0.5)
    add("pull 50 MiB to a file, Python API vs oras-py: faster (< 1×)", ratio(med("pull-file oci", py, 50), med("pull-file oci", "oras-py", 50)), 1.0, "lt")
    add("pull 200 MiB to a file, Python API: peak RSS ≤ 40 MiB", rss("pull-file oci", py, 200), 40.0, "abs")
    add("pull 200 MiB to a file, C API: peak RSS ≤ 40 MiB", rss("pull-file oci", c, 200), 40.0, "abs")
    add("pull 200 MiB into memory, Python API: peak RSS ≤ 240 MiB", rss("pull-mem oci", py, 200), 240.0, "abs")
    add("pull 200 MiB into memory, C API: peak RSS ≤ 240 MiB", rss("pull-mem oci", c, 200), 240.0, "abs")
    bd = BUILDAH
    for case, what in (("build+push compat", "random-bytes module"), ("build+push compat (compressible module)", "compressible module")):
        add(f"build+push 50 MiB compat ({what}), Python API: ≤ 0.5× buildah", ratio(med(case, py), med(case, bd)), 0.5)
        add(f"build+push 50 MiB compat ({what}), CLI: ≤ 0.5× buildah", ratio(med(case, cli), med(case, bd)), 0.5)
    # Not targets: what the upload alone costs (HTTP client floor), against the peers, and
    # where the Python API's whole build+push stands against the upload it must make.
    for case, variant, peer in (("build+push compat", "compat", bd), ("build+push oci", "oci", "oras-py push")):
        for floor in (FLOOR_PUT, FLOOR_PATCH):
            out.append({"target": f"(context) build+push 50 MiB {variant}: {floor} (the upload alone) vs {peer}",
                        "measured": ratio(med(case, floor), med(case, peer)), "limit": None, "met": None, "note": "informative"})
        out.append({"target": f"(context) build+push 50 MiB {variant}: Python API vs {FLOOR_PATCH}",
                    "measured": ratio(med(case, py), med(case, FLOOR_PATCH)), "limit": None, "met": None, "note": "informative"})
    # Not targets: the same pulls against a floor that also checks the digest.
    for mode, what in (("pull-mem oci", "into memory"), ("pull-file oci", "to a file")):
        for tool in (py, c):
            out.append({"target": f"(context) pull 50 MiB {what}, {tool.split()[-2]} API vs {VERIFIED}, whole processes",
                        "measured": ratio(medw(mode, tool, 50), medw(mode, VERIFIED, 50)), "limit": None, "met": None,
                        "note": "informative"})
    req = res.requests.get("resolve", {}).get(py)
    add("resolve: one request", req["count"] if req else None, 1, "abs")
    # The Go face against go-containerregistry, whole processes of the same Go program.
    go, ggcr = go_face.GO, go_face.GGCR
    for case, (variant, into_memory) in go_face.PULL_CASES.items():
        add(f"Go: pull 50 MiB {variant} {'into memory' if into_memory else 'to a file'}, Go face vs go-containerregistry: ≤ 0.7×",
            ratio(med(case, go, 50), med(case, ggcr, 50)), 0.7)
    add(f"Go: {go_face.GOROUTINES} goroutines pull one 1 MiB image, Go face vs go-containerregistry: ≤ 0.7×",
        ratio(med(go_face.MANY, go, 1), med(go_face.MANY, ggcr, 1)), 0.7)
    add("Go: pull 200 MiB to a file, Go face: peak RSS ≤ 40 MiB", rss("go pull-file oci", go, 200), 40.0, "abs")
    resolve_s = med(go_face.CGO, go_face.RESOLVE)
    add("Go: one cgo call (Resolve of an oci: layout): ≤ 20 µs", None if resolve_s is None else resolve_s * 1e6, 20.0, "abs")
    # The module cache: warm hits per call, fetches against one fetch, gc, in seconds.
    for case, what in ((cache.HIT_PINNED, "digest-pinned"), (cache.HIT_TAG, "tag inside tag_ttl")):
        for tool, face, limit in ((cache.PY, "Python", 1000.0), (cache.C, "C", 100.0)):
            hit_s = med(case, tool)
            add(f"cache: warm hit, {what}, {face} API: ≤ {limit:,.0f} µs per call", None if hit_s is None else hit_s * 1e6, limit, "abs")
    hit_requests = [x.extra["requests"] for x in res.samples if x.case in (cache.HIT_PINNED, cache.HIT_TAG) and x.ok]
    add("cache: warm hits (Python and C, pinned and tag), requests made: 0", max(hit_requests) if hit_requests else None, 0, "abs")
    add(f"cache: {cache.THREADS} concurrent fetches of 50 MiB into an empty cache: ≤ 1.2× one fetch",
        ratio(med(cache.FETCH, cache.MANY), med(cache.FETCH, cache.ONE)), 1.2)
    downloads = [x.extra["blob_downloads"] for x in res.samples if x.case == cache.FETCH and x.tool == cache.MANY and "blob_downloads" in x.extra]
    add(f"cache: {cache.THREADS} concurrent fetches of 50 MiB: blob download requests ≤ 1 (most in a round)",
        max(downloads) if downloads else None, 1, "abs")
    over = [x.extra["per_pull_kib"] for x in res.samples if x.case == concurrency.IN_FLIGHT and x.ok and "per_pull_kib" in x.extra]
    add(f"{concurrency.PULLS_IN_FLIGHT} concurrent pull_async of a {len(concurrency.SMALL_MODULE)}-byte module, oci: layout: "
        f"RSS over a one-pull baseline per in-flight pull ≤ 64 KiB + the module",
        statistics.median(over) if over else None, 64 + len(concurrency.SMALL_MODULE) / 1024, "abs", unit="KiB")
    add("cache: gc over 10,000 entries, nothing to evict: ≤ 1 s", med(cache.GC, cache.SCAN), 1.0, "abs", unit="s")
    add("cache: gc over 10,000 entries, evicting all: ≤ 1 s", med(cache.GC, cache.EVICT), 1.0, "abs", unit="s")
    # Signed plugins: what verifying a signed 50 MiB pull adds to an unverified one.
    signed = res.requests.get(signing.NAME, {})
    plain, verified = signed.get(signing.UNVERIFIED), signed.get(signing.VERIFIED)
    add("signing: verified 50 MiB pull, requests added: ≤ 2 (one round-trip pair)",
        verified["count"] - plain["count"] if plain and verified else None, 2, "abs")
    cpu = {tool: med_extra([x for x in res.samples if x.case == signing.NAME and x.tool == tool and x.ok], "client_cpu_ms")
           for tool in (signing.UNVERIFIED, signing.VERIFIED)}
    add("signing: verified 50 MiB pull, client CPU added (medians): ≤ 5 ms",
        cpu[signing.VERIFIED] - cpu[signing.UNVERIFIED] if None not in cpu.values() else None, 5.0, "abs", unit="ms")
    return out
