"""What Python users rely on beyond the API: the GIL is released, Ctrl-C works, fork
works, asyncio runs many calls at once. Uses the test bed's fault proxy to make
transfers slow on purpose."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List

import pytest

import wasm_image
from conftest import interruptible, run_python, sha256, validate
from testbed import Testbed


def _client(tb: Testbed, **options: object) -> wasm_image.Client:
    return wasm_image.Client(
        insecure=[tb.host("plain"), tb.host("faulty")],
        use_config_files=False,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture()
def slow(tb: Testbed, big_module: bytes, repo: str) -> str:
    """The big module pushed for this test; returns its location through the fault proxy."""
    _client(tb).push(wasm_image.build(big_module), f"{tb.host('plain')}/{repo}:v1")
    return f"{tb.host('faulty')}/{repo}:v1"


def test_gil_is_released_during_a_pull(
    tb: Testbed, slow: str, repo: str, big_module: bytes, faults: Callable[..., None]
) -> None:
    faults(match=f"{repo}/blobs/", method="GET", action="stall", seconds=1.5, then="continue", times=-1)
    counter = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        started = time.monotonic()
        img = _client(tb).pull(slow)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
    assert img.module == big_module
    assert elapsed >= 1.4, "the stall did not happen"
    # A thread that never got the GIL would not count at all; this one counted freely.
    assert counter[0] > 100_000, counter[0]


CTRL_C_CHILD = """
import sys, wasm_image
client = wasm_image.Client(insecure=[sys.argv[1]], use_config_files=False, read_timeout=120)
print("ready", flush=True)
client.pull_to_file(sys.argv[2], sys.argv[3])
print("finished", flush=True)
"""


def _interrupt_a_stalled_pull(
    tb: Testbed,
    slow: str,
    repo: str,
    big_module: bytes,
    tmp_path: Path,
    faults: Callable[..., None],
    operation: str,
) -> Path:
    # Stall the module layer only, after its first bytes: the download is under way.
    faults(match=f"{repo}/blobs/{sha256(big_module)}", method="GET", action="stall", seconds=60, times=-1)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = CTRL_C_CHILD
    if operation == "pull":
        code = code.replace("client.pull_to_file(sys.argv[2], sys.argv[3])", "client.pull(sys.argv[2])")
    child = subprocess.Popen(
        [sys.executable, "-c", code, tb.host("faulty"), slow, str(out_dir / "plugin.wasm")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        if operation == "pull_to_file":
            # The partial file shows the child is inside the stalled download.
            deadline = time.monotonic() + 20
            while not os.listdir(out_dir):
                assert time.monotonic() < deadline, "the child never started the download"
                time.sleep(0.02)
            assert not (out_dir / "plugin.wasm").exists()
        time.sleep(0.5)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in stderr, stderr
    assert child.returncode != 0
    assert elapsed < 1.0, f"took {elapsed:.2f}s to react to Ctrl-C"
    assert not (out_dir / "plugin.wasm").exists(), "an incomplete module appeared under the final name"
    return out_dir


@pytest.mark.parametrize("operation", ["pull_to_file", "pull"])
def test_ctrl_c_interrupts_a_stalled_pull(
    tb: Testbed,
    slow: str,
    repo: str,
    big_module: bytes,
    tmp_path: Path,
    faults: Callable[..., None],
    operation: str,
) -> None:
    _interrupt_a_stalled_pull(tb, slow, repo, big_module, tmp_path, faults, operation)


def test_ctrl_c_leaves_no_partial_file(
    tb: Testbed, slow: str, repo: str, big_module: bytes, tmp_path: Path, faults: Callable[..., None]
) -> None:
    out_dir = _interrupt_a_stalled_pull(tb, slow, repo, big_module, tmp_path, faults, "pull_to_file")
    assert os.listdir(out_dir) == [], "a partial output file was left behind"


FORK_CHILD = """
import os, sys, wasm_image
client = wasm_image.Client(insecure=[sys.argv[1]], use_config_files=False)
parent = client.pull(sys.argv[2]).module_digest
pid = os.fork()
if pid == 0:
    try:
        ok = client.pull(sys.argv[2]).module_digest == parent
        fresh = wasm_image.Client(insecure=[sys.argv[1]], use_config_files=False)
        ok = ok and fresh.pull(sys.argv[2]).module_digest == parent
        import asyncio
        async def pull_async():
            return await client.pull_async(sys.argv[2])
        ok = ok and asyncio.run(pull_async()).module_digest == parent
    except BaseException as e:
        print("child failed:", repr(e), flush=True)
        os._exit(1)
    os._exit(0 if ok else 2)
