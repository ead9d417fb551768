"""CPU accounting: what the measured children used themselves (from wait4), and what
the servers (registry, fault proxy) used while each child ran (from /proc)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.processes import Proc

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
