"""The C SDK as a C/C++ team gets it: unpacked into a fresh folder, examples/pull.c built
with pkg-config and with CMake against it (shared and static), without the source tree
and without cargo on PATH, and the programs run."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, glibc_versions, run, section_names


def test_sdk_layout(sdk: Path, version: str) -> None:
    major = version.split(".")[0]
    lib = sdk / "lib"
    for path in ("README.md", "include/wasm_image.h", f"lib/libwasmimage.so.{version}", "lib/libwasmimage.a",
                 "lib/pkgconfig/wasmimage.pc", "lib/cmake/WasmImage/WasmImageConfig.cmake",
                 "lib/cmake/WasmImage/WasmImageConfigVersion.cmake", "lib/static/pkgconfig/wasmimage.pc",
                 "share/wasm-image/examples/pull.c", "share/wasm-image/examples/CMakeLists.txt",
                 "share/doc/wasm-image/CHANGELOG.md", "share/doc/wasm-image/c-api.md"):
        assert (sdk / path).is_file(), f"{path} missing from the SDK"
    assert os.readlink(lib / f"libwasmimage.so.{major}") == f"libwasmimage.so.{version}"
    assert os.readlink(lib / "libwasmimage.so") == f"libwasmimage.so.{major}"
    assert os.readlink(lib / "static" / "libwasmimage.a") == "../libwasmimage.a"
    assert (sdk / "include" / "wasm_image.h").read_bytes() == (ROOT / "include" / "wasm_image.h").read_bytes()
    assert "@VERSION@" not in (sdk / "README.md").read_text()


def test_shared_library_soname_strip_and_glibc_floor(sdk: Path, version: str) -> None:
    so = sdk / "lib" / f"libwasmimage.so.{version}"
    dynamic = run(["readelf", "-d", str(so)]).stdout
    assert f"Library soname: [libwasmimage.so.{version.split('.')[0]}]" in dynamic
    assert "RPATH" not in dynamic and "RUNPATH" not in dynamic
    sections = section_names(so)
    assert ".symtab" not in sections and not any(s.startswith(".debug") for s in sections), sections
    assert max(glibc_versions(so)) <= (2, 28)
    archive_sections = run(["objdump", "-h", str(sdk / "lib" / "libwasmimage.a")]).stdout
    assert ".debug_info" not in archive_sections


@pytest.fixture()
def project(tmp_path: Path, sdk: Path) -> Path:
    """The SDK's examples copied into a project folder of the user's own."""
    dest = tmp_path / "app"
    shutil.copytree(sdk / "share" / "wasm-image" / "examples", dest)
    return dest


def c_env(user_env: dict[str, str], pkgconfig: Path | None = None) -> dict[str, str]:
    env = dict(user_env)
    if pkgconfig is not None:
        env["PKG_CONFIG_PATH"] = str(pkgconfig)
    return env


def pull_and_check(program: Path, location: str, tmp_path: Path, env: dict[str, str],
                   insecure: str | None = None) -> bytes:
    """Runs the example against a location and returns the module it wrote."""
    out = tmp_path / f"{program.name}-{hashlib.sha256(location.encode()).hexdigest()[:8]}.wasm"
    args = [str(program)] + (["--insecure", insecure] if insecure else []) + [location, str(out)]
    printed = run(args, env=env, cwd=tmp_path).stdout
    assert "sha256:" in printed, printed
    return out.read_bytes()


def links_libwasmimage_dynamically(program: Path, env: dict[str, str]) -> bool:
    return "libwasmimage.so" in run(["ldd", str(program)], env=env).stdout


def assert_no_source_tree(text: str) -> None:
    assert str(ROOT) not in text, f"the build refers to the source tree: {text}"


def test_pkg_config_shared(sdk: Path, project: Path, user_env, layout: str, module_file: Path,
                           tmp_path: Path) -> None:
    env = c_env(user_env, sdk / "lib" / "pkgconfig")
    flags = run(["pkg-config", "--cflags", "--libs", "wasmimage"], env=env).stdout.split()
    assert_no_source_tree(" ".join(flags))
    program = project / "pull"
    run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", str(project / "pull.c"), *flags,
         f"-Wl,-rpath,{sdk / 'lib'}", "-o", str(program)], env=env, cwd=project)
    assert links_libwasmimage_dynamically(program, env)
    assert pull_and_check(program, layout, tmp_path, env) == module_file.read_bytes()
    # The error path: a missing tag is NOT_FOUND (exit status 2) and writes nothing.
    missing = tmp_path / "missing.wasm"
    done = subprocess.run([str(program), layout.rsplit(":", 1)[0] + ":no-such-tag", str(missing)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "NOT_FOUND" in done.stderr, done
    assert not missing.exists()


def test_pkg_config_static_view(sdk: Path, project: Path, user_env, layout: str, module_file: Path,
                                tmp_path: Path) -> None:
    env = c_env(user_env, sdk / "lib" / "static" / "pkgconfig")
    flags = run(["pkg-config", "--static", "--cflags", "--libs", "wasmimage"], env=env).stdout.split()
    program = project / "pull-static"
    run(["cc", "-std=c11", str(project / "pull.c"), *flags, "-o", str(program)], env=env, cwd=project)
    assert not links_libwasmimage_dynamically(program, env)
    assert pull_and_check(program, layout, tmp_path, env) == module_file.read_bytes()


@pytest.mark.parametrize("static", [False, True], ids=["shared", "static"])
def test_cmake_find_package(sdk: Path, project: Path, user_env, layout: str, module_file: Path,
                            tmp_path: Path, testbed, static: bool) -> None:
    build = tmp_path / "build"
    run(["cmake", "-S", str(project), "-B", str(build), f"-DCMAKE_PREFIX_PATH={sdk}",
         f"-DWASM_IMAGE_STATIC={'ON' if static else 'OFF'}", "-DCMAKE_BUILD_TYPE=Release"], env=user_env)
    cache = (build / "CMakeCache.txt").read_text()
    assert f"WasmImage_DIR:PATH={sdk}/lib/cmake/WasmImage" in cache
    assert_no_source_tree(cache)
    run(["cmake", "--build", str(build)], env=user_env)
    program = build / "pull"
    assert links_libwasmimage_dynamically(program, user_env) is not static
    assert pull_and_check(program, layout, tmp_path, user_env) == module_file.read_bytes()
    if testbed is not None:
        # A real registry, an image buildah made: the module's digest is the fixture's.
        fixtures = testbed.fixtures
        pulled = pull_and_check(program, fixtures["buildah-oci"], tmp_path, user_env, insecure=testbed.host("plain"))
        assert "sha256:" + hashlib.sha256(pulled).hexdigest() == fixtures["module_sha256"]
