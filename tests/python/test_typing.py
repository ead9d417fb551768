"""Types: the stubs match the native module, and typed code (ours and the README's)
passes `mypy --strict`. The README's Python examples also run, as documentation tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from conftest import ROOT

HERE = Path(__file__).resolve().parent
README = ROOT / "python" / "README.md"


def readme_examples() -> List[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def mypy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", os.devnull, "--no-error-summary", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_stubs_match_the_native_module(tmp_path: Path) -> None:
    # Run outside the repository so the installed package is the one checked.
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "wasm_image", "--mypy-config-file", os.devnull],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_and_typed_usage_pass_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "typed_usage.py").write_text((HERE / "typed_usage.py").read_text())
    done = mypy("typed_usage.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = mypy("-p", "wasm_image", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    examples = readme_examples()
    assert len(examples) >= 4
    for i, code in enumerate(examples):
        (tmp_path / f"readme_example_{i}.py").write_text(code)
    done = mypy(*(f"readme_example_{i}.py" for i in range(len(examples))), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_examples_run(tmp_path: Path) -> None:
    for i, code in enumerate(readme_examples()):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 0, f"README example {i} failed:\n{code}\n{done.stderr}"
    assert (tmp_path / "filter.wasm").is_file()
    assert (tmp_path / "add-header.tar").is_file()


@pytest.mark.parametrize("name", ["py.typed", "_native.pyi"])
def test_typing_files_are_installed(name: str) -> None:
    import wasm_image

    assert (Path(wasm_image.__file__).parent / name).is_file()
