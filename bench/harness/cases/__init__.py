"""The case families, and the one registry of them that the run and the report read.

A family is a module with
  NAME   what `--cases` selects it by;
  CASES  {case name: the tool its "× floor" column compares with, or None}, in the
         order its tables appear in BENCHMARKS.md;
  run(bench)  measures its cases (bench.run_rounds / bench.sample; see harness.bench).
Adding one: a new module here and one line below.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from harness.cases import baseline, concurrency, pull, push, resolve


@dataclass(frozen=True)
class Family:
    module: ModuleType
    table_rank: int  # where its tables go in BENCHMARKS.md, lowest first

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
    Family(baseline, table_rank=50),
    Family(resolve, table_rank=30),
    Family(pull, table_rank=10),
    Family(push, table_rank=20),
    Family(concurrency, table_rank=40),
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
