"""The PEP 517 build backend of the wasm-image package: maturin's, with the native
``wasm-image`` command put in the wheel.

maturin builds the extension module, but it cannot also build a crate's binary into the
same wheel (its bindings are either pyo3 or bin). It does ship whatever the wheel-data
folder holds, and pip installs ``<name>.data/scripts/*`` as commands beside the Python
that installs the wheel. So before maturin builds a wheel, this backend builds the
``wasm-image`` binary (crate ``wasm-image-cli``, maturin's profile) with cargo and copies
it into that folder, ``python/wasm_image.data/scripts/`` (made here, never committed).
``WASM_IMAGE_CLI_BINARY=PATH`` ships a binary built elsewhere instead: the release build
links it against glibc 2.28 as it does the extension.

Everything else (metadata, the sdist) is maturin's; maturin only asks that the folder
exists, which it then does (empty until a wheel is built).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import maturin
from maturin import (  # noqa: F401  (the hooks a frontend calls, re-exported)
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "python" / "wasm_image.data" / "scripts"
COMMAND = "wasm-image"


def _profile() -> str:
    """The cargo profile maturin is asked for (``MATURIN_PEP517_ARGS="--profile dev"``),
    so the binary and the extension share one build of core; release by default."""
    args = os.environ.get("MATURIN_PEP517_ARGS", "").split()
    for i, arg in enumerate(args):
        if arg == "--profile" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
    return "release"


def _cargo_build() -> Path:
    """Builds the binary; returns where cargo put it (it knows its target folder)."""
    cargo = os.environ.get("CARGO", "cargo")
    argv = [cargo, "build", "--profile", _profile(), "-p", "wasm-image-cli", "--bin", COMMAND,
            "--message-format=json-render-diagnostics"]
    if (ROOT / "Cargo.lock").is_file():
        argv.insert(2, "--locked")
    print(f"wasm-image build backend: {' '.join(argv)}", file=sys.stderr, flush=True)
    # maturin's environment: with no cargo on PATH it installs Rust for the build.
    env = getattr(maturin, "_get_env", lambda: None)()
    done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True)
    for line in done.stdout.splitlines():
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == COMMAND:
            return Path(message["executable"])
    raise RuntimeError(f"cargo built no {COMMAND} executable")


def stage_cli() -> Path:
    """Puts the command in the wheel-data folder; returns its path there."""
    given = os.environ.get("WASM_IMAGE_CLI_BINARY")
    built = Path(given) if given else _cargo_build()
    if not built.is_file():
        raise FileNotFoundError(f"WASM_IMAGE_CLI_BINARY={given}: no such file")
    _data_folder()
    staged = SCRIPTS / COMMAND
    partial = SCRIPTS / f".{COMMAND}.partial"
    shutil.copyfile(built, partial)
    partial.chmod(0o755)
    os.replace(partial, staged)
    return staged


def _data_folder() -> None:
    SCRIPTS.mkdir(parents=True, exist_ok=True)


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[Dict[str, Any]] = None) -> str:
    _data_folder()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    _data_folder()
    return maturin.build_sdist(sdist_directory, config_settings)


def build_wheel(wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    stage_cli()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    stage_cli()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


if __name__ == "__main__":
    # `python python/build_backend/wasm_image_backend.py`: stage the command for a
    # direct `maturin build` (the release build does this with its own binary).
    print(stage_cli())
