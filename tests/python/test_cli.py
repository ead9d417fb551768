"""The wasm-image command line, driven as a user would: subprocesses, exit codes, output
and the files it writes. Every test runs twice: against the native binary and against
``python -m wasm_image`` (see cli_faces.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

import cli_faces
from conftest import ROOT, sha256, validate
from testbed import Testbed

# The face under test (the argv prefix), set for each test by `_face`.
COMMAND: List[str] = []


@pytest.fixture(autouse=True)
def _face(cli_command: List[str]) -> None:
    COMMAND[:] = cli_command


def cli(*args: str, stdin: Optional[bytes] = None, env: Optional[dict] = None) -> subprocess.CompletedProcess[bytes]:  # type: ignore[type-arg]
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        timeout=60,
        input=stdin,
        env=env,
    )


def ok(*args: str) -> str:
    done = cli(*args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.fixture()
def module_file(tmp_path: Path, module_bytes: bytes) -> Path:
    path = tmp_path / "plugin.wasm"
    path.write_bytes(module_bytes)
    return path


def test_the_installed_command_is_the_native_binary() -> None:
    """pip installs the binary itself as `wasm-image`, not a Python script that starts it."""
    exe = cli_faces.native_binary()
    if exe is None:
        message = "no native wasm-image beside this Python (package not installed with pip?)"
        if cli_faces.required():
            pytest.fail(message)
        pytest.skip(message)
    import wasm_image

    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout == f"wasm-image {wasm_image.__version__}\n"
    assert ok("--version") == done.stdout


@pytest.mark.parametrize("verb", ["fetch", "cache"])
def test_help_of_the_cache_verbs(verb: str) -> None:
    text = ok(verb, "--help")
    assert "example:" in text and f"wasm-image {verb}" in text


@pytest.mark.parametrize("verb", ["build", "pull", "copy", "inspect", "resolve"])
def test_help_of_every_verb_shows_an_example(verb: str) -> None:
    text = ok(verb, "--help")
    assert "example:" in text
    assert f"wasm-image {verb}" in text or (verb == "build" and "build filter.wasm" in text)


def test_build_inspect_pull_round_trip(tmp_path: Path, module_file: Path, module_bytes: bytes) -> None:
    store = tmp_path / "store"
    out = ok(
        "build", str(module_file), "-t", f"oci:{store}:v1",
        "--type", "envoy_proxy", "--abi", "v0.2.1", "--root-id", "r1", "--root-id", "r2",
        "--annotation", "org.example/team=edge",
    )
    assert "built oci image sha256:" in out

    text = ok("inspect", f"oci:{store}:v1")
    assert "variant:          oci" in text
    assert sha256(module_bytes) in text
    assert "root ids:         r1, r2" in text
    assert "org.example/team=edge" in text

    data = json.loads(ok("inspect", "--json", f"oci:{store}:v1"))
    assert data["variant"] == "oci"
    assert data["module_digest"] == sha256(module_bytes)
    assert data["runtime_config"]["root_ids"] == ["r1", "r2"]
    assert data["runtime_config"]["raw"]["type"] == "envoy_proxy"
    assert data["module"]["kind"] == "core-module"
    assert data["module"]["proxy_abi_versions"] == ["v0.2.1"]
    assert "proxy_on_vm_start" in data["module"]["exports"]
    assert data["annotations"]["org.example/team"] == "edge"
    # Global options are accepted before the verb too.
    assert json.loads(ok("--json", "inspect", f"oci:{store}:v1")) == data

    target = tmp_path / "out" / "plugin.wasm"
    target.parent.mkdir()
    out = ok("pull", f"oci:{store}:v1", "-o", str(target))
    assert str(target) in out
    assert target.read_bytes() == module_bytes
    validate(target.read_bytes())
    assert os.listdir(target.parent) == ["plugin.wasm"]

    pulled = json.loads(ok("--json", "pull", f"oci:{store}:v1", "-o", str(tmp_path / "again.wasm")))
    assert pulled["module_digest"] == sha256(module_bytes)
    assert pulled["output"] == str(tmp_path / "again.wasm")


def test_pull_to_stdout(tmp_path: Path, module_file: Path, module_bytes: bytes) -> None:
    ok("-q", "build", str(module_file), "-t", f"oci:{tmp_path}/s:v1", "--variant", "compat", "--format", "docker")
    done = cli("pull", f"oci:{tmp_path}/s:v1")
    assert done.returncode == 0
    assert done.stdout == module_bytes
    done = cli("pull", f"oci:{tmp_path}/s:v1", "-o", "-")
    assert done.stdout == module_bytes
    # A summary on stdout and the module on stdout cannot both be had.
    done = cli("--json", "pull", f"oci:{tmp_path}/s:v1")
    assert done.returncode == 2


def test_copy_and_resolve(tmp_path: Path, module_file: Path) -> None:
    built = json.loads(ok("--json", "build", str(module_file), "-t", f"oci:{tmp_path}/a:v1", "--variant", "compat"))
    digest = built["manifest_digest"]
    copied = json.loads(ok("--json", "copy", f"oci:{tmp_path}/a:v1", f"oci-archive:{tmp_path}/a.tar:v1"))
    assert copied["digest"] == digest
    assert ok("resolve", f"oci-archive:{tmp_path}/a.tar:v1").strip() == digest
    assert ok("-q", "copy", f"oci-archive:{tmp_path}/a.tar:v1", f"oci:{tmp_path}/b:v2") == ""
    assert json.loads(ok("resolve", "--json", f"oci:{tmp_path}/b:v2"))["digest"] == digest


@pytest.mark.parametrize(
    "args, kind, status",
    [
        (["inspect", "Not A Reference"], "INVALID_REFERENCE", 12),
        (["pull", "oci:/nonexistent/store:v1", "-o", "/tmp/never.wasm"], "NOT_FOUND", 13),
        (["resolve", "oci:/nonexistent/store:v1"], "NOT_FOUND", 13),
        (["build", "/etc/hostname", "-t", "oci:/tmp/never:v1"], "INVALID_FORMAT", 17),
        (["--platform", "nope", "inspect", "oci:/nonexistent:v1"], "INVALID_ARGUMENT", 11),
    ],
)
def test_errors_name_their_kind_and_exit_status(args: List[str], kind: str, status: int) -> None:
    done = cli(*args)
    assert done.returncode == status
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {kind}: "), lines
    done = cli("--json", *args)
    assert done.returncode == status
    assert json.loads(done.stdout)["error"]["kind"] == kind


def test_usage_errors_exit_2(tmp_path: Path, module_file: Path) -> None:
    assert cli().returncode == 2
    assert cli("frobnicate").returncode == 2
    done = cli("build", str(module_file))  # no -t
    assert done.returncode == 2
    done = cli("build", str(module_file), "-t", f"oci:{tmp_path}/s:v1", "--annotation", "novalue")
    assert done.returncode == 2 and b"KEY=VALUE" in done.stderr
    done = cli("--authfile", str(tmp_path / "missing.json"), "inspect", f"oci:{tmp_path}/s:v1")
    assert done.returncode == 2


def test_digest_mismatch_exit_status(tmp_path: Path, module_file: Path, module_bytes: bytes) -> None:
    ok("build", str(module_file), "-t", f"oci:{tmp_path}/s:v1")
    blob = tmp_path / "s" / "blobs" / "sha256" / sha256(module_bytes).split(":")[1]
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    done = cli("pull", f"oci:{tmp_path}/s:v1", "-o", str(tmp_path / "x.wasm"))
    assert done.returncode == 18
    assert done.stderr.decode().startswith("error: DIGEST_MISMATCH: ")
    assert not (tmp_path / "x.wasm").exists()


# ---- against the test bed -------------------------------------------------------------------


def test_cli_against_registries(tb: Testbed, tmp_path: Path, module_file: Path, module_bytes: bytes, repo: str) -> None:
    plain = tb.host("plain")
    location = f"{plain}/{repo}:v1"
    # Without --insecure nothing is downgraded to plain HTTP.
    done = cli("build", str(module_file), "-t", location)
    assert done.returncode == 20 and done.stderr.startswith(b"error: NETWORK: ")
    ok("--insecure", plain, "build", str(module_file), "-t", location, "--variant", "compat")
    data = json.loads(ok("--insecure", plain, "--json", "inspect", location))
    assert data["variant"] == "compat" and data["module_digest"] == sha256(module_bytes)
    ok("--insecure", plain, "copy", location, f"{plain}/{repo}-copy:v1")
    ok("pull", "--insecure", plain, f"{plain}/{repo}-copy:v1", "-o", str(tmp_path / "m.wasm"))
    assert (tmp_path / "m.wasm").read_bytes() == module_bytes
    done = cli("--insecure", plain, "pull", f"{plain}/{repo}:missing", "-o", str(tmp_path / "n.wasm"))
    assert done.returncode == 13 and b"error: NOT_FOUND: " in done.stderr


def test_cli_tls_ca_cert_and_authfile(tb: Testbed, tmp_path: Path) -> None:
    done = cli("inspect", tb.fixtures["tls"])
    assert done.returncode == 20
    ok("--ca-cert", tb["tls"]["ca_cert"], "inspect", tb.fixtures["tls"])

    basic = tb["basic"]
    done = cli("--no-config-files", "--insecure", basic["host"], "inspect", tb.fixtures["basic"])
    assert done.returncode == 14 and done.stderr.startswith(b"error: UNAUTHORIZED: ")
    import base64

    auth = base64.b64encode(f"{basic['username']}:{basic['password']}".encode()).decode()
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {basic["host"]: {"auth": auth}}}))
    ok("--no-config-files", "--authfile", str(authfile), "--insecure", basic["host"], "inspect", tb.fixtures["basic"])
    # Credentials from the docker config by default.
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(authfile.read_text())
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    done = cli("--insecure", basic["host"], "inspect", tb.fixtures["basic"], env=env)
    assert done.returncode == 0, done.stderr


def test_cli_timeout_and_retries_options(
    tb: Testbed, registry_client: object, tmp_path: Path, module_file: Path, repo: str
) -> None:
    ok("--insecure", tb.host("plain"), "-q", "build", str(module_file), "-t", f"{tb.host('plain')}/{repo}:v1")
    tb.add_faults({"match": f"{repo}/manifests/", "action": "stall", "before_headers": True, "seconds": 5, "times": -1})
    try:
        done = cli(
            "--insecure", tb.host("faulty"), "--read-timeout", "0.3", "--retries", "0",
            "inspect", f"{tb.host('faulty')}/{repo}:v1",
        )
        assert done.returncode == 21, done.stderr
        assert done.stderr.startswith(b"error: TIMEOUT: ")
    finally:
        tb.clear_faults(match=f"{repo}/manifests/")


def test_progress_bars_only_on_a_terminal(tb: Testbed, tmp_path: Path, big_module: bytes, repo: str) -> None:
    import pty

    module = tmp_path / "big.wasm"
    module.write_bytes(big_module)
    plain = tb.host("plain")
    # Not a terminal: no progress output at all.
    done = cli("--insecure", plain, "build", str(module), "-t", f"{plain}/{repo}:v1")
    assert done.returncode == 0 and done.stderr == b""
    # A terminal on stderr: bars with carriage returns and sizes.
    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen(
            [*COMMAND, "--insecure", plain, "pull", f"{plain}/{repo}:v1", "-o",
             str(tmp_path / "out.wasm")],
            stdout=subprocess.PIPE,
            stderr=follower,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        child.wait(timeout=60)
    finally:
        os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert child.returncode == 0
    assert "[" in text and "MiB" in text and "#" in text, text
    assert (tmp_path / "out.wasm").read_bytes() == big_module


def test_exit_status_numbers_follow_the_c_enum(tmp_path: Path) -> None:
    """A failure exits with 10 + its kind's code, as the committed C header spells it."""
    import re

    header = (ROOT / "include" / "wasm_image.h").read_text()
    codes = {m.group(1): int(m.group(2)) for m in re.finditer(r"WASM_IMAGE_ERROR_KIND_([A-Z_]+) = (\d+)", header)}
    for args, kind in [
        (["inspect", "Not A Reference"], "INVALID_REFERENCE"),
        (["resolve", f"oci:{tmp_path}/none:v1"], "NOT_FOUND"),
        (["--read-timeout", "-1", "resolve", f"oci:{tmp_path}/none:v1"], "INVALID_ARGUMENT"),
        (["build", "/etc/hostname", "-t", f"oci:{tmp_path}/s:v1"], "INVALID_FORMAT"),
    ]:
        done = cli(*args)
        assert done.returncode == 10 + codes[kind], (args, done.stderr)
        assert done.stderr.decode().startswith(f"error: {kind}: ")


def test_json_error_is_one_line_like_python_json(tmp_path: Path) -> None:
    done = cli("--json", "resolve", f"oci:{tmp_path}/none:v1")
    assert done.returncode == 13
    line = done.stdout.decode()
    assert line.endswith("}\n") and line.count("\n") == 1
    error = json.loads(line)["error"]
    assert set(error) == {"kind", "message", "status", "code"}
    assert line == json.dumps({"error": error}) + "\n"


def test_python_main_keeps_its_import_path(tmp_path: Path, module_file: Path) -> None:
    """`wasm_image.cli.main` runs the command line in-process and returns its status."""
    from wasm_image.cli import main

    assert main(["-q", "build", str(module_file), "-t", f"oci:{tmp_path}/s:v1"]) == 0
    assert main(["resolve", f"oci:{tmp_path}/missing:v1"]) == 13
    assert (tmp_path / "s" / "index.json").is_file()