_, status = os.waitpid(pid, 0)
# The parent keeps working after the fork too.
assert client.pull(sys.argv[2]).module_digest == parent
print("child exit", os.waitstatus_to_exitcode(status), flush=True)
"""


def test_pull_in_a_forked_child(tb: Testbed) -> None:
    done = run_python(FORK_CHILD, tb.host("plain"), tb.fixtures["buildah-oci"], timeout=60)
    assert done.returncode == 0, done.stderr
    assert "child exit 0" in done.stdout, done.stdout + done.stderr


# ---- asyncio --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_twenty_concurrent_pulls_on_one_client(
    tb: Testbed, slow: str, repo: str, big_module: bytes, faults: Callable[..., None]
) -> None:
    # Every manifest request waits 0.5 s: one after another that would be 10 s.
    faults(match=f"{repo}/manifests/", method="GET", action="delay", seconds=0.5, times=-1)
    client = _client(tb)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    started = time.monotonic()
    images = await asyncio.gather(*(client.pull_async(slow) for _ in range(20)))
    elapsed = time.monotonic() - started
    tick_task.cancel()
    assert len(images) == 20
    assert all(img.module == big_module for img in images)
    validate(images[0].module)
    assert elapsed < 6, f"20 pulls took {elapsed:.1f}s: not concurrent"
    assert ticks > 10, "the event loop was blocked during the pulls"


@pytest.mark.asyncio
async def test_async_twins_of_every_operation(tb: Testbed, module_bytes: bytes, repo: str, tmp_path: Path) -> None:
    client = _client(tb)
    plain = tb.host("plain")
    built = wasm_image.build(module_bytes)
    loop_thread = threading.get_ident()
    events: List[wasm_image.ProgressEvent] = []
    threads: List[int] = []

    def progress(event: wasm_image.ProgressEvent) -> None:
        events.append(event)
        threads.append(threading.get_ident())

    digest = await client.push_async(built, f"{plain}/{repo}:v1", progress=progress)
    assert digest == built.manifest_digest
    assert await client.resolve_async(f"{plain}/{repo}:v1") == digest
    assert await client.copy_async(f"{plain}/{repo}:v1", f"{plain}/{repo}-copy:v1", progress=progress) == digest
    img = await client.pull_async(f"{plain}/{repo}-copy:v1", platform="wasip1/wasm", progress=progress)
    assert img.module == module_bytes
    info = await client.pull_to_file_async(f"{plain}/{repo}:v1", tmp_path / "m.wasm", progress=progress)
    assert info.module_digest == built.module_digest
    assert (tmp_path / "m.wasm").read_bytes() == module_bytes
    await asyncio.sleep(0.05)  # let the last call_soon_threadsafe callbacks run
    assert events
    assert set(threads) == {loop_thread}, "async progress must run on the event loop's thread"


@pytest.mark.asyncio
async def test_async_errors_are_the_same_classes(tb: Testbed, repo: str) -> None:
    client = _client(tb)
    with pytest.raises(wasm_image.NotFoundError):
        await client.pull_async(f"{tb.host('plain')}/{repo}:missing")
    with pytest.raises(wasm_image.InvalidReferenceError):
        await client.resolve_async("Not A Reference")
    with pytest.raises(wasm_image.InvalidArgumentError):
        client.pull_async(f"{tb.host('plain')}/{repo}:v1", platform="nope")


@pytest.mark.asyncio
async def test_cancelling_an_async_pull(
    tb: Testbed, slow: str, repo: str, big_module: bytes, tmp_path: Path, faults: Callable[..., None]
) -> None:
    faults(match=f"{repo}/blobs/{sha256(big_module)}", method="GET", action="stall", seconds=60, times=-1)
    client = _client(tb)
    target = tmp_path / "m.wasm"
    task = asyncio.ensure_future(client.pull_to_file_async(slow, target))
    deadline = time.monotonic() + 20
    while not os.listdir(tmp_path):  # the partial file: the download is under way
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1
    await asyncio.sleep(0.3)
    assert os.listdir(tmp_path) == [], "neither the target nor its .partial file may remain"


def test_async_call_needs_a_running_loop(module_bytes: bytes) -> None:
    with pytest.raises(RuntimeError):
        wasm_image.Client().resolve_async("oci:/nonexistent:v1")


def test_cancel_token_from_another_thread(
    tb: Testbed, slow: str, repo: str, big_module: bytes, faults: Callable[..., None]
) -> None:
    faults(match=f"{repo}/blobs/{sha256(big_module)}", method="GET", action="stall", seconds=60, times=-1)
    token = wasm_image.CancelToken()
    timer = threading.Timer(0.5, token.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(wasm_image.CancelledError):
        _client(tb).pull(slow, cancel=token)
    assert time.monotonic() - started < 5
    timer.join()


def test_the_interpreter_exits_cleanly_right_after_async_calls(store: str, module_bytes: bytes) -> None:
    # asyncio.run returns once the last result is delivered, while the worker thread that
    # delivered it may still be leaving the interpreter; finalizing under it aborted the
    # process now and then ("PyGILState_Release: thread state ... must be current").
    # Several short-lived processes give that window many chances.
    location = f"oci:{store}:exit"
    wasm_image.push(wasm_image.build(module_bytes), location)
    code = (
        "import asyncio, sys, wasm_image\n"
        "async def main() -> None:\n"
        "    client = wasm_image.Client(use_config_files=False)\n"
        "    await asyncio.gather(*(client.pull_async(sys.argv[1]) for _ in range(10)))\n"
        "    await client.resolve_async(sys.argv[1])\n"
        "asyncio.run(main())\n"
    )
    for attempt in range(15):
        done = run_python(code, location, timeout=120)
        assert done.returncode == 0, f"attempt {attempt}: exit status {done.returncode}\n{done.stderr}"
