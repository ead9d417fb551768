"""Samples (one measured run of one tool), the results of a run, and the statistics
the report takes from them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from harness.common import log


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

    @classmethod
    def from_json(cls, doc: dict) -> "Results":
        """The results kept in a results.json."""
        res = cls()
        res.samples = [Sample(**s) for s in doc["samples"]]
        res.skipped = doc.get("skipped", {})
        res.requests = doc.get("requests", {})
        res.notes = doc.get("notes", [])
        res.disturbed = doc.get("samples_measured_again", 0)
        return res

    def add(self, s: Sample) -> None:
        self.samples.append(s)
        status = "ok" if s.ok else f"FAILED: {(s.error or '')[:300]}"
        t = f"{s.time_s:.3f}s" if s.time_s is not None else "-"
        cpu = f"cpu {s.extra.get('client_cpu_ms', 0):6.0f}+{s.extra.get('registry_cpu_ms', 0):4.0f} ms"
        log(f"  {s.case:<24} {s.tool:<26} #{s.repeat} {t:>9} {s.maxrss_mib:7.1f} MiB {cpu}  {status}")


def med_extra(samples: list[Sample], key: str) -> float | None:
    """The median of one figure kept in samples' extra (None when no sample has it)."""
    v = [x.extra[key] for x in samples if x.extra.get(key) is not None]
    return statistics.median(v) if v else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
