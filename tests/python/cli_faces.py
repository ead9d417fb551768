"""The two faces of the one command line: the native ``wasm-image`` binary and
``python -m wasm_image`` (the same Rust code inside the extension). CLI tests run
against both through the ``cli_command`` fixture of conftest.

The binary is ``$WASM_IMAGE_CLI`` when set, else the one pip installed beside this
Python. With ``$WASM_IMAGE_REQUIRE_NATIVE_CLI=1`` (CI) a missing binary fails the
tests that need it; otherwise they are skipped.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import List, Optional

NATIVE = "native"
PYTHON = "python -m"
FACES = [NATIVE, PYTHON]


def _is_native(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def native_binary() -> Optional[str]:
    given = os.environ.get("WASM_IMAGE_CLI")
    if given:
        return given
    candidates = [Path(sysconfig.get_path("scripts")) / "wasm-image",
                  Path(sys.executable).parent / "wasm-image"]
    try:
        candidates.append(Path(sysconfig.get_path("scripts", f"{os.name}_user")) / "wasm-image")
    except KeyError:  # pragma: no cover - no user scheme on this platform
        pass
    found = shutil.which("wasm-image")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and _is_native(candidate):
            return str(candidate)
    return None


def command(face: str) -> List[str]:
    """The argv prefix of a face; raises LookupError when the binary is not installed."""
    if face == PYTHON:
        return [sys.executable, "-m", "wasm_image"]
    binary = native_binary()
    if binary is None:
        raise LookupError("the native wasm-image binary is not installed beside this Python "
                          "(pip install . puts it there) and $WASM_IMAGE_CLI is unset")
    return [binary]


def required() -> bool:
    return os.environ.get("WASM_IMAGE_REQUIRE_NATIVE_CLI") == "1"
