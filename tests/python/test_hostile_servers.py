"""Registries that misbehave on purpose, served by a small HTTP server of this test's own
(faults a real registry cannot produce): a token lifetime that overflows, a body that
trickles in a byte at a time, each within the read timeout, and a module declared huge
and sent slowly."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest

import wasm_image
from conftest import interruptible, run_python

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture()
def serve() -> Iterator[Callable[[Handler], str]]:
    """Starts a server on loopback answering every request with `handler`; gives HOST:PORT."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                handler(self)

            do_HEAD = do_GET  # noqa: N815

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def answer(h: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
    data = json.dumps(body).encode()
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)


def test_a_token_lifetime_that_overflows_is_no_panic(serve) -> None:
    host = ""

    def registry(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/token"):
            return answer(h, 200, {"token": "t0k", "expires_in": 18446744073709551615})
        if h.headers.get("Authorization") != "Bearer t0k":
            realm = f"http://{host}/token"
            return answer(h, 401, {"errors": [{"code": "UNAUTHORIZED"}]},
                          {"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})
        answer(h, 404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})

    host = serve(registry)
    client = wasm_image.Client(insecure=[host], use_config_files=False, retries=0)
    # The token was accepted and used: the registry's own answer comes back.
    with pytest.raises(wasm_image.NotFoundError):
        client.pull(f"{host}/hostile/module:v1")


def trickle(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
    h.send_header("Content-Length", str(1 << 20))
    h.end_headers()
    try:
        for _ in range(1 << 20):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.3)
    except OSError:
        pass  # the client gave up


def test_call_timeout_bounds_a_trickling_download(serve) -> None:
    host = serve(trickle)
    client = wasm_image.Client(
        insecure=[host], use_config_files=False, retries=0, read_timeout=20, call_timeout=2
    )
    started = time.monotonic()
    with pytest.raises(wasm_image.TimeoutError, match="time limit"):
        client.pull(f"{host}/slow/module:v1")
    # Generous: the point is that it ends, not how precisely.
    assert time.monotonic() - started < 60

    async def pull_async() -> None:
        await client.pull_async(f"{host}/slow/module:v1")

    with pytest.raises(wasm_image.TimeoutError, match="time limit"):
        asyncio.run(pull_async())


def test_call_timeout_must_be_a_number_of_seconds() -> None:
    with pytest.raises(wasm_image.InvalidArgumentError, match="call_timeout"):
        wasm_image.Client(call_timeout=-1)


DECLARED = 200 * 1024 * 1024

# Pulls the slow module in a fresh process and prints its peak RSS in KiB once the call
# has been cut off. VmHWM, not getrusage's ru_maxrss: Linux carries the forked parent's
# peak over exec into ru_maxrss, and the test runner's may be large.
PEAK_CHILD = """
import sys, wasm_image
host = sys.argv[1]
client = wasm_image.Client(insecure=[host], use_config_files=False, retries=0,
                           read_timeout=20, call_timeout=3)
try:
    client.pull(host + "/slow/module:v1")
except wasm_image.TimeoutError:
    with open("/proc/self/status") as status:
        print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc for the peak RSS")
def test_a_module_declared_huge_and_sent_slowly_holds_only_what_arrived(serve) -> None:
    config = b"{}"
    layer_digest = "sha256:" + "ab" * 32  # never reached: the call is cut off first
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.wasm.config.v1+json", "size": len(config),
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm", "size": DECLARED,
                    "digest": layer_digest}],
    }

    def registry(h: BaseHTTPRequestHandler) -> None:
        if "/manifests/" in h.path:
            return answer(h, 200, manifest)
        if h.path.endswith(manifest["config"]["digest"]):
            h.send_response(200)
            h.send_header("Content-Length", str(len(config)))
            h.end_headers()
            return h.wfile.write(config)
        h.send_response(200)
        h.send_header("Content-Length", str(DECLARED))
        h.end_headers()
        try:
            h.wfile.write(b"\0asm\x01\0\0\0")
            for _ in range(DECLARED):
                h.wfile.write(b"\0" * 1024)
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    host = serve(registry)
    done = run_python(PEAK_CHILD, host, timeout=120)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    peak_mib = int(done.stdout.split()[-1]) / 1024
    # The interpreter and the library take a few tens of MiB; the declared 200 MiB must
    # not be among them.
    assert peak_mib < DECLARED / (1024 * 1024) / 2, f"peak RSS {peak_mib:.0f} MiB"


def test_the_cli_takes_a_call_timeout(serve, tmp_path) -> None:
    host = serve(trickle)
    out = tmp_path / "module.wasm"
    done = run_python(
        "from wasm_image.cli import main; raise SystemExit(main())",
        "--insecure", host, "--call-timeout", "1", "--retries", "0",
        "pull", f"{host}/slow/module:v1", "-o", str(out),
    )
    assert done.returncode != 0 and "TIMEOUT" in done.stderr, done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [], "a partial file was left"


def test_ctrl_c_stops_the_cli_with_status_130(serve, tmp_path, cli_command) -> None:
    """Both faces of the command line: the transfer stops, nothing is left, exit 130."""
    import signal
    import subprocess

    asked = threading.Event()

    def slow(h: BaseHTTPRequestHandler) -> None:
        asked.set()
        trickle(h)

    host = serve(slow)
    out = tmp_path / "module.wasm"
    child = subprocess.Popen(
        [*cli_command, "--insecure", host, "--retries", "0", "pull", f"{host}/slow/module:v1", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=interruptible,
    )
    try:
        assert asked.wait(60), "the command never reached the server"
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, stderr
    assert stderr.decode().strip() == "interrupted" and stdout == b""
    assert list(tmp_path.iterdir()) == [], "a partial file was left"
