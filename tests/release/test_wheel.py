"""The wheel as a Python user gets it: its tags and contents, then installed into a fresh
virtual environment on a PATH without cargo, running the README's Python example and
the command line."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, glibc_versions, run, section_names

MANYLINUX_FLOOR = (2, 28)  # RHEL 8, Debian 10, Ubuntu 20.04


def test_wheel_is_abi3_and_manylinux_2_28_or_older(wheel: Path) -> None:
    m = re.fullmatch(r"wasm_image-[^-]+-cp39-abi3-manylinux_(\d+)_(\d+)_x86_64\.whl", wheel.name)
    assert m, f"unexpected wheel name {wheel.name}"
    assert (int(m.group(1)), int(m.group(2))) <= MANYLINUX_FLOOR
    with zipfile.ZipFile(wheel) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/WHEEL"))
        tags = re.findall(r"^Tag: (.*)$", whl.read(meta).decode(), re.M)
    assert tags == [wheel.name.split("-", 2)[2].removesuffix(".whl")]


def test_auditwheel_confirms_the_tag(wheel: Path) -> None:
    auditwheel = shutil.which("auditwheel")
    if auditwheel is None:
        pytest.skip("auditwheel is not on PATH (release/tools.sh installs it)")
    out = run([auditwheel, "show", str(wheel)]).stdout
    m = re.search(r'platform tag: "manylinux_(\d+)_(\d+)_x86_64"', " ".join(out.split()))
    assert m, out
    assert (int(m.group(1)), int(m.group(2))) <= MANYLINUX_FLOOR, out


def test_wheel_holds_stubs_marker_command_and_sbom(wheel: Path, version: str) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        info = f"wasm_image-{version}.dist-info"
        for name in ("wasm_image/__init__.py", "wasm_image/cli.py", "wasm_image/_native.pyi",
                     "wasm_image/py.typed", "wasm_image/_native.abi3.so"):
            assert name in names, f"{name} missing from the wheel"
        # The command is the native binary (wheel data pip installs as a script), not a
        # console-script entry point that would start Python first.
        command = whl.getinfo(f"wasm_image-{version}.data/scripts/wasm-image")
        assert (command.external_attr >> 16) & 0o111, "the command is not executable"
        assert whl.read(command.filename)[:4] == b"\x7fELF"
        if f"{info}/entry_points.txt" in names:
            assert "wasm-image" not in whl.read(f"{info}/entry_points.txt").decode()
        metadata = whl.read(f"{info}/METADATA").decode()
        assert f"\nVersion: {version}\n" in metadata
        assert "\nRequires-Python: >=3.9" in metadata
        assert any(n.startswith(f"{info}/sboms/") and n.endswith(".json") for n in names)


@pytest.mark.parametrize("member", ["wasm_image/_native.abi3.so", "wasm_image-{version}.data/scripts/wasm-image"])
def test_native_code_is_stripped_and_needs_glibc_2_28_at_most(
    wheel: Path, version: str, member: str, tmp_path: Path
) -> None:
    with zipfile.ZipFile(wheel) as whl:
        native = Path(whl.extract(member.format(version=version), tmp_path))
    sections = section_names(native)
    assert ".symtab" not in sections and not any(s.startswith(".debug") for s in sections), sections
    assert max(glibc_versions(native)) <= MANYLINUX_FLOOR


def test_the_standalone_command_is_the_wheels(release_dir: Path, wheel: Path, version: str) -> None:
    alone = release_dir / f"wasm-image-{version}-linux-x86_64"
    with zipfile.ZipFile(wheel) as whl:
        inside = whl.read(f"wasm_image-{version}.data/scripts/wasm-image")
    assert alone.read_bytes() == inside
    assert run([str(alone), "--version"]).stdout == f"wasm-image {version}\n"


def readme_python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_python_examples_run_from_the_installed_wheel(
    wheel_venv: Path, venv_env: dict[str, str], module_file: Path, testbed, tmp_path: Path
) -> None:
    examples = readme_python_examples()
    assert len(examples) >= 2, "the README's Install and Python sections each have an example"
    registry = "127.0.0.1:5000"
    if any(registry in code for code in examples):
        if testbed is None:
            pytest.skip("the README example talks to a registry: set WASM_IMAGE_TESTBED")
        registry = testbed.host("plain")
    shutil.copy(module_file, tmp_path / "filter.wasm")
    for i, code in enumerate(examples):
        code = code.replace("127.0.0.1:5000", registry)
        # Run as a user would: from a folder of their own, not the checkout.
        done = subprocess.run([str(wheel_venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path, env=venv_env)
        assert done.returncode == 0, f"README example {i} failed:\n{code}\n{done.stdout}\n{done.stderr}"
    imported = run([str(wheel_venv / "bin" / "python"), "-c", "import wasm_image; print(wasm_image.__file__)"],
                   cwd=tmp_path, env=venv_env).stdout
    assert imported.startswith(str(wheel_venv)), imported


def test_command_line_from_the_installed_wheel(wheel_venv: Path, venv_env: dict[str, str], version: str,
                                               layout: str, tmp_path: Path) -> None:
    cli = str(wheel_venv / "bin" / "wasm-image")
    assert Path(cli).read_bytes()[:4] == b"\x7fELF", "pip installed a script, not the native command"
    assert run([cli, "--version"], env=venv_env, cwd=tmp_path).stdout.strip() == f"wasm-image {version}"
    inspected = run([cli, "inspect", layout, "--json"], env=venv_env, cwd=tmp_path).stdout
    assert '"variant": "oci"' in inspected
    run([cli, "pull", layout, "-o", str(tmp_path / "out.wasm")], env=venv_env, cwd=tmp_path)
    assert (tmp_path / "out.wasm").read_bytes()[:4] == b"\0asm"
    # `python -m wasm_image` runs the same command line through the extension.
    python = str(wheel_venv / "bin" / "python")
    assert run([python, "-m", "wasm_image", "inspect", layout, "--json"], env=venv_env, cwd=tmp_path).stdout == inspected
