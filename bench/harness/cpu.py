"""The servers' CPU (registry, fault proxy): marks of it from /proc and what they used
between two marks. What the measured children used themselves (from wait4) is summed
beside their Proc, in harness.processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
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

