"""One version: the Cargo workspace version is the only place it is written, and every
face and artifact reports that same version."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, run


def test_every_crate_takes_the_workspace_version(version: str) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    for member in members:
        package = tomllib.loads((ROOT / member / "Cargo.toml").read_text())["package"]
        assert package["version"] == {"workspace": True}, f"{member}/Cargo.toml writes its own version"
    assert "version" not in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_header_macros(version: str) -> None:
    major, minor, patch = version.split(".")
    text = (ROOT / "include" / "wasm_image.h").read_text()
    assert f"#define WASM_IMAGE_VERSION_MAJOR {major}\n" in text
    assert f"#define WASM_IMAGE_VERSION_MINOR {minor}\n" in text
    assert f"#define WASM_IMAGE_VERSION_PATCH {patch}\n" in text
    assert f'#define WASM_IMAGE_VERSION_STRING "{version}"\n' in text


def test_python_package_and_command_line(wheel_venv: Path, venv_env: dict[str, str], version: str,
                                         wheel: Path, sdist: Path, tmp_path: Path) -> None:
    python = str(wheel_venv / "bin" / "python")
    assert run([python, "-c", "import wasm_image; print(wasm_image.__version__)"],
               env=venv_env, cwd=tmp_path).stdout.strip() == version
    assert run([str(wheel_venv / "bin" / "wasm-image"), "--version"],
               env=venv_env, cwd=tmp_path).stdout.strip() == f"wasm-image {version}"
    assert run([python, "-m", "pip", "show", "wasm-image"], env=venv_env).stdout.count(f"Version: {version}\n") == 1
    with tarfile.open(sdist) as tar:
        pkg_info = tar.extractfile(f"wasm_image-{version}/PKG-INFO").read().decode()
    assert f"\nVersion: {version}\n" in pkg_info
    with zipfile.ZipFile(wheel) as whl:
        assert f"wasm_image-{version}.dist-info/METADATA" in whl.namelist()


def test_c_sdk_pkg_config_cmake_and_runtime(sdk: Path, sdk_tarball: Path, version: str, user_env: dict[str, str],
                                            tmp_path: Path) -> None:
    assert sdk_tarball.name == f"wasm-image-c-{version}-linux-x86_64.tar.gz"
    env = {**user_env, "PKG_CONFIG_PATH": str(sdk / "lib" / "pkgconfig")}
    assert run(["pkg-config", "--modversion", "wasmimage"], env=env).stdout.strip() == version
    static_env = {**user_env, "PKG_CONFIG_PATH": str(sdk / "lib" / "static" / "pkgconfig")}
    assert run(["pkg-config", "--modversion", "wasmimage"], env=static_env).stdout.strip() == version

    # CMake: an exact request for this version is met, and the package says which it is.
    project = tmp_path / "cmake"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(v LANGUAGES C)\n"
        f"find_package(WasmImage {version} EXACT REQUIRED CONFIG)\n"
        'message(STATUS "WasmImage_VERSION=${WasmImage_VERSION}")\n'
    )
    configured = run(["cmake", "-S", str(project), "-B", str(tmp_path / "cmake-build"),
                      f"-DCMAKE_PREFIX_PATH={sdk}"], env=user_env).stdout
    assert f"WasmImage_VERSION={version}" in configured

    # The library's own answer, and the header's, from one program built against the SDK.
    (tmp_path / "v.c").write_text(
        '#include <stdio.h>\n#include <wasm_image.h>\n'
        'int main(void) { printf("%s %s\\n", wasm_image_version(), WASM_IMAGE_VERSION_STRING); return 0; }\n'
    )
    flags = run(["pkg-config", "--cflags", "--libs", "wasmimage"], env=env).stdout.split()
    run(["cc", str(tmp_path / "v.c"), *flags, f"-Wl,-rpath,{sdk / 'lib'}", "-o", str(tmp_path / "v")], env=env)
    assert run([str(tmp_path / "v")], env=user_env).stdout.split() == [version, version]


def test_go_package(sdk: Path, version: str, tmp_path: Path) -> None:
    go_mod = ROOT / "go" / "go.mod"
    if not go_mod.exists():
        pytest.skip("no Go package (go/) in this tree")
    go = shutil.which("go")
    if go is None:
        pytest.skip("the go command is not installed")
    module = re.search(r"^module (\S+)$", go_mod.read_text(), re.M).group(1)
    app = tmp_path / "app"
    app.mkdir()
    (app / "go.mod").write_text(f"module example.com/versioncheck\n\ngo 1.22\n\nrequire {module} v0.0.0\n\n"
                                f"replace {module} => {ROOT / 'go'}\n")
    (app / "main.go").write_text(f'package main\n\nimport (\n\t"fmt"\n\n\twasmimage "{module}"\n)\n\n'
                                 "func main() { fmt.Println(wasmimage.Version()) }\n")
    # As a Go user links it: the SDK's static pkg-config view, the library inside the binary.
    # Go's build cache does not notice a new -L path or library (the path is recorded in
    # the cached package, which the Go suite built against its own prefix): a define
    # naming both gives this SDK's build a key of its own.
    library = sdk / "lib" / "static" / "libwasmimage.a"
    build_id = hashlib.sha256(str(sdk).encode() + library.read_bytes()).hexdigest()[:16]
    env = {**os.environ, "PKG_CONFIG_PATH": str(sdk / "lib" / "static" / "pkgconfig"),
           "CGO_ENABLED": "1", "GOFLAGS": "-mod=mod",
           "CGO_CFLAGS": f"-O2 -g -DWASMIMAGE_LIBRARY_BUILD={build_id}"}
    run([go, "mod", "tidy"], cwd=app, env=env)
    done = subprocess.run([go, "run", "."], cwd=app, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == version


def test_changelog_names_no_other_version(version: str) -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings, "CHANGELOG.md has no release sections"
    assert headings[0] in ("Unreleased", version), f"the newest section is {headings[0]}, the version {version}"
    released = [tuple(map(int, h.split("."))) for h in headings if h != "Unreleased"]
    assert all(v <= tuple(map(int, version.split("."))) for v in released), released
    assert released == sorted(released, reverse=True), "sections run newest first"
