#!/usr/bin/env python3
"""The C ABI check: what programs linked against libwasmimage rely on, kept in ffi/abi.txt.

    python3 release/abi.py check  [LIBRARY]   fail when the ABI broke without a new soname
    python3 release/abi.py update [LIBRARY]   record the current ABI in ffi/abi.txt

LIBRARY is a built libwasmimage.so; without it, ffi/install.sh builds one (release, cached
by cargo) into a temporary folder. The ABI is read from two places: the shared library's
dynamic symbol table and soname (`nm -D`, `readelf -d`), and include/wasm_image.h (every
function's parameter and return types, every enum's values and C type, every struct's
fields, every callback's signature, the opaque handle names).

A break is a recorded fact that is gone or different: a function, type or enum value
removed, a signature, field list or value changed. It passes only when the soname
changed too (a new major version). Additions always pass; they are listed so that
ffi/abi.txt can be brought up to date with `python3 release/abi.py update`, the one
command to run after merging work that adds functions.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import c_header  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "wasm_image.h"
RECORD = ROOT / "ffi" / "abi.txt"
PREAMBLE = """\
# The C ABI of libwasmimage as released: what a program linked against the library
# relies on. Written by `python3 release/abi.py update`; CI runs `release/abi.py check`,
# which fails when a line here disappears or changes while the soname stays the same.
# Lines: soname, enum (C type), enum-value, opaque, struct (fields), callback, function
# (return type and parameter types).
"""


class AbiError(Exception):
    """The header and the library do not describe one ABI."""


def library_facts(library: Path) -> tuple[str, set[str]]:
    """The soname and the exported function symbols of a shared library."""
    dynamic = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True)
    soname = re.search(r"Library soname: \[(.*?)\]", dynamic.stdout)
    if not soname:
        raise AbiError(f"{library} has no soname")
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True
    )
    functions = {parts[2] for parts in (line.split() for line in symbols.stdout.splitlines())
                 if len(parts) == 3 and parts[1] == "T"}
    return soname.group(1), functions


def facts(header: c_header.Header, soname: str, exported: set[str]) -> dict[str, str]:
    """Every fact of the ABI as "kind name" -> value."""
    declared = {d.name for d in header.of_kind("function")}
    if declared != exported:
        raise AbiError(
            "the header and the library disagree: "
            f"declared only {sorted(declared - exported)}, exported only {sorted(exported - declared)}"
        )
    out = {"soname": soname}
    for d in header.decls:
        if d.kind == "enum":
            out[f"enum {d.name}"] = d.abi
            for m in d.members:
                out[f"enum-value {m.name}"] = f"{d.name} {m.text}"
        elif d.kind in ("opaque", "struct", "callback", "function"):
            out[f"{d.kind} {d.name}"] = d.abi
    return out


def render(abi: dict[str, str]) -> str:
    lines = [f"{key}: {value}" for key, value in sorted(abi.items(), key=lambda kv: (kv[0] != "soname", kv[0]))]
    return PREAMBLE + "\n".join(lines) + "\n"


def read_record(path: Path) -> dict[str, str]:
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            raise AbiError(f"{path}:{number}: not 'kind name: value': {line!r}")
        out[key] = value
    return out


def compare(recorded: dict[str, str], current: dict[str, str]) -> tuple[list[str], list[str]]:
    """(breaks, additions) between the recorded ABI and the current one."""
    breaks = []
    for key, value in sorted(recorded.items()):
        if key == "soname":
            continue
        if key not in current:
            breaks.append(f"removed  {key}: {value}")
        elif current[key] != value:
            breaks.append(f"changed  {key}: {value}  ->  {current[key]}")
    additions = [f"added    {key}: {current[key]}" for key in sorted(current.keys() - recorded.keys())]
    return breaks, additions


def check(recorded: dict[str, str], current: dict[str, str]) -> int:
    breaks, additions = compare(recorded, current)
    soname_changed = recorded.get("soname") != current["soname"]
    for line in breaks + additions:
        print(line)
    if breaks and not soname_changed:
        print(
            f"abi: FAILED: {len(breaks)} incompatible change(s) while the soname stays "
            f"{current['soname']}: keep the old declarations, or bump the major version "
            "(Cargo workspace version) so the soname changes, then run `python3 release/abi.py update`",
            file=sys.stderr,
        )
        return 1
    if soname_changed:
        print(f"abi: soname {recorded.get('soname')} -> {current['soname']}: a new major version may break; "
              "record it with `python3 release/abi.py update`")
    elif additions:
        print(f"abi: compatible; {len(additions)} addition(s) not yet in {RECORD.relative_to(ROOT)} "
              "(record them with `python3 release/abi.py update`)")
    else:
        print(f"abi: unchanged ({len(current) - 1} facts, soname {current['soname']})")
    return 0


def build_library(work: Path) -> Path:
    subprocess.run(["bash", str(ROOT / "ffi" / "install.sh"), "--shared-only", str(work)], check=True)
    return work / "lib" / "libwasmimage.so"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["check", "update"])
    parser.add_argument("library", nargs="?", type=Path, help="libwasmimage.so (default: build one)")
    parser.add_argument("--header", type=Path, default=HEADER)
    parser.add_argument("--record", type=Path, default=RECORD)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        library = args.library or build_library(Path(work))
        try:
            current = facts(c_header.parse(args.header), *library_facts(library))
            if args.action == "update":
                args.record.write_text(render(current))
                print(f"abi: wrote {len(current) - 1} facts to {args.record}")
                return 0
            return check(read_record(args.record), current)
        except (AbiError, c_header.HeaderError) as e:
            print(f"abi: FAILED: {e}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
