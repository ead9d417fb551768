#!/usr/bin/env python3
"""wasm-image against the tools users would otherwise pick, side by side, in one run.

    python3 bench/run.py [--quick] [--repeats N]

Starts its own docker-registry (CNCF distribution) on 127.0.0.1 (plain HTTP, its own
config and storage in a temporary folder) plus the test bed's fault proxy in front of it
(only to count requests), generates valid Wasm modules of 1, 50 and 200 MiB, pushes them
as oci-variant and compat images, and measures, repeated and interleaved (every tool
once per round, so drifting load hits all alike):

* pull by tag, into memory and to a file: wasm-image's Python API, its CLI and its C API
  (bench/pull_c.c) against curl (the floor), skopeo and oras-py;
* build + push of a 50 MiB compat image: Python API, CLI, buildah;
* build + push of a 50 MiB oci-variant image: Python API, oras-py;
* resolve a tag: Python API, skopeo inspect --raw, curl -I; requests counted;
* 64 pulls of a 1 MiB image: 64 threads on one Client, the same 64 one after another,
  skopeo (and curl) run 64 times in parallel;
* the Go face (package wasmimage, bench/go/) against go-containerregistry: 50 MiB pulls
  into memory and to a file (crane pull beside them), 64 goroutines pulling one 1 MiB
  image, 200 MiB to a file for the peak RSS, and one cgo call (go test -bench);
* the module cache (cache): warm hits of a pinned and a tagged location from Python and
  from C (bench/cache_c.c) with their requests counted, one fetch of 50 MiB into an empty
  cache against 64 concurrent ones (blob downloads counted) and plain pulls beside them,
  a durable insert, and gc over 10,000 entries (a no-op scan and an evict-all);
* the peak RSS of every measured process (os.wait4).

Writes bench/results.json (every sample), the generated part of BENCHMARKS.md and
bench/pull_time.png. Everything it starts or writes elsewhere (servers, modules,
registry storage, buildah storage, pulled files) lives in one temporary folder and
process groups that are removed in a `finally`, on Ctrl-C and SIGTERM too.

Options: --python PY picks the interpreter whose `wasm_image` is measured (default: this
one; a release build matters: `pip install .` builds one, `maturin develop` does not);
--cli PATH the `wasm-image` command; --lib-dir DIR the folder with libwasmimage.so
(default target/release); --build-ffi runs `cargo build --release -p wasm-image-ffi`
first; --cases FAMILY,… runs only those case families (baseline, resolve, pull, push,
concurrency, go_face, cache; the setup always runs), and with --merge puts them into the
results.json already in --out-dir beside the other families' figures of an earlier run;
--only SUBSTR runs only cases whose name contains it;
--wait-idle S waits up to S seconds for a machine without compilers running; --replot
draws pull_time.png and writes the generated part of BENCHMARKS.md again from
results.json, measuring nothing.

The parts live in bench/harness/ (one module per concern; the case families in
bench/harness/cases/, listed in its FAMILIES).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from harness import cases, merge, processes, report
from harness.bench import Bench
from harness.common import BENCH, ROOT, log
from harness.machine import LoadMonitor, machine_info, wait_idle
from harness.processes import run_quiet
from harness.results import Results
from harness.targets import targets


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    ap.add_argument("--repeats", type=int, help="repeats per figure (default 7, --quick 3)")
    ap.add_argument("--python", help="interpreter whose wasm_image is measured (default: this one)")
    ap.add_argument("--cli", help="the wasm-image command (default: beside --python, else on PATH)")
    ap.add_argument("--lib-dir", help="folder with libwasmimage.a or .so (default: target/release)")
    ap.add_argument("--build-ffi", action="store_true", help="cargo build --release -p wasm-image-ffi first")
    ap.add_argument("--sizes", help="module sizes in MiB, comma-separated (default 1,50,200; 1 and 50 are always made)")
    ap.add_argument("--cases", action="append", metavar="FAMILY[,FAMILY…]",
                    help="run only these case families (repeatable): " + ", ".join(f.name for f in cases.FAMILIES))
    ap.add_argument("--only", action="append", help="run only cases whose name contains this (repeatable)")
    ap.add_argument("--wait-idle", type=float, default=0, help="wait up to this many seconds for an idle machine")
    ap.add_argument("--no-pause", action="store_true",
                    help="measure even while other compilers (cargo, rustc, cc1, ld…) run; default: wait for them")
    ap.add_argument("--max-pause", type=float, default=900,
                    help="longest total wait for other compilers during the run (seconds, default 900)")
    ap.add_argument("--out-dir", default=str(BENCH), help="where results.json and pull_time.png go (default: bench/)")
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="the markdown file to update ('-' for none)")
    ap.add_argument("--replot", action="store_true",
                    help="only draw pull_time.png and write the generated part of --markdown again from results.json")
    ap.add_argument("--merge", action="store_true",
                    help="with --cases: put this run's families into the results.json already in --out-dir, keeping the "
                         "other families' figures (and that run's header) as they are")
    args = ap.parse_args(argv)
    if args.merge and not args.cases:
        ap.error("--merge needs --cases (the families measured again)")
    if args.replot:
        return report.replot(Path(args.out_dir), args.markdown)
    try:
        families = cases.by_name([n for arg in args.cases for n in arg.split(",") if n]) if args.cases else cases.FAMILIES
    except ValueError as e:
        ap.error(str(e))

    # Ctrl-C must work even when started from a script that ignores SIGINT for its
    # background jobs (Python keeps an inherited SIG_IGN otherwise).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, processes.on_signal)

    wait_idle(args.wait_idle)
    work = Path(tempfile.mkdtemp(prefix="wasm-image-bench-"))
    bench = Bench(args, work)
    monitor = LoadMonitor()
    started = time.time()
    status = 0
    try:
        meta_machine = machine_info()
        monitor.start()
        log(f"work folder {work}")
        processes.build_runstat(work)
        bench.run(families)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    finally:
        monitor.stop()
        cleanup(bench, work)
    if status:
        return status

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": "python3 bench/run.py" + (" --quick" if args.quick else "") + (f" --repeats {args.repeats}" if args.repeats else "")
                   + (f" --cases {','.join(f.name for f in families)}" if args.cases else ""),
        "duration_s": round(time.time() - started, 1),
        "machine": meta_machine,
        "load_during_run": monitor.summary(),
        "load_samples": monitor.samples,
        "versions": bench.versions,
        "repeats": bench.repeats,
        "skipped": bench.res.skipped,
        "fixtures": bench.digests,
        "requests": bench.res.requests,
        "notes": bench.res.notes,
        "paused_for_compilers_s": bench.paused_s,
        "samples_measured_again": bench.res.disturbed,
        "samples_still_disturbed": sum(1 for x in bench.res.samples if "foreign_busy" in x.extra),
    }
    meta["targets"] = targets(bench.res, meta_machine["cores"])
    doc = {**meta, "samples": [asdict(s) for s in bench.res.samples]}
    res = bench.res
    if args.merge:
        doc = merge.into_previous(out_dir / "results.json", doc, families)
        res = Results.from_json(doc)
        meta = {k: v for k, v in doc.items() if k != "samples"}
    report.write_results(doc, out_dir)
    problem = report.plot(res, out_dir / "pull_time.png")
    if problem:
        res.notes.append(problem)
    if args.markdown != "-":
        report.write_benchmarks_md(report.markdown(res, meta), Path(args.markdown))
    log(f"done in {meta['duration_s']:.0f} s: {out_dir / 'results.json'}, {out_dir / 'pull_time.png'}, {args.markdown}")
    for t in meta["targets"]:
        v = t["measured"]
        flag = "    " if t["limit"] is None else "MET " if t["met"] else "----" if t["met"] is None else "MISS"
        log(f"  {flag} {t['target']}: {'not measured' if v is None else round(v, 3)}")
    return 0


def cleanup(bench: Bench, work: Path) -> None:
    """Ends every child still running, stops the servers, removes buildah's containers and
    the whole work folder. Safe to call twice; a second Ctrl-C during it is ignored."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        processes.kill_all_children()
        c = work / "containers"
        if (c / "storage").exists() and shutil.which("buildah"):
            try:
                run_quiet([*bench.buildah(), "rm", "--all"], env=bench.containers_env(), check=False, timeout=60)
                run_quiet([*bench.buildah(), "rmi", "--all", "--force"], env=bench.containers_env(), check=False, timeout=60)
            except Exception:  # noqa: BLE001
                pass
        for s in reversed(bench.servers):
            s.stop()
        # vfs storage leaves read-only dirs behind: make them writable before removal.
        def onerror(func, path, exc_info):
            try:
                os.chmod(os.path.dirname(path), 0o700)
                os.chmod(path, 0o700)
                func(path)
            except OSError:
                pass
        shutil.rmtree(work, onerror=onerror)
        if work.exists():
            log(f"could not remove all of {work}")
    finally:
        signal.signal(signal.SIGINT, old)


if __name__ == "__main__":
    sys.exit(main())
