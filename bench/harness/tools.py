"""The tools measured: their versions, whether each is usable (and why not), the
wasm-image command and Python API probed with one pull, the C API program built."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.common import BENCH, ROOT, MiB, log
from harness.machine import first_line
from harness.processes import measure, run_quiet

if TYPE_CHECKING:
    from harness.state import RunState


def detect_tools(b: RunState) -> None:
    v = b.versions
    v["python"] = first_line([b.python, "--version"])
    v["curl"] = first_line(["curl", "--version"], r"curl \S+")
    v["skopeo"] = first_line(["skopeo", "--version"], r"\d+\.\d+\.\d+")
    v["buildah"] = first_line(["buildah", "--version"], r"\d+\.\d+\.\d+")
    v["docker-registry"] = first_line(["docker-registry", "--version"], r"v?\d+\.\d+\.\d+\S*")
    v["oras-py"] = first_line([b.python, "-c", "import importlib.metadata as m; print(m.version('oras'))"])
    v["gcc"] = first_line(["gcc", "--version"])
    try:
        import matplotlib

        v["matplotlib"] = matplotlib.__version__
    except ImportError:
        v["matplotlib"] = "not installed"
    # Where the package was imported from says which build was measured, without naming
    # this machine's folders in the committed results.
    v["wasm-image (python)"] = first_line(
        [b.python, "-c", "import wasm_image; print(wasm_image.__version__, "
         "'(installed)' if 'site-packages' in wasm_image.__file__ else '(source tree)')"]
    )
    try:
        rev = run_quiet(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).strip()
        dirty = run_quiet(["git", "-C", str(ROOT), "status", "--porcelain", "--", "core", "python", "ffi"]).strip()
        v["wasm-image (git)"] = rev + (" + uncommitted changes in core/python/ffi" if dirty else "")
    except Exception:  # noqa: BLE001
        v["wasm-image (git)"] = "?"
    for tool in ("curl", "skopeo", "buildah", "docker-registry"):
        b.tools[tool] = "" if shutil.which(tool) else f"{tool} not installed"
    b.tools["oras-py"] = "" if re.match(r"\d", v["oras-py"]) else "oras-py not installed (pip install oras)"
    native = native_build_kind(b.python)
    v["wasm-image build"] = native
    b.res.notes.append(f"wasm-image native module: {native}")


def native_build_kind(python: str) -> str:
    out = first_line(
        [python, "-c", "import glob, os, wasm_image; print(*glob.glob(os.path.join(os.path.dirname(wasm_image.__file__), '_native*')))"]
    )
    path = Path(out.split()[0]) if out and out.startswith("/") else None
    if not path or not path.exists():
        return "not importable"
    try:
        sections = run_quiet(["readelf", "-S", "-W", str(path)])
        debug = ".debug_info" in sections
    except Exception:  # noqa: BLE001
        debug = False
    mb = path.stat().st_size / MiB
    kind = "DEBUG build (has .debug_info; built by `maturin develop`?)" if debug else "release build"
    return f"{path.name}, {mb:.1f} MiB, {kind}"


def shown_path(path: Path) -> str:
    """A path as the committed results may name it: inside the project, relative to it."""
    try:
        return str(path.resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return path.name


def find_cli(b: RunState) -> str | None:
    if b.args.cli:
        return b.args.cli
    beside = Path(b.python).parent / "wasm-image"
    if beside.exists():
        return str(beside)
    return shutil.which("wasm-image")


def probe_python_api(b: RunState) -> None:
    p = measure(b.pyworker("pull", {"host": b.host, "location": f"{b.host}/bench/oci-1m:v1", "size": MiB}), env=b.py_env())
    if p.returncode != 0:
        b.tools["py"] = f"Python API pull failed: {p.stderr.strip()[-400:]}"
    else:
        b.tools["py"] = ""


def probe_cli(b: RunState) -> None:
    cli = find_cli(b)
    if not cli:
        b.tools["cli"] = "`wasm-image` command not found"
        return
    b.cli = cli
    out = b.scratch("probe-cli.wasm")
    p = measure([cli, "pull", f"{b.host}/bench/oci-1m:v1", "-o", str(out), "--insecure", b.host, "-q", "--no-config-files"], env=b.py_env())
    ok = p.returncode == 0 and out.exists() and out.stat().st_size == MiB
    b.tools["cli"] = "" if ok else f"CLI pull did not work (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-300:] or 'no output, no file'}"
    b.wipe(out)


def build_c(b: RunState) -> None:
    lib_dir = Path(b.args.lib_dir) if b.args.lib_dir else ROOT / "target" / "release"
    if b.args.build_ffi:
        log("cargo build --release -p wasm-image-ffi …")
        try:
            run_quiet(["cargo", "build", "--release", "-p", "wasm-image-ffi"], timeout=1800)
        except Exception as e:  # noqa: BLE001
            b.tools["c"] = f"cargo build --release -p wasm-image-ffi failed: {str(e)[-400:]}"
            return
    exe, problem = link_c(b, "pull_c.c", "pull_c")
    if problem:
        b.tools["c"] = problem
        return
    b.c_exe = exe
    lib = c_library(lib_dir)
    b.versions["libwasmimage"] = f"{shown_path(lib)} ({lib.stat().st_size / MiB:.1f} MiB, built {time.strftime('%Y-%m-%d %H:%M', time.localtime(lib.stat().st_mtime))})"
    probe = b.scratch("probe-c.wasm")
    p = measure([b.c_exe, "file", f"{b.host}/bench/oci-1m:v1", str(probe), b.host])
    ok = p.returncode == 0 and probe.exists() and probe.stat().st_size == MiB
    b.tools["c"] = "" if ok else f"C API pull failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-300:]}"
    b.wipe(probe)


def c_library(lib_dir: Path) -> Path | None:
    """libwasmimage.a when there is one (static, as the Go binding links it: no install
    step, no soname symlink needed), else the .so, else None."""
    for name in ("libwasmimage.a", "libwasmimage.so"):
        if (lib_dir / name).exists():
            return lib_dir / name
    return None


def link_c(b: RunState, source: str, name: str) -> tuple[str, str | None]:
    """Compiles bench/<source> against include/wasm_image.h and libwasmimage (from --lib-dir,
    default target/release) into the work folder: (its path, None), or ("", why not)."""
    header = ROOT / "include" / "wasm_image.h"
    lib_dir = Path(b.args.lib_dir) if b.args.lib_dir else ROOT / "target" / "release"
    lib = c_library(lib_dir)
    if not header.exists() or lib is None:
        return "", f"C API not ready: {'no include/wasm_image.h' if not header.exists() else f'no libwasmimage in {lib_dir}'}"
    exe = b.work / name
    link = [str(lib), "-lpthread", "-ldl", "-lm"] if lib.suffix == ".a" else \
        [f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-lwasmimage"]
    try:
        run_quiet(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-o", str(exe), str(BENCH / source),
                   f"-I{header.parent}", *link])
    except Exception as e:  # noqa: BLE001
        return "", f"bench/{source} does not compile/link against include/wasm_image.h and {lib}: {str(e)[-600:]}"
    return str(exe), None
