"""The sdist is complete: unpacked away from the checkout, pip builds a working wheel from
it (what `pip install wasm-image` does where no wheel fits)."""

from __future__ import annotations

import os
import shutil
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, run


def test_sdist_contents(sdist: Path, version: str) -> None:
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("pyproject.toml", "Cargo.toml", "Cargo.lock", "core/Cargo.toml", "core/src/lib.rs",
                 "python/Cargo.toml", "python/src/lib.rs", "python/wasm_image/__init__.py",
                 "python/wasm_image/_native.pyi", "python/wasm_image/py.typed", "PKG-INFO",
                 "cli/Cargo.toml", "cli/src/main.rs", "python/build_backend/wasm_image_backend.py"):
        assert name in names, f"{name} missing from the sdist"


def test_sdist_builds_a_working_wheel(sdist: Path, tmp_path: Path, version: str) -> None:
    tools_python = os.environ.get("WASM_IMAGE_TOOLS_PYTHON")
    if not tools_python or shutil.which("cargo") is None:
        pytest.skip("building from source needs maturin (release/tools.sh sets WASM_IMAGE_TOOLS_PYTHON) and cargo")
    build_python = Path(tools_python)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    source = tmp_path / f"wasm_image-{version}"
    env = dict(os.environ)
    # The dev profile and the checkout's target folder: compiled dependencies are reused,
    # and only the crates unpacked from the sdist are built (the release build of the
    # same sources is the wheel's, tested elsewhere).
    env.setdefault("CARGO_TARGET_DIR", str(ROOT / "target"))
    env["MATURIN_PEP517_ARGS"] = "--profile dev"
    run([str(build_python), "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(tmp_path / "wheels"), str(source)], env=env, cwd=tmp_path)
    built = list((tmp_path / "wheels").glob(f"wasm_image-{version}-*.whl"))
    assert len(built) == 1, built
    with zipfile.ZipFile(built[0]) as whl:  # the native command, built from the sdist's cli/
        assert whl.read(f"wasm_image-{version}.data/scripts/wasm-image")[:4] == b"\x7fELF"
    home = tmp_path / "venv"
    venv.create(home, with_pip=True)
    run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(built[0])])
    code = ("import wasm_image; img = wasm_image.build(bytes.fromhex('0061736d01000000')); "
            "print(wasm_image.__version__, img.variant)")
    assert run([str(home / "bin" / "python"), "-c", code], cwd=tmp_path).stdout.split() == [version, "oci"]
