#!/usr/bin/env python3
"""Builds the API reference of every face from the code's own doc comments.

    python3 release/api_docs.py OUT --wheel wasm_image-….whl

    OUT/python/   HTML by pdoc from the docstrings of the installed wheel (the native
                  module's docstrings are the Rust doc comments of python/src)
    OUT/c-api.md  Markdown from include/wasm_image.h's doc comments (cbindgen copies
                  them from ffi/src)
    OUT/go.txt    `go doc -all` of the Go package, when go/ exists

pdoc must be importable (release/tools.sh installs it). Fails when a face that exists
cannot be documented: a release never ships without its reference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import c_header  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def python_reference(wheel: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory() as site:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", site, str(wheel)],
            check=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        env = {**os.environ, "PYTHONPATH": site}
        subprocess.run([sys.executable, "-m", "pdoc", "--no-search", "-o", str(out), "wasm_image"], check=True, env=env)


def _prototype(decl: c_header.Decl) -> str:
    """A function's declaration with one parameter per line, as the header has it."""
    head, _, params = decl.text.partition("(")
    params = c_header.split_top(params[:-1], ",")
    if len(params) <= 1:
        return f"{decl.text};"
    indent = " " * (len(head) + 1)
    return head + "(" + (",\n" + indent).join(params) + ");"


def _anchor(name: str) -> str:
    return name.lower()


def c_reference(header: Path, version: str) -> str:
    h = c_header.parse(header)
    out = [f"# C API reference: `wasm_image.h` (wasm-image {version})", "", h.overview, ""]
    sections = [
        ("Macros", h.of_kind("macro")),
        ("Enums", h.of_kind("enum")),
        ("Types", h.of_kind("opaque") + h.of_kind("struct") + h.of_kind("callback")),
        ("Functions", h.of_kind("function")),
    ]
    out += ["## Contents", ""]
    for title, decls in sections:
        names = ", ".join(f"[`{d.name}`](#{_anchor(d.name)})" for d in decls if d.kind != "macro")
        out.append(f"- **{title}**" + (f": {names}" if names else ""))
    out.append("")
    for title, decls in sections:
        out += [f"## {title}", ""]
        if title == "Macros":
            out += ["```c", *(d.text for d in decls), "```", ""]
            continue
        for d in decls:
            kind = {"opaque": "opaque handle", "struct": "struct", "callback": "callback"}.get(d.kind, "")
            out += [f"### {d.name}" + (f" ({kind})" if kind else ""), ""]
            if d.kind == "function":
                out += ["```c", _prototype(d), "```", ""]
            elif d.kind == "callback" or d.kind == "opaque":
                out += ["```c", d.text + ";", "```", ""]
            out += [d.doc or "(undocumented)", ""]
            if d.kind == "enum":
                out += ["| name | value | meaning |", "|---|---|---|"]
                out += [f"| `{m.name}` | {m.text[2:]} | {' '.join(m.doc.split())} |" for m in d.members]
                out.append("")
            elif d.kind == "struct":
                out += ["| field | meaning |", "|---|---|"]
                out += [f"| `{m.text}` | {' '.join(m.doc.split())} |" for m in d.members]
                out.append("")
    return "\n".join(out)


def go_reference(go_dir: Path) -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("api_docs: go/ exists but the go command is not on PATH")
    result = subprocess.run([go, "doc", "-all", "."], cwd=go_dir, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"api_docs: go doc failed:\n{result.stderr}")
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--version", required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    python_reference(args.wheel, args.out / "python")
    (args.out / "c-api.md").write_text(c_reference(ROOT / "include" / "wasm_image.h", args.version))
    made = ["python/", "c-api.md"]
    if (ROOT / "go" / "go.mod").exists():
        (args.out / "go.txt").write_text(go_reference(ROOT / "go"))
        made.append("go.txt")
    print(f"api_docs: {', '.join(made)} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
