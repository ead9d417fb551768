"""One benchmark run, built on its state (harness.state): how every case measures (one
sample from one or more children, tools interleaved round by round, each measurement
taken while nobody else uses the CPU), and the whole run (setup, then the case
families)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from harness import fixtures, servers, tools
from harness.common import log
from harness.machine import busy_processes, cpu_snapshot, foreign_cpu_s, steal_s
from harness.processes import Proc, client_cpu, server_cpu
from harness.results import Sample
from harness.state import RunState


class Bench(RunState):
    """The run's state, and how its cases measure and record."""

    def __init__(self, args, work: Path):
        super().__init__(args, work)
        self.paused_s = 0.0  # waited for other engineers' compilers, in all
        self.quiet_needed = False  # the last measurement was disturbed: wait for a quiet second first

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

    # -- rounds: every tool once per round, each measurement undisturbed -------------------
    def run_rounds(self, label: str, runners: list, repeats: int) -> None:
        """runners: (name, the tool it needs, run(repeat)) each."""
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

    # -- the whole run ------------------------------------------------------------------------
    def run(self, families: list) -> None:
        """Sets up (tools, servers, modules, fixture images, probes), then runs the case
        families given (harness.cases.FAMILIES, or those --cases picked) in their order."""
        tools.detect_tools(self)
        for need in ("docker-registry",):
            if self.tools[need]:
                raise SystemExit(f"{self.tools[need]}: see tests/support/README.md (apt-get install docker-registry)")
        servers.start_servers(self)
        self.containers_env()
        fixtures.make_modules(self)
        fixtures.push_fixtures(self)
        tools.probe_python_api(self)
        tools.probe_cli(self)
        tools.build_c(self)
        for k, why in self.tools.items():
            if why:
                self.res.skipped[k] = why
                log(f"skipping {k}: {why}")
        t0 = time.monotonic()
        for family in families:
            family.run(self)
        log(f"measurements took {time.monotonic() - t0:.0f} s")
