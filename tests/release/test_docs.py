"""Every public name is documented where its reference is built from: Python docstrings
(including the native module's functions, methods and properties) and the C header's
doc comments; and the release carries the API reference built from them."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import c_header
from conftest import ROOT, run

# Runs inside the wheel's virtual environment: every name in wasm_image.__all__, and every
# public method and property of the public classes, must have a docstring.
UNDOCUMENTED = r"""
import inspect, json, wasm_image
missing = []
for name in wasm_image.__all__:
    if name == "__version__":
        continue
    obj = getattr(wasm_image, name)
    if not (inspect.getdoc(obj) or "").strip():
        missing.append(name)
    if inspect.isclass(obj) and not issubclass(obj, BaseException):
        for attr, value in vars(obj).items():
            if not attr.startswith("_") and not (getattr(value, "__doc__", None) or "").strip():
                missing.append(f"{name}.{attr}")
print(json.dumps(missing))
"""


def test_every_public_python_name_has_a_docstring(wheel_venv: Path, venv_env: dict[str, str], tmp_path: Path) -> None:
    out = run([str(wheel_venv / "bin" / "python"), "-c", UNDOCUMENTED], env=venv_env, cwd=tmp_path).stdout
    assert json.loads(out) == []


def test_every_header_function_and_type_has_a_comment() -> None:
    header = c_header.parse(ROOT / "include" / "wasm_image.h")
    undocumented = [d.name for d in header.decls if d.kind != "macro" and not d.doc.strip()]
    assert undocumented == []
    assert len(header.of_kind("function")) > 50


def test_release_carries_the_api_reference(release_dir: Path) -> None:
    api = release_dir / "api"
    page = html.unescape(re.sub(r"<[^>]+>", "", (api / "python" / "wasm_image.html").read_text()))
    python_page = " ".join(page.split())
    for text in ("def pull(location", "Fetches the image at location", "class Client", "class WasmImageError",
                 "The asyncio twin of"):
        assert text in python_page, f"{text!r} missing from the Python reference"
    c_page = (api / "c-api.md").read_text()
    header = c_header.parse(ROOT / "include" / "wasm_image.h")
    for d in header.of_kind("function"):
        assert f"### {d.name}\n" in c_page
    if (ROOT / "go" / "go.mod").exists():
        go_page = (api / "go.txt").read_text()
        assert "func Version() string" in go_page and "package wasmimage" in go_page
