"""The C ABI check (release/abi.py): the released library keeps the ABI recorded in
ffi/abi.txt, and the check itself catches each kind of break while letting additions
and a new soname through."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import abi
import c_header
from conftest import ROOT

HEADER = ROOT / "include" / "wasm_image.h"


def test_released_library_keeps_the_recorded_abi(sdk: Path, version: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "release" / "abi.py"), "check",
                           str(sdk / "lib" / f"libwasmimage.so.{version}")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def recorded() -> dict[str, str]:
    """The ABI of the committed header (what ffi/abi.txt holds once up to date)."""
    header = c_header.parse(HEADER)
    soname = "libwasmimage.so." + re.search(r"WASM_IMAGE_VERSION_MAJOR (\d+)", HEADER.read_text()).group(1)
    return abi.facts(header, soname, {d.name for d in header.of_kind("function")})


def changed_header(tmp_path: Path, old: str, new: str) -> c_header.Header:
    text = HEADER.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "wasm_image.h"
    path.write_text(text.replace(old, new))
    return c_header.parse(path)


def current(header: c_header.Header, soname: str = "libwasmimage.so.0") -> dict[str, str]:
    return abi.facts(header, soname, {d.name for d in header.of_kind("function")})


def test_committed_header_keeps_the_recorded_abi(recorded: dict[str, str]) -> None:
    breaks, _ = abi.compare(abi.read_record(ROOT / "ffi" / "abi.txt"), recorded)
    assert breaks == []


def test_unchanged_header_passes(recorded: dict[str, str]) -> None:
    assert abi.compare(recorded, dict(recorded)) == ([], [])
    assert abi.check(recorded, dict(recorded)) == 0


def test_a_removed_function_is_a_break(recorded: dict[str, str], tmp_path: Path, capsys) -> None:
    header = changed_header(tmp_path, "bool wasm_image_cancel_token_is_cancelled(const wasm_image_cancel_token_t *token);", "")
    assert abi.check(recorded, current(header)) == 1
    assert "removed  function wasm_image_cancel_token_is_cancelled" in capsys.readouterr().out


def test_a_changed_parameter_type_is_a_break(recorded: dict[str, str], tmp_path: Path, capsys) -> None:
    header = changed_header(
        tmp_path,
        "wasm_image_error_t *wasm_image_client_options_set_max_index_entries(const wasm_image_client_options_t *options,\n"
        "                                                                    uint64_t value);",
        "wasm_image_error_t *wasm_image_client_options_set_max_index_entries(const wasm_image_client_options_t *options,\n"
        "                                                                    uint32_t value);",
    )
    assert abi.check(recorded, current(header)) == 1
    assert "changed  function wasm_image_client_options_set_max_index_entries" in capsys.readouterr().out


def test_a_renamed_parameter_is_not_a_break(recorded: dict[str, str], tmp_path: Path) -> None:
    header = changed_header(tmp_path, "const char *wasm_image_error_name(const wasm_image_error_t *error);",
                            "const char *wasm_image_error_name(const wasm_image_error_t *err);")
    assert abi.compare(recorded, current(header)) == ([], [])


def test_a_renumbered_enum_value_is_a_break(recorded: dict[str, str], tmp_path: Path) -> None:
    header = changed_header(tmp_path, "WASM_IMAGE_ERROR_KIND_TIMEOUT = 11,", "WASM_IMAGE_ERROR_KIND_TIMEOUT = 16,")
    breaks, _ = abi.compare(recorded, current(header))
    assert breaks == ["changed  enum-value WASM_IMAGE_ERROR_KIND_TIMEOUT: "
                      "wasm_image_error_kind_t = 11  ->  wasm_image_error_kind_t = 16"]


def test_a_changed_struct_field_is_a_break(recorded: dict[str, str], tmp_path: Path) -> None:
    header = changed_header(tmp_path, "    uint64_t done;", "    uint32_t done;")
    breaks, _ = abi.compare(recorded, current(header))
    assert len(breaks) == 1 and breaks[0].startswith("changed  struct wasm_image_progress_t")


def test_additions_pass_and_are_listed(recorded: dict[str, str], tmp_path: Path, capsys) -> None:
    header = changed_header(
        tmp_path, "void wasm_image_string_free(char *string);",
        "void wasm_image_string_free(char *string);\n\n"
        "/**\n * New.\n */\nwasm_image_error_t *wasm_image_example_addition(const wasm_image_client_t *client);",
    )
    assert abi.check(recorded, current(header)) == 0
    out = capsys.readouterr().out
    assert "added    function wasm_image_example_addition" in out and "release/abi.py update" in out


def test_a_break_with_a_new_soname_passes(recorded: dict[str, str], tmp_path: Path) -> None:
    header = changed_header(tmp_path, "bool wasm_image_cancel_token_is_cancelled(const wasm_image_cancel_token_t *token);", "")
    assert abi.check(recorded, current(header, soname="libwasmimage.so.1")) == 0


def test_header_and_library_must_agree() -> None:
    header = c_header.parse(HEADER)
    exported = {d.name for d in header.of_kind("function")} - {"wasm_image_version"}
    with pytest.raises(abi.AbiError, match="wasm_image_version"):
        abi.facts(header, "libwasmimage.so.0", exported)


def test_an_unknown_declaration_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(c_header.HeaderError, match="unknown shape"):
        changed_header(tmp_path, "void wasm_image_string_free(char *string);", "int wasm_image_table[4];")
