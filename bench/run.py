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
* the peak RSS of every measured process (os.wait4).

Writes bench/results.json (every sample), the generated part of BENCHMARKS.md and
bench/pull_time.png. Everything it starts or writes elsewhere (servers, modules,
registry storage, buildah storage, pulled files) lives in one temporary folder and
process groups that are removed in a `finally`, on Ctrl-C and SIGTERM too.

Options: --python PY picks the interpreter whose `wasm_image` is measured (default: this
one; a release build matters: `pip install .` builds one, `maturin develop` does not);
--cli PATH the `wasm-image` command; --lib-dir DIR the folder with libwasmimage.so
(default target/release); --build-ffi runs `cargo build --release -p wasm-image-ffi`
first; --only SUBSTR runs only cases whose name contains it; --wait-idle S waits up to S
seconds for a machine without compilers running.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SUPPORT = ROOT / "tests" / "support"
MiB = 1 << 20

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
SOLO_CONFIG = "application/vnd.module.wasm.config.v1+json"
SOLO_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
CURL_W = "%{time_total}\\n"
VERIFIED = "curl piped to openssl sha256 (verified floor)"
BUILDAH = "buildah from+copy+config+commit"
COMPRESSIBLE = "50c"  # key of the compressible 50 MiB module
BUSY_NAMES = {"cargo", "rustc", "cc1", "cc1plus", "ld", "ld.lld", "lld", "maturin", "go", "compile", "link"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Processes: every child is tracked so that cleanup can end exactly those
# --------------------------------------------------------------------------------------

_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = False  # set on Ctrl-C / SIGTERM: no new child is started after that
_SPAWNING = False  # the main thread is between Popen and recording the child
_PENDING: int | None = None


def on_signal(signum, frame):
    """Ctrl-C and SIGTERM: stop starting children, then unwind to the cleanup. A signal
    that lands while the main thread is recording a new child waits until it is recorded,
    so that cleanup sees every child."""
    global _STOPPING, _PENDING
    _STOPPING = True
    if _SPAWNING:
        _PENDING = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


@dataclass
class Proc:
    """What one measured child did."""

    returncode: int
    wall_s: float
    maxrss_kib: int
    stdout: str
    stderr: str
    user_s: float = 0.0
    sys_s: float = 0.0
    server_cpu_ms: dict = field(default_factory=dict)  # server name -> CPU ms it used meanwhile


RUNSTAT: str | None = None  # bench/runstat.c, compiled into the work folder
RUNSTAT_DIR: str | None = None  # its reports go there too
SERVER_PIDS: dict[str, int] = {}  # "registry", "fault_proxy" -> pid, set once they run


@dataclass
class CpuMark:
    """A server process's CPU time at one moment: utime+stime from /proc/PID/stat (clock
    ticks, 10 ms steps) and each thread's run time from /proc/PID/task/TID/schedstat (ns;
    the same scheduler figure that stat's utime+stime are scaled from)."""

    stat_ticks: int
    threads: dict | None  # tid -> ns; None where schedstat is missing


def cpu_mark(pid: int) -> CpuMark | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    threads: dict | None = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                threads[int(tid)] = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        threads = None
    return CpuMark(int(fields[11]) + int(fields[12]), threads)


def server_marks() -> dict[str, CpuMark | None]:
    return {name: cpu_mark(pid) for name, pid in SERVER_PIDS.items()}


def cpu_used_ms(before: CpuMark | None, after: CpuMark | None) -> tuple[float | None, float | None]:
    """(ms from the per-thread run times, ms from stat's utime+stime) between two marks.
    The first is None when a thread ended in between (its last run time is lost): then
    only the 10 ms-step stat figure is exact."""
    if before is None or after is None:
        return None, None
    stat_ms = (after.stat_ticks - before.stat_ticks) * 1000 / CLK_TCK
    if before.threads is None or after.threads is None or not before.threads.keys() <= after.threads.keys():
        return None, stat_ms
    ns = sum(t - before.threads.get(tid, 0) for tid, t in after.threads.items())
    return ns / 1e6, stat_ms


def servers_used_ms(before: dict, after: dict) -> dict[str, float]:
    """Server name -> CPU ms between two server_marks(): the per-thread figure, else stat's."""
    out = {}
    for name in before:
        fine, coarse = cpu_used_ms(before[name], after.get(name))
        if fine is not None or coarse is not None:
            out[name] = round(fine if fine is not None else coarse, 2)
            out[name + "_stat"] = coarse
    return out


def client_cpu(procs: list[Proc]) -> dict:
    """The measured children's own CPU (wait4's ru_utime/ru_stime: each child and the
    descendants it waited for), summed over the children, in ms."""
    user = sum(p.user_s for p in procs) * 1000
    system = sum(p.sys_s for p in procs) * 1000
    return {"client_cpu_ms": round(user + system, 2), "client_user_ms": round(user, 2), "client_sys_ms": round(system, 2)}


def server_cpu(procs: list[Proc], via_proxy: bool) -> dict:
    """The registry's CPU while the children ran (and the fault proxy's, when they went
    through it), summed over the children, in ms; *_stat: the same from stat's ticks."""
    out = {}
    for name, key in (("registry", "registry_cpu_ms"), ("fault_proxy", "proxy_cpu_ms")):
        if name == "fault_proxy" and not via_proxy:
            continue
        if procs and all(name in p.server_cpu_ms for p in procs):
            out[key] = round(sum(p.server_cpu_ms[name] for p in procs), 2)
            out[key.replace("_ms", "_stat_ms")] = round(sum(p.server_cpu_ms[name + "_stat"] for p in procs), 2)
    if "proxy_cpu_ms" in out:
        out["server_cpu_ms"] = round(out["registry_cpu_ms"] + out["proxy_cpu_ms"], 2)
    return out


def build_runstat(work: Path) -> None:
    global RUNSTAT, RUNSTAT_DIR
    exe = work / "runstat"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "runstat.c")], check=True, capture_output=True)
    (work / "reports").mkdir()
    RUNSTAT, RUNSTAT_DIR = str(exe), str(work / "reports")


def measure(argv: list[str], *, env: dict | None = None, cwd: str | None = None, timeout: float = 300.0) -> Proc:
    """Runs argv as a child (in its own process group, ended on timeout or cleanup) and
    returns its wall time, its own peak RSS and user/system CPU, read by bench/runstat.c
    with wait4 (see there why not from here), and the CPU the servers (registry, fault
    proxy) used while it ran."""
    fd, name = tempfile.mkstemp(prefix="runstat-", dir=RUNSTAT_DIR)
    os.close(fd)
    report = Path(name)
    try:
        return _measure(argv, report, env=env, cwd=cwd, timeout=timeout)
    finally:
        report.unlink(missing_ok=True)


def _measure(argv: list[str], report: Path, *, env: dict | None, cwd: str | None, timeout: float) -> Proc:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        full = [RUNSTAT, str(report), "--", *argv] if RUNSTAT else argv
        marks = server_marks()
        p = _spawn(full, out, err, env, cwd)
        t0 = time.perf_counter()
        timer = threading.Timer(timeout, lambda: _kill(p))
        timer.start()
        reaped = False
        try:
            _, status, ru = os.wait4(p.pid, 0)
            reaped = True
            wall = time.perf_counter() - t0
            server_cpu = servers_used_ms(marks, server_marks())
        finally:
            timer.cancel()
            if not reaped:  # interrupted: end the child's whole group before letting go of it
                _kill(p)
                try:
                    os.waitpid(p.pid, 0)
                except ChildProcessError:
                    pass
            with _LIVE_LOCK:
                _LIVE.discard(p)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        proc = Proc(returncode=p.returncode, wall_s=wall, maxrss_kib=ru.ru_maxrss,
                    stdout=out.read().decode(errors="replace"), stderr=err.read().decode(errors="replace"),
                    user_s=ru.ru_utime, sys_s=ru.ru_stime, server_cpu_ms=server_cpu)
    if RUNSTAT:
        try:
            code, rss, w, u, sy = report.read_text().split()
            proc.returncode, proc.maxrss_kib, proc.wall_s, proc.user_s, proc.sys_s = int(code), int(rss), float(w), float(u), float(sy)
        except (OSError, ValueError):
            proc.returncode = proc.returncode or 125
            proc.stderr += "\n(runstat wrote no report)"
    return proc


def _spawn(argv: list[str], out, err, env: dict | None, cwd: str | None) -> subprocess.Popen:
    global _SPAWNING, _PENDING
    main = threading.current_thread() is threading.main_thread()
    with _LIVE_LOCK:
        if _STOPPING:
            raise KeyboardInterrupt("stopping")
        if main:
            _SPAWNING = True
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env or clean_env(), cwd=cwd,
                                 start_new_session=True)
            _LIVE.add(p)
        finally:
            if main:
                _SPAWNING = False
    if main and _PENDING is not None:
        _PENDING = None
        raise KeyboardInterrupt("signal")
    return p


def _kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def run_quiet(argv: list[str], *, env: dict | None = None, check: bool = True, timeout: float = 300.0) -> str:
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env or clean_env(), timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}…: exit {r.returncode}: {(r.stderr or r.stdout)[-800:]}")
    return r.stdout


class Server:
    """A long-running child in its own process group, ended by that group's id."""

    def __init__(self, name: str, argv: list[str], logfile: Path):
        self.name = name
        self._log = open(logfile, "wb")
        self.logfile = logfile
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self._log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, headers: dict | None = None, body: bytes | None = None, timeout: float = 30.0):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read() if e.fp else b""


