"""Fixtures of the release tests: the artifacts release/build.sh made, installed the way a
user installs them, away from the source tree and with no Rust toolchain on PATH.

``$WASM_IMAGE_RELEASE_DIR`` names the folder release/build.sh wrote
(tests/release/run.sh sets it); without it every test here is skipped. Registry checks
use the shared test bed (``$WASM_IMAGE_TESTBED``) when it runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"
sys.path.insert(0, str(SUPPORT))
sys.path.insert(0, str(ROOT / "release"))

from testbed import Testbed  # noqa: E402


def workspace_version() -> str:
    """The one version: [workspace.package] version of the root Cargo.toml."""
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Runs a command; a failure shows its output."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 600)
    done = subprocess.run(cmd, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def path_without_rust() -> str:
    """$PATH less every folder that holds cargo or rustc: what a user without Rust has."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any(Path(d, tool).exists() for tool in ("cargo", "rustc", "rustup"))]
    path = os.pathsep.join(keep)
    assert shutil.which("cargo", path=path) is None
    return path


@pytest.fixture(scope="session")
def version() -> str:
    return workspace_version()


@pytest.fixture(scope="session")
def release_dir() -> Path:
    value = os.environ.get("WASM_IMAGE_RELEASE_DIR")
    if not value:
        pytest.skip("WASM_IMAGE_RELEASE_DIR is unset: tests/release/run.sh builds the release and sets it")
    return Path(value)


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {[p.name for p in found]}"
    return found[0]


@pytest.fixture(scope="session")
def wheel(release_dir: Path, version: str) -> Path:
    return _one(release_dir, f"wasm_image-{version}-*.whl")


@pytest.fixture(scope="session")
def sdist(release_dir: Path, version: str) -> Path:
    return _one(release_dir, f"wasm_image-{version}.tar.gz")


@pytest.fixture(scope="session")
def sdk_tarball(release_dir: Path, version: str) -> Path:
    return _one(release_dir, f"wasm-image-c-{version}-linux-x86_64.tar.gz")


@pytest.fixture(scope="session")
def user_env() -> dict[str, str]:
    """The environment of a user with no Rust toolchain and no checkout: no cargo on
    PATH, no Python or C search paths pointing anywhere."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "CPATH", "C_INCLUDE_PATH", "LIBRARY_PATH", "LD_LIBRARY_PATH",
                        "PKG_CONFIG_PATH", "CMAKE_PREFIX_PATH", "VIRTUAL_ENV")}
    env["PATH"] = path_without_rust()
    return env


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path, user_env: dict[str, str]) -> Path:
    """A fresh virtual environment with only the wheel installed, from the file, offline."""
    home = tmp_path_factory.mktemp("user") / "venv"
    venv.create(home, with_pip=True)
    run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
         "--disable-pip-version-check", str(wheel)], env=user_env, cwd=home.parent)
    return home


@pytest.fixture(scope="session")
def venv_env(wheel_venv: Path, user_env: dict[str, str]) -> dict[str, str]:
    """user_env with the virtual environment activated."""
    return {**user_env, "VIRTUAL_ENV": str(wheel_venv),
            "PATH": f"{wheel_venv / 'bin'}{os.pathsep}{user_env['PATH']}"}


@pytest.fixture(scope="session")
def sdk(tmp_path_factory: pytest.TempPathFactory, sdk_tarball: Path) -> Path:
    """The C SDK unpacked into a fresh folder, as a user unpacks it."""
    dest = tmp_path_factory.mktemp("sdk-unpacked")
    with tarfile.open(sdk_tarball) as tar:
        tops = {m.name.split("/")[0] for m in tar.getmembers()}
        assert tops == {sdk_tarball.name.removesuffix(".tar.gz")}, f"the tarball's top folders: {tops}"
        tar.extractall(dest, filter="data")
    return dest / sdk_tarball.name.removesuffix(".tar.gz")


@pytest.fixture(scope="session")
def testbed() -> Testbed | None:
    return Testbed.from_env()


@pytest.fixture(scope="session")
def module_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test plugin compiled from tests/support/fixtures/plugin.wat."""
    import wasmtime

    path = tmp_path_factory.mktemp("module") / "filter.wasm"
    path.write_bytes(wasmtime.wat2wasm((SUPPORT / "fixtures" / "plugin.wat").read_text()))
    return path


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory, wheel_venv: Path, venv_env: dict[str, str],
           module_file: Path) -> Iterator[str]:
    """An OCI layout holding the test plugin, made by the installed wheel's command line."""
    store = tmp_path_factory.mktemp("layout") / "store"
    location = f"oci:{store}:add-header"
    run([str(wheel_venv / "bin" / "wasm-image"), "build", str(module_file), "-t", location,
         "--root-id", "add_header_root_id"], env=venv_env)
    yield location


def glibc_versions(binary: Path) -> list[tuple[int, ...]]:
    """Every GLIBC_x.y symbol version a binary asks for."""
    out = run(["objdump", "-T", str(binary)]).stdout
    return sorted({tuple(int(n) for n in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)})


def section_names(binary: Path) -> set[str]:
    out = run(["readelf", "-S", "-W", str(binary)]).stdout
    return set(re.findall(r"\]\s+(\.\S+)", out))
