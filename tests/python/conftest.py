"""Shared fixtures of the Python suite.

Local tests (``oci:`` layouts, archives, build, the CLI on local stores) always run.
Registry tests use the shared test bed (``tests/support/testbed.py``) named by
``$WASM_IMAGE_TESTBED`` and are skipped when it is unset.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator, List

import pytest
import wasmtime

import wasm_image

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"
sys.path.insert(0, str(SUPPORT))

from testbed import Testbed, leb128  # noqa: E402

import cli_faces  # noqa: E402

PLUGIN_WAT = SUPPORT / "fixtures" / "plugin.wat"

_engine = wasmtime.Engine()


def interruptible() -> None:
    """`preexec_fn` for a child a test interrupts: Ctrl-C's default disposition. A shell
    without job control starts background jobs with SIGINT ignored, and a Python child
    that starts so installs no KeyboardInterrupt handler: the interrupt would be lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def validate(data: bytes) -> None:
    """Fails the test unless a real engine accepts the module."""
    wasmtime.Module.validate(_engine, data)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def with_custom_section(module: bytes, payload_size: int) -> bytes:
    """The module plus a custom section of random bytes: still valid, as large as wanted."""
    name = b"wasm-image-test-padding"
    body = bytes([len(name)]) + name + os.urandom(payload_size)
    return module + b"\x00" + leb128(len(body)) + body


@pytest.fixture(params=cli_faces.FACES)
def cli_command(request: pytest.FixtureRequest) -> List[str]:
    """The command line, once as the native binary and once as ``python -m wasm_image``."""
    try:
        return cli_faces.command(request.param)
    except LookupError as missing:
        if cli_faces.required():
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def module_bytes() -> bytes:
    """The test bed's proxy-wasm style fixture module, compiled here so no server is needed."""
    data = wasmtime.wat2wasm(PLUGIN_WAT.read_text())
    validate(data)
    return bytes(data)


@pytest.fixture(scope="session")
def big_module(module_bytes: bytes) -> bytes:
    """A valid 3 MiB module, large enough for progress events and stalls mid-transfer."""
    return with_custom_section(module_bytes, 3 * 1024 * 1024)


@pytest.fixture()
def store(tmp_path: Path) -> str:
    """An OCI layout directory for this test (created on first push)."""
    return str(tmp_path / "store")


@pytest.fixture(scope="session")
def tb() -> Testbed:
    testbed = Testbed.from_env()
    if testbed is None:
        pytest.skip("registry test: set WASM_IMAGE_TESTBED (python3 tests/support/testbed.py start --state DIR)")
    return testbed


@pytest.fixture()
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name unique to this test (the fault proxy is shared by all tests)."""
    name = request.node.name.lower()
    safe = "".join(c if c.isalnum() else "-" for c in name).strip("-")[:40].strip("-")
    return f"py/{safe}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def registry_client(tb: Testbed) -> wasm_image.Client:
    """A client for the test bed's plain-HTTP registries."""
    return wasm_image.Client(
        insecure=[tb.host("plain"), tb.host("faulty"), tb.host("basic"), tb.host("mirror"), tb.host("token")],
        use_config_files=False,
    )


@pytest.fixture()
def faults(tb: Testbed, repo: str) -> Iterator[Callable[..., None]]:
    """Adds fault-proxy rules matching this test's repository; removes them afterwards."""
    added: List[str] = []

    def add(**rule: object) -> None:
        match = str(rule.pop("match", repo))
        tb.add_faults({"match": match, **rule})
        added.append(match)

    yield add
    for match in set(added):
        tb.clear_faults(match=match)


def run_python(code: str, *args: str, timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Runs a Python child process with this interpreter."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[call-overload]
    )