def wait_http(url: str, server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited: {server.logfile.read_text(errors='replace')[-1500:]}")
        try:
            status, _, _ = http("GET", url, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not answer {url} within {timeout} s")


# --------------------------------------------------------------------------------------
# The machine, and whether someone else is using it
# --------------------------------------------------------------------------------------


def busy_processes() -> list[str]:
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            comm = Path(f"/proc/{d}/comm").read_text().strip()
        except OSError:
            continue
        if comm in BUSY_NAMES or comm.startswith("rustc") or comm.startswith("cargo"):
            found.append(f"{comm}({d})")
    return found


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, user+system ticks) of every user-space process."""
    snap = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        ppid = int(fields[1])
        if ppid == 2 or int(d) == 2:  # kernel threads (they also carry our loopback traffic)
            continue
        snap[int(d)] = (ppid, int(fields[11]) + int(fields[12]))
    return snap


def foreign_cpu_s(before: dict, after: dict) -> float:
    """CPU seconds used between two snapshots by processes that are not this benchmark
    or its descendants (processes born and gone in between are not seen)."""
    me = os.getpid()
    parents = {pid: pp for pid, (pp, _) in {**before, **after}.items()}
    memo: dict[int, bool] = {}

    def ours(pid: int) -> bool:
        chain = []
        while pid not in memo:
            if pid == me:
                memo[pid] = True
                break
            if pid not in parents or pid <= 1:
                memo[pid] = False
                break
            chain.append(pid)
            pid = parents[pid]
        for c in chain:
            memo[c] = memo[pid]
        return memo[pid]

    ticks = 0
    for pid, (_, t) in after.items():
        if ours(pid):
            continue
        ticks += t - before[pid][1] if pid in before else t
    return ticks / CLK_TCK


def steal_s() -> float:
    """CPU time the hypervisor gave to other guests, all CPUs together (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


class LoadMonitor(threading.Thread):
    """Samples the load average and foreign compiler processes every 2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[dict] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.samples.append({"t": time.time(), "load1": os.getloadavg()[0], "busy": busy_processes()})
            self._stop.wait(2.0)

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict:
        if not self.samples:
            return {}
        loads = [s["load1"] for s in self.samples]
        busy = sorted({b.split("(")[0] for s in self.samples for b in s["busy"]})
        return {
            "load1_min": min(loads),
            "load1_median": statistics.median(loads),
            "load1_max": max(loads),
            "samples": len(loads),
            "samples_with_compilers": sum(1 for s in self.samples if s["busy"]),
            "compilers_seen": busy,
        }


def wait_idle(max_wait: float) -> None:
    if max_wait <= 0:
        return
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        busy = busy_processes()
        load = os.getloadavg()[0]
        if not busy and load < 0.7:
            log(f"machine idle (load {load:.2f})")
            return
        log(f"waiting for an idle machine: load {load:.2f}, running: {', '.join(busy[:6]) or '-'}")
        time.sleep(10)
    log("machine still busy: measuring anyway (the load is recorded with the results)")


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    tmp_fs = "?"
    try:
        tmp_fs = run_quiet(["df", "-T", tempfile.gettempdir()]).splitlines()[-1].split()[1]
    except Exception:  # noqa: BLE001 - informative only
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "tmp_filesystem": tmp_fs,
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "compilers_at_start": busy_processes(),
    }


def first_line(argv: list[str], pattern: str | None = None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=clean_env())
        text = (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    if pattern:
        m = re.search(pattern, text)
        if m:
            return m.group(0)
    return text.splitlines()[0] if text else "?"


# --------------------------------------------------------------------------------------
# Modules: a small valid module plus one custom section of random bytes
# --------------------------------------------------------------------------------------


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def small_module(work: Path) -> bytes:
    """The test bed's proxy-wasm fixture (exports proxy_abi_version_0_2_1) when wabt is
    there, else the 8-byte empty module."""
    wat = SUPPORT / "fixtures" / "plugin.wat"
    if wat.exists() and shutil.which("wat2wasm"):
        out = work / "plugin-small.wasm"
        run_quiet(["wat2wasm", str(wat), "-o", str(out)])
        return out.read_bytes()
    return b"\0asm\x01\0\0\0"


CUSTOM_NAME = b"bench.random"
NONCE_LEN = 16


def compressible_bytes(n: int) -> bytes:
    """Bytes that gzip -6 shrinks about 2.6 times, like real Wasm code: a random
    sequence of 6-byte words drawn from a vocabulary of 2048 random words."""
    vocab = [os.urandom(6) for _ in range(2048)]
    count = n // 6 + 1
    idx = os.urandom(2 * count)
    return b"".join(vocab[(idx[2 * i] << 8 | idx[2 * i + 1]) & 2047] for i in range(count))[:n]


def write_module(path: Path, base: bytes, total: int, compressible: bool = False) -> int:
    """Writes base + one custom section (id 0, LEB128 size, name, random payload) so that
    the file is exactly `total` bytes; returns the payload's offset (its first NONCE_LEN
    bytes can be rewritten to make a distinct module of the same size)."""
    name = leb128(len(CUSTOM_NAME)) + CUSTOM_NAME
    for size_len in range(1, 6):
        content = total - len(base) - 1 - size_len
        if len(leb128(content)) == size_len:
            break
    else:
        raise ValueError(f"cannot make a {total}-byte module")
    payload = content - len(name)
    header = base + b"\x00" + leb128(content) + name
    with open(path, "wb") as f:
        f.write(header)
        left = payload
        while left:
            n = min(left, 4 * MiB)
            chunk = compressible_bytes(n) if compressible else os.urandom(n)
            f.write(chunk)
            left -= len(chunk)
    assert path.stat().st_size == total
    return len(header)


def distinct_copy(src: Path, dst: Path, nonce_offset: int) -> None:
    """A copy of src whose custom section starts with fresh random bytes: same size,
    another digest, so no client can skip the upload because the blob is known."""
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(nonce_offset)
        f.write(os.urandom(NONCE_LEN))


def validate_module(path: Path) -> str:
    try:
        import wasmtime  # type: ignore
    except ImportError:
        data = path.read_bytes()[:8]
        return "header only (wasmtime not installed)" if data == b"\0asm\x01\0\0\0" else "INVALID"
    engine = wasmtime.Engine()
    wasmtime.Module.validate(engine, path.read_bytes())
    return f"validated by wasmtime {getattr(wasmtime, '__version__', '')}".strip()


# --------------------------------------------------------------------------------------
# The push floor: one blob uploaded over plain HTTP, nothing else
# --------------------------------------------------------------------------------------

FLOOR_PUT = "HTTP client floor: POST + one PUT"
FLOOR_PATCH = "HTTP client floor: POST + 4 MiB PATCHes + PUT"
UPLOAD_CHUNK = 4 * MiB  # core/src/store/registry.rs UPLOAD_CHUNK: GHCR rejects larger bodies


def http_push_floor(args: dict) -> dict:
    """Runs in a child process of its own (`python3 -c` with this function's source, so
    that its RSS and CPU are its own): uploads one blob the way a registry client must,
    over one keep-alive connection (Python's http.client; it sets TCP_NODELAY and hands a
    memoryview body to one sendall), and reports the time from the first connect to the
    registry's 201. The blob is read into memory and its digest is given before the clock
    starts: no hashing, no build, no config blob, no manifest, no existence checks.
    chunk 0: POST, then one PUT with the whole body (monolithic); else POST, PATCHes of
    `chunk` bytes with Content-Range, then a PUT with no body, as wasm-image uploads."""
    import http.client
    import time
    import urllib.parse

    with open(args["blob"], "rb") as f:
        data = f.read()
    view = memoryview(data)
    size, chunk, repo = len(data), args["chunk"], args["repo"]
    octets = {"Content-Type": "application/octet-stream"}
    requests = 0

    def call(method, target, body=None, headers=None, want=202):
        nonlocal requests
        hdrs = dict(headers or {})
        hdrs["Content-Length"] = str(0 if body is None else len(body))
        conn.request(method, target, body=body, headers=hdrs)
        r = conn.getresponse()
        r.read()
        requests += 1
        if r.status != want:
            raise SystemExit(f"{method} {target}: HTTP {r.status}, expected {want}")
        loc = r.getheader("Location") or ""
        u = urllib.parse.urlsplit(loc)
        return u.path + ("?" + u.query if u.query else "")

    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(args["host"], timeout=300)
    at = call("POST", f"/v2/{repo}/blobs/uploads/")
    if chunk:
        for off in range(0, size, chunk):
            part = view[off:off + chunk]
            at = call("PATCH", at, part, {**octets, "Content-Range": f"{off}-{off + len(part) - 1}"})
        body = None
    else:
        body = view
    sep = "&" if "?" in at else "?"
    call("PUT", f"{at}{sep}digest={args['digest']}", body, octets, want=201)
    t1 = time.perf_counter()
    conn.close()
    return {"op_s": t1 - t0, "requests": requests, "bytes": size}


def http_push_floor_argv(args: dict) -> list[str]:
    import inspect

    code = inspect.getsource(http_push_floor) + "\nimport json, sys\nprint(json.dumps(http_push_floor(json.loads(sys.argv[1]))))\n"
    return [sys.executable, "-c", code, json.dumps(args)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# --------------------------------------------------------------------------------------
# Samples and statistics
# --------------------------------------------------------------------------------------


@dataclass
class Sample:
    case: str
    tool: str
    size_mib: float | None
    repeat: int
    ok: bool
    time_s: float | None  # the figure compared: op_s for libraries, wall_s for commands
    wall_s: float  # the whole process (or processes), start-up included
    op_s: float | None  # the operation itself, timed inside the process (libraries)
    maxrss_mib: float
    extra: dict = field(default_factory=dict)
    error: str | None = None


class Results:
    def __init__(self):
        self.samples: list[Sample] = []
        self.skipped: dict[str, str] = {}  # tool/case -> why
        self.requests: dict[str, dict] = {}
        self.notes: list[str] = []
        self.disturbed = 0  # samples thrown away and measured again

    def add(self, s: Sample) -> None:
        self.samples.append(s)
        status = "ok" if s.ok else f"FAILED: {(s.error or '')[:300]}"
        t = f"{s.time_s:.3f}s" if s.time_s is not None else "-"
        cpu = f"cpu {s.extra.get('client_cpu_ms', 0):6.0f}+{s.extra.get('registry_cpu_ms', 0):4.0f} ms"
        log(f"  {s.case:<24} {s.tool:<26} #{s.repeat} {t:>9} {s.maxrss_mib:7.1f} MiB {cpu}  {status}")

    def of(self, case: str, tool: str) -> list[Sample]:
        return [s for s in self.samples if s.case == case and s.tool == tool and s.ok]

    def stats(self, case: str, tool: str) -> dict | None:
        ok = self.of(case, tool)
        if not ok:
            return None
        times = [s.time_s for s in ok]
        walls = [s.wall_s for s in ok]
        rss = [s.maxrss_mib for s in ok]
        return {
            "n": len(ok),
            "failed": sum(1 for s in self.samples if s.case == case and s.tool == tool and not s.ok),
            "median": statistics.median(times),
            "min": min(times),
            "max": max(times),
            "wall_median": statistics.median(walls),
            "rss_median": statistics.median(rss),
            "rss_max": max(rss),
        }


# --------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, work: Path):
        self.args = args
        self.work = work
        self.repeats = args.repeats or (3 if args.quick else 7)
        self.sizes = sorted({1, 50, *(int(x) for x in args.sizes.split(","))}) if args.sizes else [1, 50, 200]
        self.res = Results()
        self.servers: list[Server] = []
        self.python = args.python or sys.executable
        self.tools: dict[str, str] = {}  # tool -> "" if usable, else why not
        self.versions: dict[str, str] = {}
        self.host = ""
        self.proxy = ""
        self.proxy_ctl = ""
        self.modules: dict[int, Path] = {}
        self.nonce_offset: dict[int, int] = {}
        self.digests: dict[str, dict] = {}  # repo -> {"manifest":…, "module":…, "blob":…}
        self.runtime_config = b""
        self.buildah_ids = 0
        self.floor_ids = 0
        self.paused_s = 0.0
        self.quiet_needed = False

    # -- scratch files ---------------------------------------------------------------
    def scratch(self, name: str) -> Path:
        p = self.work / "scratch" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def wipe(self, *paths: Path) -> None:
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass

    # -- servers -----------------------------------------------------------------------
    def start_servers(self) -> None:
        d = self.work / "registry"
        (d / "data").mkdir(parents=True)
        port = free_port()
        cfg = d / "config.yml"
        cfg.write_text(
            f"""version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {json.dumps(str(d / 'data'))}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "127.0.0.1:{port}"
  secret: {json.dumps(os.urandom(16).hex())}
"""
        )
        reg = Server("registry", ["docker-registry", "serve", str(cfg)], d / "registry.log")
        self.servers.append(reg)
        self.host = f"127.0.0.1:{port}"
        wait_http(f"http://{self.host}/v2/", reg)
        SERVER_PIDS["registry"] = reg.proc.pid  # docker-registry itself: Popen without a shell
        log(f"registry on {self.host} (pid {reg.proc.pid})")

        port_file = self.work / "fault_proxy.port"
        proxy = Server(
            "fault_proxy",
            [sys.executable, str(SUPPORT / "fault_proxy.py"), "--upstream", self.host, "--port-file", str(port_file)],
            self.work / "fault_proxy.log",
        )
        self.servers.append(proxy)
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip().endswith("}"):
            if not proxy.alive() or time.monotonic() > deadline:
                raise RuntimeError("fault proxy did not start: " + proxy.logfile.read_text(errors="replace")[-800:])
            time.sleep(0.05)
        pport = json.loads(port_file.read_text())["port"]
        self.proxy = f"127.0.0.1:{pport}"
        self.proxy_ctl = f"http://{self.proxy}"
        wait_http(f"http://{self.proxy}/v2/", proxy)
        SERVER_PIDS["fault_proxy"] = proxy.proc.pid
        log(f"request-counting proxy on {self.proxy} (pid {proxy.proc.pid})")

    def proxy_log(self, match: str) -> list[dict]:
        _, _, body = http("GET", f"{self.proxy_ctl}/__log__?match={urllib.request.quote(match, safe='')}")
        return json.loads(body)

    def clear_proxy_log(self) -> None:
        http("DELETE", f"{self.proxy_ctl}/__log__")

    # -- containers tools' own configuration, all in the work folder -----------------------
    def containers_env(self) -> dict:
        c = self.work / "containers"
        if not c.exists():
            for sub in ("storage", "run", "tmp"):
                (c / sub).mkdir(parents=True)
            (c / "storage.conf").write_text(
                f'[storage]\ndriver = "vfs"\ngraphroot = {json.dumps(str(c / "storage"))}\n'
                f'runroot = {json.dumps(str(c / "run"))}\n'
            )
            (c / "registries.conf").write_text('unqualified-search-registries = []\nshort-name-mode = "permissive"\n')
            (c / "containers.conf").write_text("[engine]\n")
            (c / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
            (c / "auth.json").write_text('{"auths": {}}')
        return clean_env(
            {
                "CONTAINERS_STORAGE_CONF": str(c / "storage.conf"),
                "CONTAINERS_REGISTRIES_CONF": str(c / "registries.conf"),
                "CONTAINERS_CONF": str(c / "containers.conf"),
                "REGISTRY_AUTH_FILE": str(c / "auth.json"),
                "TMPDIR": str(c / "tmp"),
                "BUILDAH_ISOLATION": "chroot",
            }
        )

    @property
    def policy(self) -> str:
        return str(self.work / "containers" / "policy.json")

    def buildah(self) -> list[str]:
        c = self.work / "containers"
        return ["buildah", "--root", str(c / "storage"), "--runroot", str(c / "run"), "--storage-driver", "vfs"]

    # -- tools and versions --------------------------------------------------------------
    def py_env(self) -> dict:
        return clean_env({"PYTHONDONTWRITEBYTECODE": "1"})

    def pyworker(self, op: str, args: dict) -> list[str]:
        return [self.python, str(HERE / "pyworker.py"), op, json.dumps(args)]

    def find_cli(self) -> str | None:
        if self.args.cli:
            return self.args.cli
        beside = Path(self.python).parent / "wasm-image"
        if beside.exists():
            return str(beside)
        return shutil.which("wasm-image")

    def detect_tools(self) -> None:
        v = self.versions
        v["python"] = first_line([self.python, "--version"])
        v["curl"] = first_line(["curl", "--version"], r"curl \S+")
        v["skopeo"] = first_line(["skopeo", "--version"], r"\d+\.\d+\.\d+")
        v["buildah"] = first_line(["buildah", "--version"], r"\d+\.\d+\.\d+")
        v["docker-registry"] = first_line(["docker-registry", "--version"], r"v?\d+\.\d+\.\d+\S*")
        v["oras-py"] = first_line([self.python, "-c", "import importlib.metadata as m; print(m.version('oras'))"])
        v["gcc"] = first_line(["gcc", "--version"])
        try:
            import matplotlib

            v["matplotlib"] = matplotlib.__version__
        except ImportError:
            v["matplotlib"] = "not installed"
        v["wasm-image (python)"] = first_line(
            [self.python, "-c", "import wasm_image, os; print(wasm_image.__version__, os.path.dirname(wasm_image.__file__))"]
        )
        try:
            rev = run_quiet(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).strip()
            dirty = run_quiet(["git", "-C", str(ROOT), "status", "--porcelain", "--", "core", "python", "ffi"]).strip()
            v["wasm-image (git)"] = rev + (" + uncommitted changes in core/python/ffi" if dirty else "")
        except Exception:  # noqa: BLE001
            v["wasm-image (git)"] = "?"
        for tool in ("curl", "skopeo", "buildah", "docker-registry"):
            self.tools[tool] = "" if shutil.which(tool) else f"{tool} not installed"
        self.tools["oras-py"] = "" if re.match(r"\d", v["oras-py"]) else "oras-py not installed (pip install oras)"
        native = self.native_build_kind()
        v["wasm-image build"] = native
        self.res.notes.append(f"wasm-image native module: {native}")

    def native_build_kind(self) -> str:
        out = first_line(
            [self.python, "-c", "import glob, os, wasm_image; print(*glob.glob(os.path.join(os.path.dirname(wasm_image.__file__), '_native*')))"]
        )
        path = Path(out.split()[0]) if out and out.startswith("/") else None
        if not path or not path.exists():
            return "not importable"
        try:
            sections = run_quiet(["readelf", "-S", "-W", str(path)])
            debug = ".debug_info" in sections
        except Exception:  # noqa: BLE001
            debug = False
        mb = path.stat().st_size / MiB
        kind = "DEBUG build (has .debug_info; built by `maturin develop`?)" if debug else "release build"
        return f"{path.name}, {mb:.1f} MiB, {kind}"

    def probe_python_api(self) -> None:
        p = measure(self.pyworker("pull", {"host": self.host, "location": f"{self.host}/bench/oci-1m:v1", "size": MiB}), env=self.py_env())
        if p.returncode != 0:
            self.tools["py"] = f"Python API pull failed: {p.stderr.strip()[-400:]}"
        else:
            self.tools["py"] = ""

    def probe_cli(self) -> None:
        cli = self.find_cli()
        if not cli:
            self.tools["cli"] = "`wasm-image` command not found"
            return
        self.cli = cli
        out = self.scratch("probe-cli.wasm")
        p = measure([cli, "pull", f"{self.host}/bench/oci-1m:v1", "-o", str(out), "--insecure", self.host, "-q", "--no-config-files"], env=self.py_env())
        ok = p.returncode == 0 and out.exists() and out.stat().st_size == MiB
        self.tools["cli"] = "" if ok else f"CLI pull did not work (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-300:] or 'no output, no file'}"
        self.wipe(out)

    def build_c(self) -> None:
        header = ROOT / "include" / "wasm_image.h"
        lib_dir = Path(self.args.lib_dir) if self.args.lib_dir else ROOT / "target" / "release"
        if self.args.build_ffi:
            log("cargo build --release -p wasm-image-ffi …")
            try:
                run_quiet(["cargo", "build", "--release", "-p", "wasm-image-ffi"], timeout=1800)
            except Exception as e:  # noqa: BLE001
                self.tools["c"] = f"cargo build --release -p wasm-image-ffi failed: {str(e)[-400:]}"
                return
        static, shared = lib_dir / "libwasmimage.a", lib_dir / "libwasmimage.so"
        if not header.exists() or not (static.exists() or shared.exists()):
            self.tools["c"] = f"C API not ready: {'no include/wasm_image.h' if not header.exists() else f'no libwasmimage in {lib_dir}'}"
            return
        exe = self.work / "pull_c"
        # Static, as the Go binding links it: no install step, no soname symlink needed.
        lib = static if static.exists() else shared
        link = [str(static), "-lpthread", "-ldl", "-lm"] if lib == static else \
            [f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-lwasmimage"]
        try:
            run_quiet(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-o", str(exe), str(HERE / "pull_c.c"),
                       f"-I{header.parent}", *link])
        except Exception as e:  # noqa: BLE001
            self.tools["c"] = f"bench/pull_c.c does not compile/link against include/wasm_image.h and {lib}: {str(e)[-600:]}"
            return
        self.c_exe = str(exe)
        self.versions["libwasmimage"] = f"{lib} ({lib.stat().st_size / MiB:.1f} MiB, built {time.strftime('%Y-%m-%d %H:%M', time.localtime(lib.stat().st_mtime))})"
        probe = self.scratch("probe-c.wasm")
        p = measure([self.c_exe, "file", f"{self.host}/bench/oci-1m:v1", str(probe), self.host])
        ok = p.returncode == 0 and probe.exists() and probe.stat().st_size == MiB
        self.tools["c"] = "" if ok else f"C API pull failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-300:]}"
        self.wipe(probe)

    # -- images --------------------------------------------------------------------------
    def make_modules(self) -> None:
        base = small_module(self.work)
        d = self.work / "modules"
        d.mkdir()
        for size in self.sizes:
            path = d / f"module-{size}m.wasm"
            self.nonce_offset[size] = write_module(path, base, size * MiB)
            self.modules[size] = path
        path = d / "module-50m-compressible.wasm"
        self.nonce_offset[COMPRESSIBLE] = write_module(path, base, 50 * MiB, compressible=True)
        self.modules[COMPRESSIBLE] = path
        v = validate_module(self.modules[1])
        for key in self.modules:
            validate_module(self.modules[key])
        import zlib

        with open(path, "rb") as f:
            sample = f.read(8 * MiB)
        self.compress_ratio = len(sample) / len(zlib.compress(sample, 6))
        self.res.notes.append(f"compressible module: gzip -6 ratio {self.compress_ratio:.2f} (random bytes: 1.00)")
        self.res.notes.append(f"modules: {len(base)}-byte proxy-wasm module + one custom section of random bytes; {v}")
        log(f"modules written and validated ({v})")
        abi = ["proxy_abi_version_0_2_1"] if len(base) > 8 else []
        self.runtime_config = json.dumps({"type": "envoy_proxy", "abiVersions": abi}).encode()

    def push_fixtures(self) -> None:
        """The images pulled: one oci-variant and one compat image per size, pushed by
        wasm-image itself (the Python API) when it works, else by a plain HTTP pusher
        here (same layouts) so the peers can still be measured."""
        use_api = False
        p = measure(self.pyworker("noop", {}), env=self.py_env())
        if p.returncode == 0:
            use_api = True
        for size in self.sizes:
            for variant in ("oci", "compat"):
                repo = f"bench/{variant}-{size}m"
                loc = f"{self.host}/{repo}:v1"
                pushed_by = "wasm-image Python API"
                if use_api:
                    r = measure(
                        self.pyworker("build_push", {"host": self.host, "module": str(self.modules[size]), "variant": variant, "location": loc}),
                        env=self.py_env(),
                        timeout=600,
                    )
                    if r.returncode != 0:
                        log(f"wasm-image could not push {loc}: {r.stderr.strip()[-300:]}; using the plain pusher")
                        use_api = False
                if not use_api:
                    pushed_by = "bench/run.py's plain HTTP pusher (wasm-image could not push)"
                    self.plain_push(repo, self.modules[size], variant)
                self.digests[repo] = self.describe(repo)
                self.digests[repo]["pushed_by"] = pushed_by
        self.res.notes.append("fixture images pushed by " + self.digests["bench/oci-1m"]["pushed_by"])
        log("fixture images pushed by " + self.digests["bench/oci-1m"]["pushed_by"])

    def describe(self, repo: str) -> dict:
        status, headers, body = http("GET", f"http://{self.host}/v2/{repo}/manifests/v1", {"Accept": MANIFEST_ACCEPT})
        if status != 200:
            raise RuntimeError(f"{repo}: manifest HTTP {status}")
        m = json.loads(body)
        layers = m["layers"]
        module_layer = max(layers, key=lambda l: l["size"])
        return {
            "manifest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "manifest_media_type": m.get("mediaType") or headers.get("Content-Type"),
            "config_media_type": m["config"]["mediaType"],
            "blob": module_layer["digest"],
            "blob_media_type": module_layer["mediaType"],
            "blob_size": module_layer["size"],
            "layers": len(layers),
        }

    def plain_push(self, repo: str, module: Path, variant: str) -> None:
        import gzip
        import io
        import tarfile

        def put_blob(data: bytes) -> dict:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            st, h, b = http("POST", f"http://{self.host}/v2/{repo}/blobs/uploads/")
            if st != 202:
                raise RuntimeError(f"upload start: {st} {b[:200]!r}")
            loc = h["Location"]
            if loc.startswith("/"):
                loc = f"http://{self.host}{loc}"
            sep = "&" if "?" in loc else "?"
            st, _, b = http("PUT", f"{loc}{sep}digest={digest}", {"Content-Type": "application/octet-stream"}, data, timeout=300)
            if st != 201:
                raise RuntimeError(f"upload: {st} {b[:200]!r}")
            return {"digest": digest, "size": len(data)}

        data = module.read_bytes()
        if variant == "oci":
            cfg = {"mediaType": SOLO_CONFIG, **put_blob(self.runtime_config)}
            layers = [
                {"mediaType": SOLO_CONFIG, **put_blob(self.runtime_config), "annotations": {"org.opencontainers.image.title": "runtime-config.json"}},
                {"mediaType": SOLO_LAYER, **put_blob(data), "annotations": {"org.opencontainers.image.title": "plugin.wasm"}},
            ]
            annotations = {}
        else:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
                ti = tarfile.TarInfo("plugin.wasm")
                ti.size = len(data)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(data))
            tar = buf.getvalue()
            layer = gzip.compress(tar, compresslevel=6, mtime=0)
            diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
            config = json.dumps(
                {"architecture": "wasm", "os": "wasip1", "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}}
            ).encode()
            cfg = {"mediaType": "application/vnd.oci.image.config.v1+json", **put_blob(config)}
            layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put_blob(layer)}]
            annotations = {"module.wasm.image/variant": "compat"}
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": layers, "annotations": annotations}
        ).encode()
        st, _, b = http("PUT", f"http://{self.host}/v2/{repo}/manifests/v1", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, manifest)
        if st != 201:
            raise RuntimeError(f"manifest put: {st} {b[:200]!r}")

    # -- one measured run of one tool ------------------------------------------------------
    def sample(self, case: str, tool: str, size: float | None, repeat: int, procs: list[Proc], *, library: bool,
               check=None, extra: dict | None = None, via_proxy: bool = False) -> None:
        """Turns one or more child processes (a sequence, like buildah's steps) into a
        sample: wall times and CPU times add up, peak RSS is the largest. The registry's
        CPU is counted while each child runs; the fault proxy's only when the child
        talked to it (via_proxy), as no timed case does."""
        ok = all(p.returncode == 0 for p in procs)
        err = None
        extra = dict(extra or {})
        op_s = None
        if ok and library == "curl":
            # curl's own time of its transfers (-w %{time_total}, one line per transfer):
            # the same scope as a library's in-process figure, start-up excluded.
            try:
                parts = [float(x) for x in procs[-1].stdout.split()]
                op_s = sum(parts)
                extra["transfers_s"] = parts
            except ValueError as e:
                ok, err = False, f"curl -w output: {e}"
        elif ok and library:
            try:
                rep = json.loads(procs[-1].stdout.strip().splitlines()[-1])
                op_s = rep.pop("op_s")
                extra.update(rep)
            except (ValueError, IndexError, KeyError) as e:
                ok, err = False, f"no report from the child: {e}: {procs[-1].stdout[-300:]}"
        if ok and check:
            try:
                check()
            except Exception as e:  # noqa: BLE001
                ok, err = False, str(e)
        if not ok and err is None:
            bad = next(p for p in procs if p.returncode != 0)
            err = f"exit {bad.returncode}: {(bad.stderr or bad.stdout).strip()[-500:]}"
        wall = sum(p.wall_s for p in procs)
        if len(procs) > 1:
            extra["steps_wall_s"] = [round(p.wall_s, 4) for p in procs]
        extra.update(client_cpu(procs))
        extra.update(server_cpu(procs, via_proxy))
        self.res.add(
            Sample(
                case=case,
                tool=tool,
                size_mib=size,
                repeat=repeat,
                ok=ok,
                time_s=(op_s if library else wall) if ok else None,
                wall_s=wall,
                op_s=op_s,
                maxrss_mib=max(p.maxrss_kib for p in procs) / 1024,
                extra=extra,
                error=err,
            )
        )

    def usable(self, key: str) -> bool:
        return not self.tools.get(key)

    def want(self, case: str) -> bool:
        return not self.args.only or any(o in case for o in self.args.only)

    # -- pull --------------------------------------------------------------------------
    def pull_runners(self, variant: str, size: int) -> list[tuple[str, str, object]]:
        """(tool, needs, run(repeat)) for one image."""
        repo = f"bench/{variant}-{size}m"
        loc = f"{self.host}/{repo}:v1"
        d = self.digests[repo]
        nbytes = size * MiB
        case_mem, case_file = f"pull-mem {variant}", f"pull-file {variant}"
        manifest_url = f"http://{self.host}/v2/{repo}/manifests/v1"
        blob_url = f"http://{self.host}/v2/{repo}/blobs/{d['blob']}"
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
            self.sample(case_mem, "curl (floor)", size, i, [p], library="curl")

        def r_curl_file(i):
            out = self.scratch("curl.out")
            p = measure(curl(str(out)))
            self.sample(case_file, "curl (floor)", size, i, [p], library="curl", check=file_check(out, d["blob_size"]))
            self.wipe(out)

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
            self.sample(case_mem, VERIFIED, size, i, ref, library=False, check=digest_check(ref))

        def r_verified_file(i):
            out = self.scratch("verified.out")
            ref = [measure(verified(str(out)))]
            self.sample(case_file, VERIFIED, size, i, ref, library=False, check=digest_check(ref, out))
            self.wipe(out)

        def r_py_mem(i):
            p = measure(self.pyworker("pull", {"host": self.host, "location": loc, "size": nbytes}), env=self.py_env())
            self.sample(case_mem, "wasm-image Python API", size, i, [p], library=True)

        def r_py_file(i):
            out = self.scratch("py.wasm")
            p = measure(self.pyworker("pull_to_file", {"host": self.host, "location": loc, "path": str(out), "size": nbytes}), env=self.py_env())
            self.sample(case_file, "wasm-image Python API", size, i, [p], library=True, check=file_check(out, nbytes))
            self.wipe(out)

        def r_cli_file(i):
            out = self.scratch("cli.wasm")
            p = measure([self.cli, "pull", loc, "-o", str(out), "--insecure", self.host, "-q", "--no-config-files"], env=self.py_env())
            self.sample(case_file, "wasm-image CLI", size, i, [p], library=False, check=file_check(out, nbytes))
            self.wipe(out)

        def r_c_mem(i):
            p = measure([self.c_exe, "mem", loc, "-", self.host])
            self.sample(case_mem, "wasm-image C API", size, i, [p], library=True)

        def r_c_file(i):
            out = self.scratch("c.wasm")
            p = measure([self.c_exe, "file", loc, str(out), self.host])
            self.sample(case_file, "wasm-image C API", size, i, [p], library=True, check=file_check(out, nbytes))
            self.wipe(out)

        def r_skopeo(i):
            out = self.scratch("skopeo-oci")
            self.wipe(out)
            p = measure(["skopeo", "--policy", self.policy, "copy", "--quiet", "--retry-times", "0", "--src-tls-verify=false",
                         f"docker://{loc}", f"oci:{out}:v1"], env=self.containers_env())

            def check():
                blob = out / "blobs" / "sha256" / d["blob"].split(":", 1)[1]
                if not blob.exists() or blob.stat().st_size != d["blob_size"]:
                    raise RuntimeError("skopeo's layout lacks the module blob")
            self.sample(case_file, "skopeo copy → oci:", size, i, [p], library=False, check=check)
            self.wipe(out)

        def r_oras(i):
            out = self.scratch("oras-out")
            self.wipe(out)
            out.mkdir()
            p = measure(self.pyworker("oras_pull", {"host": self.host, "target": loc, "outdir": str(out), "size": nbytes}), env=self.py_env())
            self.sample(case_file, "oras-py", size, i, [p], library=True)
            self.wipe(out)

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
        return runners

    def run_rounds(self, label: str, runners: list, repeats: int) -> None:
        runners = [r for r in runners if self.usable(r[1])]
        if not runners:
            return
        log(f"{label}: {len(runners)} tools × {repeats} rounds")
        for i in range(repeats):
            # Rotate the order each round: no tool is always first after a pause.
            k = i % len(runners)
            for _, _, run in runners[k:] + runners[:k]:
                self.run_undisturbed(run, i)

    def run_undisturbed(self, run, i: int) -> None:
        """Runs one measurement while nobody else uses the CPU: waits for other engineers'
        compilers to end first, and measures again (twice at most) when a compiler started
        meanwhile or other processes took more than 30 ms + 10% of the run's wall time of
        CPU. A sample still disturbed is kept, flagged `foreign_busy`."""
        for attempt in range(3):
            self.wait_quiet()
            # Files written by earlier measurements (pulled modules, buildah's storage) are
            # flushed now, not by kernel writeback in the middle of this one.
            os.sync()
            before_n = len(self.res.samples)
            snap, steal0 = cpu_snapshot(), steal_s()
            t0 = time.monotonic()
            run(i)
            wall = time.monotonic() - t0
            foreign = foreign_cpu_s(snap, cpu_snapshot())
            stolen = steal_s() - steal0
            busy = busy_processes()
            for smp in self.res.samples[before_n:]:
                smp.extra["foreign_cpu_s"] = round(foreign, 3)
                smp.extra["steal_s"] = round(stolen, 3)
            if self.args.no_pause or (not busy and foreign + stolen <= 0.03 + 0.1 * wall):
                return
            if busy:
                why = f"compilers ({', '.join(busy[:3])})"
            elif stolen > foreign:
                why = f"the hypervisor took {stolen:.2f} s of CPU (steal)"
            else:
                why = f"other processes used {foreign:.2f} s of CPU"
            if attempt < 2:
                log(f"  disturbed: {why} during that measurement: measuring it again")
                self.res.disturbed += len(self.res.samples) - before_n
                del self.res.samples[before_n:]
                self.quiet_needed = True
            else:
                for smp in self.res.samples[before_n:]:
                    smp.extra["foreign_busy"] = why

    def wait_quiet(self) -> None:
        """Before a measurement: no foreign compiler, and after a disturbed one also a full
        second in which other processes used under 50 ms of CPU."""
        if self.args.no_pause:
            return
        waited = 0.0
        while self.paused_s < self.args.max_pause:
            busy = busy_processes()
            if not busy and self.quiet_needed:
                snap = cpu_snapshot()
                time.sleep(1)
                waited += 1
                self.paused_s += 1
                if foreign_cpu_s(snap, cpu_snapshot()) < 0.05:
                    self.quiet_needed = False
                continue
            if not busy:
                break
            if waited == 0:
                log(f"  paused: someone else's compilers run ({', '.join(busy[:4])})")
            time.sleep(2)
            waited += 2
            self.paused_s += 2
        if waited >= 2:
            log(f"  resumed after {waited:.0f} s")

    def case_pull(self) -> None:
        for variant in ("oci", "compat"):
            if not self.want(f"pull-mem {variant}") and not self.want(f"pull-file {variant}"):
                continue
            for size in self.sizes:
                runners = self.pull_runners(variant, size)
                # warm-up (not recorded): page cache, registry's first-request costs
                self.run_rounds(f"pull {variant} {size} MiB", runners, self.repeats)

    # -- build + push ---------------------------------------------------------------------
    def case_push(self) -> None:
        self.push_cases(50, "", ("compat", "oci"))
        # Random bytes do not compress, which flatters a compressor that detects it (Go's
        # klauspost/compress stores such blocks almost for free; zlib and miniz_oxide do
        # not): compat once more with a module that compresses like real code.
        self.push_cases(COMPRESSIBLE, " (compressible module)", ("compat",))

    def push_cases(self, key, suffix: str, variants: tuple) -> None:
        size = 50
        src = self.modules[key]
        off = self.nonce_offset[key]
        tagk = "-z" if suffix else ""

        def distinct(tag: str) -> Path:
            d = self.scratch(f"push-{tag}")
            d.mkdir(exist_ok=True)
            p = d / "plugin.wasm"
            distinct_copy(src, p, off)
            return p

        def r_py(variant, i):
            m = distinct("py")
            loc = f"{self.host}/bench/push-{variant}{tagk}-py:r{i}"
            p = measure(self.pyworker("build_push", {"host": self.host, "module": str(m), "variant": variant, "location": loc}), env=self.py_env())
            self.sample(f"build+push {variant}{suffix}", "wasm-image Python API", size, i, [p], library=True,
                        check=lambda: self.check_pushed(f"bench/push-{variant}{tagk}-py", f"r{i}"))
            self.wipe(m.parent)

        def r_cli(variant, i):
            m = distinct("cli")
            loc = f"{self.host}/bench/push-{variant}{tagk}-cli:r{i}"
            p = measure([self.cli, "build", str(m), "-t", loc, "--variant", variant, "--insecure", self.host, "-q", "--no-config-files"], env=self.py_env())
            self.sample(f"build+push {variant}{suffix}", "wasm-image CLI", size, i, [p], library=False,
                        check=lambda: self.check_pushed(f"bench/push-{variant}{tagk}-cli", f"r{i}"))
            self.wipe(m.parent)

        def r_buildah(i):
            m = distinct("buildah")
            env = self.containers_env()
            b = self.buildah()
            self.buildah_ids += 1
            name = f"bench-w{self.buildah_ids}"
            loc = f"{self.host}/bench/push-compat{tagk}-buildah:r{i}"
            procs = [measure([*b, "from", "--signature-policy", self.policy, "--name", name, "scratch"], env=env)]
            if procs[-1].returncode == 0:
                procs.append(measure([*b, "copy", name, str(m), "./"], env=env))
            if procs[-1].returncode == 0:
                procs.append(measure([*b, "config", "--annotation", "module.wasm.image/variant=compat", name], env=env))
            if procs[-1].returncode == 0:
                procs.append(measure([*b, "commit", "--signature-policy", self.policy, "--tls-verify=false", "--quiet",
                                      name, f"docker://{loc}"], env=env))
            self.sample(f"build+push compat{suffix}", BUILDAH, size, i, procs, library=False,
                        check=lambda: self.check_pushed(f"bench/push-compat{tagk}-buildah", f"r{i}"))
            run_quiet([*b, "rm", name], env=env, check=False)
            self.wipe(m.parent)

        def r_oras(i):
            m = distinct("oras")
            cfg = m.parent / "config.json"
            cfg.write_bytes(self.runtime_config)
            target = f"{self.host}/bench/push-oci-oras:r{i}"
            p = measure(self.pyworker("oras_push", {"host": self.host, "target": target, "module": str(m), "config": str(cfg)}), env=self.py_env())
            self.sample("build+push oci", "oras-py push", size, i, [p], library=True,
                        check=lambda: self.check_pushed("bench/push-oci-oras", f"r{i}"))
            self.wipe(m.parent)

        def floors(variant) -> list:
            """The upload alone of a blob as large as this variant's 50 MiB layer (the
            compat fixture's gzip layer, the oci fixture's module), both ways. Only for
            the random module: the compressible one's layer is smaller, and no fixture
            of it is pushed to take the size from."""
            if suffix:
                return []
            nbytes = self.digests[f"bench/{variant}-50m"]["blob_size"]
            case = f"build+push {variant}"
            blob = self.scratch(f"floor-{variant}.bin")

            def run(tool, chunk, i):
                if not blob.exists() or blob.stat().st_size != nbytes:
                    with open(blob, "wb") as f:
                        for left in range(nbytes, 0, -4 * MiB):
                            f.write(os.urandom(min(left, 4 * MiB)))
                with open(blob, "r+b") as f:  # fresh random first bytes: a digest the registry has never seen
                    f.write(os.urandom(NONCE_LEN))
                digest = sha256_file(blob)
                self.floor_ids += 1
                repo = f"bench/floor-{variant}-{'patch' if chunk else 'put'}-{self.floor_ids}"  # a fresh repository too
                p = measure(http_push_floor_argv({"host": self.host, "repo": repo, "blob": str(blob), "digest": digest,
                                                  "chunk": chunk}))

                def check():
                    st, h, _ = http("HEAD", f"http://{self.host}/v2/{repo}/blobs/{digest}")
                    if st != 200 or int(h.get("Content-Length", -1)) != nbytes:
                        raise RuntimeError(f"{repo}: blob not stored whole (HTTP {st}, {h.get('Content-Length')} bytes)")
                self.sample(case, tool, size, i, [p], library=True, check=check)

            return [("floor put", "http-floor", lambda i: run(FLOOR_PUT, 0, i)),
                    ("floor patch", "http-floor", lambda i: run(FLOOR_PATCH, UPLOAD_CHUNK, i))]

        if "compat" in variants and self.want(f"build+push compat{suffix}"):
            self.run_rounds(f"build+push compat{suffix} 50 MiB", [
                ("py", "py", lambda i: r_py("compat", i)),
                ("cli", "cli", lambda i: r_cli("compat", i)),
                ("buildah", "buildah", r_buildah),
                *floors("compat"),
            ], self.repeats)
        if "oci" in variants and self.want("build+push oci"):
            self.run_rounds("build+push oci 50 MiB", [
                ("py", "py", lambda i: r_py("oci", i)),
                ("cli", "cli", lambda i: r_cli("oci", i)),
                ("oras", "oras-py", r_oras),
                *floors("oci"),
            ], self.repeats)

    def check_pushed(self, repo: str, tag: str) -> None:
        st, _, _ = http("HEAD", f"http://{self.host}/v2/{repo}/manifests/{tag}", {"Accept": MANIFEST_ACCEPT})
        if st != 200:
            raise RuntimeError(f"{repo}:{tag} is not in the registry (HTTP {st})")

    # -- resolve ------------------------------------------------------------------------
    def case_resolve(self) -> None:
        if not self.want("resolve"):
            return
        repo = "bench/oci-1m"
        want_digest = self.digests[repo]["manifest"]

        def runners(host: str):
            loc = f"{host}/{repo}:v1"
            via = host == self.proxy

            def r_py(i):
                p = measure(self.pyworker("resolve", {"host": host, "location": loc}), env=self.py_env())

                def check():
                    got = json.loads(p.stdout.strip().splitlines()[-1]).get("digest")
                    if got != want_digest:
                        raise RuntimeError(f"resolved {got}, expected {want_digest}")
                self.sample("resolve", "wasm-image Python API", None, i, [p], library=True, check=check, via_proxy=via)

            def r_skopeo(i):
                p = measure(["skopeo", "inspect", "--raw", "--retry-times", "0", "--tls-verify=false", f"docker://{loc}"],
                            env=self.containers_env())
                self.sample("resolve", "skopeo inspect --raw", None, i, [p], library=False, via_proxy=via)

            def r_curl(i):
                p = measure(["curl", "-sS", "--fail", "-I", "-w", CURL_W, "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", "/dev/null",
                             f"http://{host}/v2/{repo}/manifests/v1"])
                self.sample("resolve", "curl -I (floor)", None, i, [p], library="curl", via_proxy=via)

            return [("py", "py", r_py), ("skopeo", "skopeo", r_skopeo), ("curl", "curl", r_curl)]

        self.run_rounds("resolve", runners(self.host), self.repeats)
        # Requests, counted by the proxy (one run each, not timed).
        before = len(self.res.samples)
        for name, needs, run in runners(self.proxy):
            if not self.usable(needs):
                continue
            self.clear_proxy_log()
            run(-1)
            self.record_requests("resolve", self.res.samples[-1].tool, repo)
        del self.res.samples[before:]

    def record_requests(self, case: str, tool: str, repo: str) -> None:
        entries = self.proxy_log("/v2/")
        reqs = [f"{e['method']} {e['path']} → {e['status']}" for e in entries]
        self.res.requests.setdefault(case, {})[tool] = {"count": len(reqs), "requests": reqs}
        log(f"  requests: {case} / {tool}: {len(reqs)}: {'; '.join(reqs)[:300]}")

    def count_pull_requests(self) -> None:
        """How many requests each tool makes for one pull (1 MiB oci image, via the proxy)."""
        if not self.want("pull-mem oci") and not self.want("requests"):
            return
        repo = "bench/oci-1m"
        loc = f"{self.proxy}/{repo}:v1"
        d = self.digests[repo]
        work = self.scratch("count")
        todo = []
        if self.usable("curl"):
            todo.append(("curl (floor)", ["curl", "-sS", "--fail", "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", "/dev/null",
                                          f"http://{self.proxy}/v2/{repo}/manifests/v1", "--next", "-sS", "--fail", "-o",
                                          "/dev/null", f"http://{self.proxy}/v2/{repo}/blobs/{d['blob']}"], None))
        if self.usable("py"):
            todo.append(("wasm-image Python API", self.pyworker("pull", {"host": self.proxy, "location": loc, "size": MiB}), self.py_env()))
        if self.usable("cli"):
            todo.append(("wasm-image CLI", [self.cli, "pull", loc, "-o", str(work / "cli.wasm"), "--insecure", self.proxy, "-q", "--no-config-files"], self.py_env()))
        if self.usable("c"):
            todo.append(("wasm-image C API", [self.c_exe, "mem", loc, "-", self.proxy], None))
        if self.usable("skopeo"):
            todo.append(("skopeo copy → oci:", ["skopeo", "--policy", self.policy, "copy", "--quiet", "--retry-times", "0",
                                                 "--src-tls-verify=false", f"docker://{loc}", f"oci:{work / 'skopeo'}:v1"],
                         self.containers_env()))
        if self.usable("oras-py"):
            (work / "oras").mkdir(parents=True, exist_ok=True)
            todo.append(("oras-py", self.pyworker("oras_pull", {"host": self.proxy, "target": loc, "outdir": str(work / "oras"), "size": MiB}),
                         self.py_env()))
        for tool, argv, env in todo:
            self.clear_proxy_log()
            p = measure(argv, env=env)
            if p.returncode != 0:
                log(f"  request count for {tool}: the pull failed: {p.stderr.strip()[-200:]}")
                continue
            self.record_requests("pull", tool, repo)
        self.wipe(work)

    # -- 64 at once ------------------------------------------------------------------------
    def case_concurrency(self) -> None:
        if not self.want("64 pulls"):
            return
        n = 64
        repo = "bench/oci-1m"
        loc = f"{self.host}/{repo}:v1"
        d = self.digests[repo]
        case = "64 pulls of 1 MiB"

        def r_threads(i):
            p = measure(self.pyworker("pull_many", {"host": self.host, "location": loc, "size": MiB, "n": n, "parallel": True}), env=self.py_env())
            self.sample(case, "wasm-image: 64 threads, one Client", 1, i, [p], library=True)

        def r_seq(i):
            p = measure(self.pyworker("pull_many", {"host": self.host, "location": loc, "size": MiB, "n": n, "parallel": False}), env=self.py_env())
            self.sample(case, "wasm-image: 64 in sequence, one Client", 1, i, [p], library=True)

        def parallel_procs(make_argv, env) -> tuple[list[Proc], dict]:
            """The n processes, and the servers' CPU over the whole batch (each process's
            own figure overlaps the others')."""
            marks = server_marks()
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                futs = [pool.submit(measure, make_argv(k), env=env) for k in range(n)]
                procs = [f.result() for f in futs]
            return procs, servers_used_ms(marks, server_marks())

        def r_skopeo(i):
            base = self.scratch("skopeo64")
            self.wipe(base)
            base.mkdir()
            t0 = time.perf_counter()
            procs, servers = parallel_procs(lambda k: ["skopeo", "--policy", self.policy, "copy", "--quiet", "--retry-times", "0",
                                              "--src-tls-verify=false", f"docker://{loc}", f"oci:{base / str(k)}:v1"],
                                   self.containers_env())
            wall = time.perf_counter() - t0
            self.concurrent_sample(case, "skopeo ×64 processes in parallel", i, procs, wall, servers)
            self.wipe(base)

        def r_curl(i):
            url_m = f"http://{self.host}/v2/{repo}/manifests/v1"
            url_b = f"http://{self.host}/v2/{repo}/blobs/{d['blob']}"
            t0 = time.perf_counter()
            procs, servers = parallel_procs(lambda k: ["curl", "-sS", "--fail", "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", "/dev/null", url_m,
                                              "--next", "-sS", "--fail", "-o", "/dev/null", url_b], None)
            wall = time.perf_counter() - t0
            self.concurrent_sample(case, "curl ×64 processes in parallel (floor)", i, procs, wall, servers)

        self.run_rounds(case, [
            ("threads", "py", r_threads),
            ("seq", "py", r_seq),
            ("skopeo", "skopeo", r_skopeo),
            ("curl", "curl", r_curl),
        ], self.repeats)

    def concurrent_sample(self, case: str, tool: str, i: int, procs: list[Proc], wall: float, servers: dict) -> None:
        ok = all(p.returncode == 0 for p in procs)
        bad = [p for p in procs if p.returncode != 0]
        extra = {"processes": len(procs), "rss_sum_mib": round(sum(p.maxrss_kib for p in procs) / 1024, 1), **client_cpu(procs)}
        if "registry" in servers:
            extra["registry_cpu_ms"] = servers["registry"]
            extra["registry_cpu_stat_ms"] = servers["registry_stat"]
        self.res.add(
            Sample(
                case=case, tool=tool, size_mib=1, repeat=i, ok=ok, time_s=wall if ok else None, wall_s=wall, op_s=None,
                maxrss_mib=max(p.maxrss_kib for p in procs) / 1024,
                extra=extra,
                error=None if ok else f"{len(bad)} failed: {(bad[0].stderr or '')[-300:]}",
            )
        )

    # -- a baseline: the interpreter and the import alone ------------------------------------
    def case_baseline(self) -> None:
        if not self.want("baseline"):
            return
        runners = []
        if self.usable("py"):
            runners.append(("py", "py", lambda i: self.sample("baseline", "python3 + import wasm_image", None, i,
                                                              [measure(self.pyworker("noop", {}), env=self.py_env())], library=True)))
        if self.usable("oras-py"):
            runners.append(("oras", "oras-py", lambda i: self.sample("baseline", "python3 + import oras.client", None, i,
                                                                     [measure(self.pyworker("noop_oras", {}), env=self.py_env())], library=True)))
        self.run_rounds("baseline", runners, self.repeats)

    # -- the whole run ------------------------------------------------------------------------
    def run(self) -> None:
        self.detect_tools()
        for need in ("docker-registry",):
            if self.tools[need]:
                raise SystemExit(f"{self.tools[need]}: see /work/shared/TESTBED.md or tests/support (apt-get install docker-registry)")
        self.start_servers()
        self.containers_env()
        self.make_modules()
        self.push_fixtures()
        self.probe_python_api()
        self.probe_cli()
        self.build_c()
        for k, why in self.tools.items():
            if why:
                self.res.skipped[k] = why
                log(f"skipping {k}: {why}")
        t0 = time.monotonic()
        self.case_baseline()
        self.case_resolve()
        self.count_pull_requests()
        self.case_pull()
        self.case_push()
        self.case_concurrency()
        log(f"measurements took {time.monotonic() - t0:.0f} s")


# --------------------------------------------------------------------------------------
# Report: results.json, BENCHMARKS.md, pull_time.png
# --------------------------------------------------------------------------------------

BEGIN, END = "<!-- BEGIN GENERATED by bench/run.py: do not edit by hand -->", "<!-- END GENERATED -->"

CASE_ORDER = ["pull-mem oci", "pull-file oci", "pull-mem compat", "pull-file compat", "build+push compat",
              "build+push compat (compressible module)", "build+push oci", "resolve", "64 pulls of 1 MiB", "baseline"]
FLOORS = {
    "pull-mem oci": "curl (floor)", "pull-file oci": "curl (floor)", "pull-mem compat": "curl (floor)",
    "pull-file compat": "curl (floor)", "resolve": "curl -I (floor)", "build+push compat": BUILDAH,
    "build+push compat (compressible module)": BUILDAH,
    "build+push oci": "oras-py push", "64 pulls of 1 MiB": "curl ×64 processes in parallel (floor)",
}


def fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def fmt_ms(x: float | None) -> str:
    return "–" if x is None else fmt_s(x / 1000)


def med_extra(samples: list[Sample], key: str) -> float | None:
    """The median of one figure kept in samples' extra (None when no sample has it)."""
    v = [x.extra[key] for x in samples if x.extra.get(key) is not None]
    return statistics.median(v) if v else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


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

    def add(target, measured, limit, kind="ratio", note=""):
        if measured is None:
            met = None
        else:
            met = measured <= limit if kind != "lt" else measured < limit
        out.append({"target": target, "measured": measured, "limit": limit, "met": met, "note": note})

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
    add("pull 50 MiB to a file, CLI vs curl, whole processes: ≤ 1.3×", ratio(medw("pull-file oci", cli, 50), medw("pull-file oci", "curl (floor)", 50)), 1.3)
    cpu_floor("pull-file oci", cli, "to a file")
    add("pull 50 MiB to a file, Python API vs skopeo copy: ≤ 0.5×", ratio(med("pull-file oci", py, 50), med("pull-file oci", "skopeo copy → oci:", 50)), 0.5)
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
    return out


def markdown(bench: Bench, meta: dict) -> str:
    res = bench.res
    m = meta["machine"]
    load = meta["load_during_run"]
    L = [BEGIN, ""]
    L.append(f"Run of {meta['date']} — `{meta['command']}` — {bench.repeats} repeats per figure, tools interleaved round by round; "
             f"figures are medians with the min–max spread.")
    L.append("")
    L.append(f"**Machine:** {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}, temporary files on "
             f"{m['tmp_filesystem']}. **Load:** 1-minute load average {m['load_at_start'][0]} at the start; during the run "
             f"(the benchmark's own processes included) median {load.get('load1_median', 0):.2f}, max "
             f"{load.get('load1_max', 0):.2f}; other engineers' compilers (cargo/rustc/…) running in "
             f"{load.get('samples_with_compilers', 0)} of {load.get('samples', 0)} samples"
             + (f" ({', '.join(load['compilers_seen'])})" if load.get("compilers_seen") else "") + "; "
             f"measurements wait for them to end (paused {meta['paused_for_compilers_s']:.0f} s in all), "
             f"{meta['samples_measured_again']} samples overlapped by them or by other busy processes were measured again, "
             f"{meta['samples_still_disturbed']} kept although disturbed.")
    L.append("")
    L.append("**Versions:** " + "; ".join(f"{k} {v}" for k, v in bench.versions.items()) + ".")
    L.append("")
    if res.skipped:
        L.append("**Not measured in this run:** " + "; ".join(f"{k}: {v}" for k, v in res.skipped.items()) + ".")
        L.append("")

    L.append("### Targets")
    L.append("")
    L.append("| target | measured | met? |")
    L.append("|---|---|---|")
    for t in meta["targets"]:
        v = t["measured"]
        if t["limit"] is None:
            shown, met = ("–" if v is None else f"{v:.2f}×"), "(no target)"
        elif v is None:
            shown, met = "not measured", "–"
        elif "RSS" in t["target"]:
            shown, met = f"{v:.1f} MiB", "yes" if t["met"] else "**NO**"
        elif "request" in t["target"]:
            shown, met = f"{int(v)} request(s)", "yes" if t["met"] else "**NO**"
        else:
            shown, met = f"{v:.2f}×", "yes" if t["met"] else "**NO**"
        L.append(f"| {t['target']} | {shown} | {met} |")
    L.append("")

    L.append("### Results")
    L.append("")
    L.append("*time* is the operation timed inside the process for libraries (Python API, C API, oras-py: "
             "`perf_counter`/`clock_gettime` around the calls, interpreter start and import excluded) and for curl "
             "(the sum of its `-w %{time_total}` per transfer), and the whole process for the other commands (skopeo, "
             "buildah, the CLI); *process* is the whole child process (or the sum of buildah's four) in every case. "
             "*peak RSS* is the child's `ru_maxrss` from `wait4` in bench/runstat.c (a process started from a tiny "
             "C program, so the benchmark's own memory is not inherited; it covers the child and the descendants it "
             "waited for, e.g. sh, curl and openssl for the verified floor), the largest over the steps for "
             "buildah and over the 64 processes for the ×64 rows (Σ: their sum). *client CPU* is the child's own "
             "user + system CPU from the same `wait4` (`ru_utime` + `ru_stime`; the whole process, start-up included, "
             "and the descendants it waited for; summed over buildah's steps and the 64 processes). *registry CPU* is "
             "the CPU the docker-registry process used from the child's start to its end, all threads (their run "
             "times from `/proc/PID/task/*/schedstat`; `results.json` also keeps utime + stime from `/proc/PID/stat`, "
             "in 10 ms steps); no timed case goes through the fault proxy, so none of its CPU is counted. Both share "
             "the machine's cores, so (client + registry CPU) / cores is the least wall time that work can take "
             "(the *CPU floor* lines under Targets). The *HTTP client floor* rows of build+push upload one fresh "
             "random blob as large as that variant's layer to a fresh repository, timed inside one Python process "
             "(`http.client`, one keep-alive connection, blob in memory and digest known before the clock starts; "
             "no build, hashing, config or manifest): once as POST + one monolithic PUT, once as POST + 4 MiB "
             "PATCHes + an empty PUT, the way wasm-image must upload (GHCR rejects bodies over 4 MiB). *× floor* "
             "compares medians with the case's floor or peer (named in the heading): a library's (or the HTTP client "
             "floor's) *time* with the floor's *time*, a command's *process* with the floor's *process*.")
    L.append("")
    cases = [c for c in CASE_ORDER if any(s.case == c for s in res.samples)]
    for case in cases:
        tools = []
        for s in res.samples:
            if s.case == case and s.tool not in tools:
                tools.append(s.tool)
        sizes = sorted({s.size_mib for s in res.samples if s.case == case}, key=lambda x: x or 0)
        L.append(f"#### {case}" + (f" (× floor: against {FLOORS[case]})" if case in FLOORS else ""))
        L.append("")
        L.append("| size | tool | time (median) | min–max | process | client CPU | registry CPU | peak RSS | × floor | ok |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for size in sizes:
            floor = FLOORS.get(case)
            fl = [x for x in res.samples if x.case == case and x.tool == floor and x.ok and x.size_mib == size]
            fmed = statistics.median(x.time_s for x in fl) if fl else None
            fwall = statistics.median(x.wall_s for x in fl) if fl else None
            for tool in tools:
                ss = [x for x in res.samples if x.case == case and x.tool == tool and x.size_mib == size]
                if not ss:
                    continue
                ok = [x for x in ss if x.ok]
                sz = f"{size:g} MiB" if size else "–"
                if not ok:
                    L.append(f"| {sz} | {tool} | failed | | | | | | | 0/{len(ss)} |")
                    continue
                t = [x.time_s for x in ok]
                med = statistics.median(t)
                # libraries against the floor's own transfer time; commands process to process
                is_lib = ok[0].op_s is not None
                r = ratio(med, fmed) if is_lib else ratio(statistics.median(x.wall_s for x in ok), fwall)
                rss = statistics.median(x.maxrss_mib for x in ok)
                rss_txt = f"{rss:.1f} MiB"
                if "rss_sum_mib" in ok[0].extra:
                    rss_txt += f" each (Σ {statistics.median(x.extra['rss_sum_mib'] for x in ok):.0f} MiB)"
                L.append(f"| {sz} | {tool} | {fmt_s(med)} | {fmt_s(min(t))}–{fmt_s(max(t))} | "
                         f"{fmt_s(statistics.median(x.wall_s for x in ok))} | {fmt_ms(med_extra(ok, 'client_cpu_ms'))} | "
                         f"{fmt_ms(med_extra(ok, 'registry_cpu_ms'))} | {rss_txt} | "
                         f"{'' if r is None or tool == floor else f'{r:.2f}×'} | {len(ok)}/{len(ss)} |")
        L.append("")
    if res.requests:
        L.append("#### Requests per operation (counted by the test bed's fault proxy, 1 MiB oci image)")
        L.append("")
        L.append("| operation | tool | requests | which |")
        L.append("|---|---|---|---|")
        for case, tools in res.requests.items():
            for tool, r in tools.items():
                which = "; ".join(re.sub(r"sha256:[0-9a-f]{64}", "sha256:…", q) for q in r["requests"])
                L.append(f"| {case} | {tool} | {r['count']} | {which} |")
        L.append("")
    if res.notes:
        L.append("Notes from the run: " + "; ".join(res.notes) + ".")
        L.append("")
    L.append("Raw samples: `bench/results.json`. Plot: `bench/pull_time.png`.")
    L.append("")
    L.append(END)
    return "\n".join(L)


def write_benchmarks_md(text: str, path: Path) -> None:
    if path.exists():
        old = path.read_text()
        if BEGIN in old and END in old:
            pre, rest = old.split(BEGIN, 1)
            _, post = rest.split(END, 1)
            path.write_text(pre + text + post)
            return
    path.write_text("# Benchmarks\n\nHow to run: `python3 bench/run.py [--quick] [--repeats N]`.\n\n" + text + "\n")


def plot(res: Results, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no plot"
    cases = ("pull-mem oci", "pull-file oci", "pull-mem compat", "pull-file compat")
    tools: list[str] = []
    for s in res.samples:
        if s.case in cases and s.tool not in tools:
            tools.append(s.tool)
    color = {t: f"C{k % 10}" for k, t in enumerate(tools)}  # one colour per tool in both panels
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.5), sharey=True)
    handles = {}
    for ax, mode, title in ((axes[0], "pull-mem", "pull by tag into memory"), (axes[1], "pull-file", "pull by tag to a file")):
        for variant, style in (("oci", "-o"), ("compat", ":s")):
            c = f"{mode} {variant}"
            for tool in tools:
                pts = []
                for size in sorted({s.size_mib for s in res.samples if s.case == c and s.tool == tool and s.ok}):
                    t = [s.time_s for s in res.samples if s.case == c and s.tool == tool and s.ok and s.size_mib == size]
                    pts.append((size, statistics.median(t), min(t), max(t)))
                if not pts:
                    continue
                err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
                h = ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=err, fmt=style, color=color[tool], capsize=3)
                if variant == "oci":
                    handles.setdefault(tool, h)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("module size (MiB)")
        ax.set_title(f"{title}\n(oci variant: solid, compat: dotted)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("time (s): median, bars min–max")
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def replot(out_dir: Path) -> int:
    """Draws bench/pull_time.png again from bench/results.json (no measuring)."""
    doc = json.loads((out_dir / "results.json").read_text())
    res = Results()
    res.samples = [Sample(**s) for s in doc["samples"]]
    problem = plot(res, out_dir / "pull_time.png")
    log(problem or f"drew {out_dir / 'pull_time.png'}")
    return 1 if problem else 0


# --------------------------------------------------------------------------------------


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
    ap.add_argument("--only", action="append", help="run only cases whose name contains this (repeatable)")
    ap.add_argument("--wait-idle", type=float, default=0, help="wait up to this many seconds for an idle machine")
    ap.add_argument("--no-pause", action="store_true",
                    help="measure even while other compilers (cargo, rustc, cc1, ld…) run; default: wait for them")
    ap.add_argument("--max-pause", type=float, default=900,
                    help="longest total wait for other compilers during the run (seconds, default 900)")
    ap.add_argument("--out-dir", default=str(HERE), help="where results.json and pull_time.png go (default: bench/)")
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="the markdown file to update ('-' for none)")
    ap.add_argument("--replot", action="store_true", help="only draw pull_time.png again from results.json")
    args = ap.parse_args(argv)
    if args.replot:
        return replot(Path(args.out_dir))

    # Ctrl-C must work even when started from a script that ignores SIGINT for its
    # background jobs (Python keeps an inherited SIG_IGN otherwise).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

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
        build_runstat(work)
        bench.run()
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
        "command": "python3 bench/run.py" + (" --quick" if args.quick else "") + (f" --repeats {args.repeats}" if args.repeats else ""),
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
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    problem = plot(bench.res, out_dir / "pull_time.png")
    if problem:
        bench.res.notes.append(problem)
    if args.markdown != "-":
        write_benchmarks_md(markdown(bench, meta), Path(args.markdown))
    log(f"done in {meta['duration_s']:.0f} s: {out_dir / 'results.json'}, {out_dir / 'pull_time.png'}, {args.markdown}")
    for t in meta["targets"]:
        v = t["measured"]
        flag = "    " if t["limit"] is None else "MET " if t["met"] else "----" if t["met"] is None else "MISS"
        log(f"  {flag} {t['target']}: {'not measured' if v is None else round(v, 3)}")
    return 0


def cleanup(bench: Bench, work: Path) -> None:
    """Ends every child still running, stops the servers, removes buildah's containers and
    the whole work folder. Safe to call twice; a second Ctrl-C during it is ignored."""
    global _STOPPING
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _LIVE_LOCK:
            _STOPPING = True
            live = list(_LIVE)
        for p in live:
            _kill(p)
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
        for name in ("scratch",):
            pass
    finally:
        signal.signal(signal.SIGINT, old)


if __name__ == "__main__":
    sys.exit(main())
