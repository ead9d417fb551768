"""The machine, and whether someone else is using it: its facts for the report, foreign
compilers, CPU used by processes outside the benchmark, hypervisor steal time."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness.common import log
from harness.cpu import CLK_TCK
from harness.processes import clean_env, run_quiet

BUSY_NAMES = {"cargo", "rustc", "cc1", "cc1plus", "ld", "ld.lld", "lld", "maturin", "go", "compile", "link"}


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
