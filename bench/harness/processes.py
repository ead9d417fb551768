"""Children: every one is tracked so that cleanup can end exactly those; measured ones
run under bench/runstat.c for their own peak RSS and CPU, which (with the servers' CPU
meanwhile) is summed here over the children of one sample."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import testbed
from harness.common import BENCH
from harness.cpu import server_marks, servers_used_ms

_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = False  # set on Ctrl-C / SIGTERM: no new child is started after that
_SPAWNING = False  # the main thread is between Popen and recording the child
_PENDING: int | None = None

RUNSTAT: str | None = None  # bench/runstat.c, compiled into the work folder
RUNSTAT_DIR: str | None = None  # its reports go there too

# The environment of every child: no REGISTRY_* settings, no proxy for loopback.
clean_env = testbed.child_env


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


def kill_all_children() -> None:
    """Cleanup: no child is started any more, and every one still running is killed
    (its whole process group)."""
    global _STOPPING
    with _LIVE_LOCK:
        _STOPPING = True
        live = list(_LIVE)
    for p in live:
        _kill(p)


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
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(BENCH / "runstat.c")], check=True, capture_output=True)
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

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited: {self.logfile.read_text(errors='replace')[-1500:]}")

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Until GET url answers 200 (the test bed's poll), failing early if it died."""
        testbed.wait_http(url, (200,), check_alive=self.check_alive, name=self.name, timeout=timeout)

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
