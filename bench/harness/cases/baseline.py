"""A baseline: the interpreter and the import alone (wasm_image, oras.client)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.processes import measure

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "baseline"
CASES = {"baseline": None}  # case -> the tool its × floor column compares with (none)


def run(b: Bench) -> None:
    if not b.want("baseline"):
        return
    runners = []
    if b.usable("py"):
        runners.append(("py", "py", lambda i: b.sample("baseline", "python3 + import wasm_image", None, i,
                                                       [measure(b.pyworker("noop", {}), env=b.py_env())], library=True)))
    if b.usable("oras-py"):
        runners.append(("oras", "oras-py", lambda i: b.sample("baseline", "python3 + import oras.client", None, i,
                                                              [measure(b.pyworker("noop_oras", {}), env=b.py_env())], library=True)))
    b.run_rounds("baseline", runners, b.repeats)
