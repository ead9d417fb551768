"""The case families, and the one registry of them that the run and the report read.

A family is a module with
  NAME        what `--cases` selects it by;
  CASES       {case name: the tool its "× floor" column compares with, or None}, in the
              order of its tables in BENCHMARKS.md;
  run(bench)  measures its cases: bench.run_rounds(label, [(name, tool needed, run(i))],
              bench.repeats), each run(i) measuring children with harness.processes.measure
              and recording them with bench.sample (both in harness.bench; what the run
              knows, as host, sizes, fixture digests, pyworker, scratch files,
              usable/want, is in harness.state).
A family imports harness.bench, never the other way round: Bench.run is handed the
families to run.
Adding one: the module (here, or beside bench/run.py) and one line in FAMILIES.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType


@dataclass(frozen=True)
class Family:
    module_name: str  # imported at once, so a broken family fails before anything runs
    table_rank: int  # where its tables go in BENCHMARKS.md, lowest first
    module: ModuleType = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "module", importlib.import_module(self.module_name))

    @property
    def name(self) -> str:
        return self.module.NAME

    @property
    def cases(self) -> dict:
        return self.module.CASES

    def run(self, bench) -> None:
        self.module.run(bench)


# Run in this order (resolve records its requests before pull does, and the requests
# table keeps that order); table_rank orders the report's tables on its own.
FAMILIES = [
    Family("harness.cases.baseline", table_rank=50),
    Family("harness.cases.resolve", table_rank=30),
    Family("harness.cases.pull", table_rank=10),
    Family("harness.cases.push", table_rank=20),
    Family("harness.cases.concurrency", table_rank=40),
    Family("harness.cases.go_face", table_rank=60),
    Family("harness.cases.cache", table_rank=70),
    Family("harness.cases.signing", table_rank=80),
]


def by_name(names: list[str]) -> list[Family]:
    """The families named (in run order); ValueError names any unknown one."""
    known = {f.name for f in FAMILIES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown case famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} "
                         f"(known: {', '.join(f.name for f in FAMILIES)})")
    return [f for f in FAMILIES if f.name in names]


def case_order() -> list[str]:
    """Every case, in the order of the report's tables."""
    return [case for f in sorted(FAMILIES, key=lambda f: f.table_rank) for case in f.cases]


def floors() -> dict[str, str]:
    """Case -> the tool its "× floor" column compares with."""
    return {case: floor for f in FAMILIES for case, floor in f.cases.items() if floor}
