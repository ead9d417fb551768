"""The control-plane cache against real registries and real processes: pull policies
over a tag that moves, zero requests for pinned hits (counted by the fault proxy), a
registry stopped mid-run, 8 processes x 8 threads sharing one download, leases across
processes, SIGKILL mid-download, tampered entries, https/http/file locations, and bad
inputs that each give a typed error and leave the cache consistent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

import wasm_image
from conftest import ROOT, run_python, sha256, validate, with_custom_section
from testbed import Starter, Testbed


def _client(tb: Testbed, cache: wasm_image.Cache, **options: object) -> wasm_image.Client:
    return wasm_image.Client(
        cache=cache,
        insecure=[tb.host("plain"), tb.host("faulty")],
        use_config_files=False,
        **options,  # type: ignore[arg-type]
    )


def _push(tb: Testbed, module: bytes, repo: str, tag: str) -> str:
    """Pushes an oci-variant image straight to the plain registry; returns its manifest digest."""
    client = wasm_image.Client(insecure=[tb.host("plain")], use_config_files=False)
    return client.push(wasm_image.build(module), f"{tb.host('plain')}/{repo}:{tag}")


def _requests(tb: Testbed, repo: str) -> List[dict]:
    """The proxy's log for this repository, once it has settled: the proxy records a
    request after it has answered it, so a client can be done before its request shows."""
    def read() -> List[dict]:
        return [r for r in tb.fault_log(match=repo) if r["path"].startswith(f"/v2/{repo}/")]

    seen = read()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if len(now) == len(seen):
            return now
        seen = now
    return seen


def _blob_gets(tb: Testbed, repo: str, digest: str) -> int:
    return sum(1 for r in _requests(tb, repo) if r["method"] == "GET" and f"/blobs/{digest}" in r["path"])


def assert_consistent(cache: wasm_image.Cache) -> None:
    """Every listed entry is complete and intact, and nothing half-written is left."""
    for e in cache.entries():
        data = Path(e.path).read_bytes()
        assert len(data) == e.size
        assert sha256(data) == e.module_digest
    assert cache.verify_all() == []
    assert list((cache.dir / "staging").iterdir()) == [] or all(
        not any(p.iterdir()) for p in (cache.dir / "staging").iterdir()
    )


@pytest.fixture()
def cache(tmp_path: Path) -> wasm_image.Cache:
    return wasm_image.Cache(dir=tmp_path / "cache", tag_ttl=3600)


def _modules(module_bytes: bytes, n: int) -> List[bytes]:
    return [with_custom_section(module_bytes, 64 + i) for i in range(n)]


# ---- policies -------------------------------------------------------------------------


def test_every_policy_against_a_tag_that_moves(tb: Testbed, repo: str, module_bytes: bytes, tmp_path: Path) -> None:
    first, second = _modules(module_bytes, 2)
    _push(tb, first, repo, "v1")
    cache = wasm_image.Cache(dir=tmp_path / "c", tag_ttl=3600)
    client = _client(tb, cache)
    loc = f"oci://{tb.host('faulty')}/{repo}:v1"

    with client.fetch(loc) as entry:
        assert entry.module_digest == sha256(first) and not entry.stale
        assert Path(entry.path).read_bytes() == first
        assert entry.module == first
        assert entry.variant == "oci" and entry.runtime_config is not None
        assert not os.access(entry.path, os.W_OK) or os.geteuid() == 0
        assert (os.stat(entry.path).st_mode & 0o222) == 0
    assert _blob_gets(tb, repo, sha256(first)) == 1

    _push(tb, second, repo, "v1")  # the tag moves
    before = len(_requests(tb, repo))
    with client.fetch(loc) as entry:  # inside tag_ttl: the cache, no request at all
        assert entry.module_digest == sha256(first)
    assert len(_requests(tb, repo)) == before

    with client.fetch(loc, policy="always") as entry:  # resolves, sees the move, downloads
        assert entry.module_digest == sha256(second)
    assert _blob_gets(tb, repo, sha256(second)) == 1

    before = len(_requests(tb, repo))
    with client.fetch(loc, policy="always") as entry:  # one manifest HEAD, no download
        assert entry.module_digest == sha256(second)
    made = _requests(tb, repo)[before:]
    assert [(r["method"], "/manifests/" in r["path"]) for r in made] == [("HEAD", True)]

    with client.fetch(loc, policy="never") as entry:
        assert entry.module_digest == sha256(second)
    before = len(_requests(tb, repo))
    with pytest.raises(wasm_image.NotFoundError, match="policy never"):
        client.fetch(f"oci://{tb.host('faulty')}/{repo}:other", policy="never")
    assert len(_requests(tb, repo)) == before

    # tag_ttl 0: if-not-present re-resolves every time (HEAD only when unchanged).
    zero = _client(tb, wasm_image.Cache(dir=tmp_path / "c", tag_ttl=0))
    before = len(_requests(tb, repo))
    with zero.fetch(loc) as entry:
        assert entry.module_digest == sha256(second)
    assert [r["method"] for r in _requests(tb, repo)[before:]] == ["HEAD"]
    stats = cache.stats()
    assert (stats.misses, stats.bytes_downloaded) == (2, len(first) + len(second))
    assert stats.hits == 3
    assert_consistent(cache)


def test_a_pinned_hit_makes_zero_requests_and_digests_are_checked(
    tb: Testbed, repo: str, module_bytes: bytes, cache: wasm_image.Cache
) -> None:
    manifest = _push(tb, module_bytes, repo, "v1")
    client = _client(tb, cache)
    pinned = f"oci://{tb.host('faulty')}/{repo}@{manifest}"
    with client.fetch(pinned, expected_digest=sha256(module_bytes)) as entry:
        assert entry.manifest_digest == manifest
    before = len(_requests(tb, repo))
    # The same image under the other spellings, and every accepted way to give the digest.
    for loc in (pinned, f"{tb.host('faulty')}/{repo}@{manifest}", f"docker://{tb.host('faulty')}/{repo}:v1@{manifest}"):
        for expected in (None, manifest, manifest.split(":")[1], sha256(module_bytes).split(":")[1].upper()):
            with client.fetch(loc, expected_digest=expected) as entry:
                assert entry.module_digest == sha256(module_bytes)
    assert len(_requests(tb, repo)) == before

    wrong = "sha256:" + "0" * 64
    with pytest.raises(wasm_image.DigestMismatchError, match="expected digest"):
        client.fetch(pinned, expected_digest=wrong)
    # A mismatch on a download caches nothing.
    other = with_custom_section(module_bytes, 300)
    manifest2 = _push(tb, other, repo, "v2")
    with pytest.raises(wasm_image.DigestMismatchError, match="nothing was cached"):
        client.fetch(f"{tb.host('faulty')}/{repo}@{manifest2}", expected_digest=wrong)
    assert [e.module_digest for e in cache.entries()] == [sha256(module_bytes)]
    assert_consistent(cache)


# ---- outages --------------------------------------------------------------------------


@pytest.fixture()
def own_registry(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A registry of this test's own, which it can stop and start again."""
    state = tmp_path / "own-registry"
    (state / "logs").mkdir(parents=True)
    starter = Starter(state, verbose=False)
    host, proc = starter.start_registry("own", lambda port: "")
    starter.wait_http("own", f"http://{host}/v2/", (200,))
    argv = starter.records["own"]["argv"]

    def stop() -> None:
        p = starter.popen["own"]
        p.terminate()
        p.wait(timeout=20)

    def start() -> None:
        starter.spawn("own", argv)
        starter.wait_http("own", f"http://{host}/v2/", (200,))

    yield host, stop, start
    p = starter.popen["own"]
    if p.poll() is None:
        p.kill()
        p.wait(timeout=20)


def test_registry_stopped_mid_run_with_and_without_stale_on_error(
    own_registry: tuple[str, Callable[[], None], Callable[[], None]],
    module_bytes: bytes,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    host, stop, start = own_registry
    pusher = wasm_image.Client(insecure=[host], use_config_files=False)
    pusher.push(wasm_image.build(module_bytes), f"{host}/outage/filter:v1")
    cache = wasm_image.Cache(dir=tmp_path / "c", tag_ttl=0)
    client = wasm_image.Client(cache=cache, insecure=[host], use_config_files=False, retries=0, connect_timeout=2)
    loc = f"oci://{host}/outage/filter:v1"
    client.fetch(loc).release()

    stop()
    with pytest.raises(wasm_image.NetworkError):
        client.fetch(loc)
    with pytest.raises(wasm_image.NetworkError):
        client.fetch(loc, policy="always", stale_on_error=False)
    with caplog.at_level("WARNING", logger="wasm_image"):
        with client.fetch(loc, policy="always", stale_on_error=True) as entry:
            assert entry.stale
            assert entry.module == module_bytes
    assert any("stale" in r.getMessage() for r in caplog.records)
    # A location never fetched has nothing to fall back on.
    with pytest.raises(wasm_image.NetworkError):
        client.fetch(f"oci://{host}/outage/other:v1", stale_on_error=True)
    # The cache's own setting, and the pinned form, which needs no registry at all.
    stale_cache = wasm_image.Cache(dir=tmp_path / "c", tag_ttl=0, stale_on_error=True)
    stale_client = wasm_image.Client(cache=stale_cache, insecure=[host], use_config_files=False, retries=0)
    with stale_client.fetch(loc) as entry:
        assert entry.stale and entry.manifest_digest
        pinned = f"{host}/outage/filter@{entry.manifest_digest}"
    with stale_client.fetch(pinned) as entry:
        assert not entry.stale
    assert stale_cache.stats().stale_hits == 1

    start()
    with client.fetch(loc, policy="always") as entry:
        assert not entry.stale


# ---- one download, leases, crashes ---------------------------------------------------

_FETCHER = textwrap.dedent(
    """
    import sys, threading, wasm_image
    cache_dir, loc, insecure, go = sys.argv[1:5]
    cache = wasm_image.Cache(dir=cache_dir)
    client = wasm_image.Client(cache=cache, insecure=[insecure], use_config_files=False)
    out = []
    def run():
        with client.fetch(loc) as e:
            out.append(e.module_digest)
    import os, time
    while not os.path.exists(go):
        time.sleep(0.01)
    threads = [threading.Thread(target=run) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    s = cache.stats()
    print(len(out), len(set(out)), out[0], s.misses, s.hits)
    """
)


def test_eight_processes_of_eight_threads_make_one_download(
    tb: Testbed, repo: str, big_module: bytes, tmp_path: Path, faults: Callable[..., None]
) -> None:
    _push(tb, big_module, repo, "v1")
    digest = sha256(big_module)
    # Slow the blob down so every fetch is in flight while the first one downloads.
    faults(match=f"{repo}/blobs/{digest}", action="delay", seconds=1.0, times=-1)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FETCHER, str(tmp_path / "c"), f"oci://{tb.host('faulty')}/{repo}:v1",
             tb.host("faulty"), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(8)
    ]
    time.sleep(0.5)
    go.touch()
    misses = 0
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        n, distinct, got, m, hits = out.split()
        assert (int(n), int(distinct), got) == (8, 1, digest)
        misses += int(m)
    assert misses == 1
    assert _blob_gets(tb, repo, digest) == 1
    assert_consistent(wasm_image.Cache(dir=tmp_path / "c"))


def test_concurrent_failures_share_one_error(
    tb: Testbed, repo: str, module_bytes: bytes, cache: wasm_image.Cache, faults: Callable[..., None]
) -> None:
    _push(tb, module_bytes, repo, "v1")
    digest = sha256(module_bytes)
    # Every blob request hangs a second, then the connection closes.
    faults(match=f"{repo}/blobs/{digest}", action="stall", seconds=1.0, before_headers=True, then="close", times=-1)
    client = _client(tb, cache, retries=0)

    async def many() -> List[BaseException]:
        calls = [client.fetch_async(f"{tb.host('faulty')}/{repo}:v1") for _ in range(6)]
        return await asyncio.gather(*calls, return_exceptions=True)  # type: ignore[arg-type]

    results = asyncio.run(many())
    assert all(isinstance(r, wasm_image.NetworkError) for r in results), results
    assert len({str(r) for r in results}) == 1
    assert _blob_gets(tb, repo, digest) == 1
    assert cache.entries() == []


def test_threads_queued_on_a_failing_tag_share_its_error(
    tb: Testbed, repo: str, module_bytes: bytes, cache: wasm_image.Cache, faults: Callable[..., None]
) -> None:
    _push(tb, module_bytes, repo, "v1")
    faults(match=f"/v2/{repo}/manifests/v1", action="status", status=503, times=-1)
    client = _client(tb, cache, retries=2, retry_base_delay=0.2)
    barrier = threading.Barrier(8)
    errors: List[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            client.fetch(f"{tb.host('faulty')}/{repo}:v1")
        except wasm_image.WasmImageError as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 8 and len({(e.kind, str(e)) for e in errors}) == 1, errors
    # One resolution with its retries, not eight.
    assert len([r for r in _requests(tb, repo) if "/manifests/" in r["path"]]) == 3


_HOLDER = textwrap.dedent(
    """
    import sys, wasm_image
    cache = wasm_image.Cache(dir=sys.argv[1])
    client = wasm_image.Client(cache=cache, use_config_files=False)
    with client.fetch(sys.argv[2]) as e:
        print(e.path, flush=True)
        sys.stdin.readline()
        assert e.module
    print("released", flush=True)
    """
)


def test_a_lease_in_one_process_survives_gc_in_another(module_bytes: bytes, tmp_path: Path) -> None:
    module_file = tmp_path / "m.wasm"
    module_file.write_bytes(module_bytes)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "c"), f"file://{module_file}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    path = Path(holder.stdout.readline().strip())
    cache = wasm_image.Cache(dir=tmp_path / "c")
    report = cache.gc(max_bytes=0)
    assert report.removed == [] and report.kept_leased == 1
    assert path.read_bytes() == module_bytes
    assert [e.leased for e in cache.entries()] == [True]
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    assert holder.wait(timeout=30) == 0
    report = cache.gc(max_bytes=0)
    assert report.removed == [sha256(module_bytes)] and report.freed_bytes == len(module_bytes)
    assert not path.exists() and cache.entries() == []
    assert cache.stats().evictions == 1


def test_max_bytes_evicts_least_recently_used_after_inserts(module_bytes: bytes, tmp_path: Path) -> None:
    files = []
    for i, m in enumerate(_modules(module_bytes, 3)):
        f = tmp_path / f"m{i}.wasm"
        f.write_bytes(m)
        files.append(f)
    size = len(files[0].read_bytes())
    cache = wasm_image.Cache(dir=tmp_path / "c", max_bytes=2 * size + 140)
    client = wasm_image.Client(cache=cache, use_config_files=False)
    client.fetch(f"file://{files[0]}").release()
    time.sleep(0.05)
    client.fetch(f"file://{files[1]}").release()
    time.sleep(0.05)
    client.fetch(f"file://{files[0]}").release()  # a hit: m0 is now the most recent
    time.sleep(0.05)
    with client.fetch(f"file://{files[2]}"):
        pass
    kept = {e.module_digest for e in cache.entries()}
    assert kept == {sha256(files[0].read_bytes()), sha256(files[2].read_bytes())}
    assert cache.stats().evictions == 1
    old = wasm_image.Cache(dir=tmp_path / "c").gc(max_age=0)
    assert len(old.removed) == 2


_KILLED = textwrap.dedent(
    """
    import sys, wasm_image
    client = wasm_image.Client(cache=wasm_image.Cache(dir=sys.argv[1]), insecure=[sys.argv[3]], use_config_files=False)
    client.fetch(sys.argv[2])
    """
)


def test_sigkill_mid_download_leaves_a_consistent_cache(
    tb: Testbed, repo: str, big_module: bytes, tmp_path: Path, faults: Callable[..., None]
) -> None:
    _push(tb, big_module, repo, "v1")
    digest = sha256(big_module)
    faults(match=f"{repo}/blobs/{digest}", action="stall", seconds=60, bytes=1_000_000, then="close", times=1)
    loc = f"{tb.host('faulty')}/{repo}:v1"
    child = subprocess.Popen([sys.executable, "-c", _KILLED, str(tmp_path / "c"), loc, tb.host("faulty")])
    staging = tmp_path / "c" / "staging"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = [p for p in staging.glob("*/*") if p.stat().st_size > 0] if staging.exists() else []
        if partial:
            break
        time.sleep(0.05)
    else:
        child.kill()
        pytest.fail("the download never started writing")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    cache = wasm_image.Cache(dir=tmp_path / "c")
    assert cache.entries() == []
    report = cache.gc()
    assert report.leftovers_removed >= 1
    assert not any(staging.iterdir())
    client = _client(tb, cache)
    with client.fetch(loc) as entry:
        assert entry.module == big_module
    assert_consistent(cache)


def test_a_tampered_entry_is_dropped_and_fetched_again(module_bytes: bytes, tmp_path: Path) -> None:
    module_file = tmp_path / "m.wasm"
    module_file.write_bytes(module_bytes)
    loc = f"file://{module_file}"
    cache = wasm_image.Cache(dir=tmp_path / "c")
    client = wasm_image.Client(cache=cache, use_config_files=False)
    with client.fetch(loc) as entry:
        path = Path(entry.path)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size: only a digest check sees it
    path.write_bytes(bytes(data))

    verifying = wasm_image.Client(cache=wasm_image.Cache(dir=tmp_path / "c", verify=True), use_config_files=False)
    with verifying.fetch(loc) as entry:
        assert entry.module == module_bytes
    assert path.read_bytes() == module_bytes

    os.chmod(path, 0o644)
    path.write_bytes(module_bytes + b"x")  # a size change is seen on every hit
    with client.fetch(loc) as entry:
        assert entry.module == module_bytes
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    assert cache.verify_all() == [sha256(module_bytes)]
    assert cache.entries() == []
    assert_consistent(cache)


# ---- the URL forms --------------------------------------------------------------------


def test_https_against_tls_http_only_when_allow_listed_and_file(
    tb: Testbed, repo: str, module_bytes: bytes, tmp_path: Path
) -> None:
    ca = tb["tls"]["ca_cert"]
    tls = tb.host("tls")
    # The oci variant stores the module as a raw layer: its blob URL serves a bare module.
    wasm_image.Client(ca_certs=[ca], use_config_files=False).push(wasm_image.build(module_bytes), f"{tls}/{repo}:v1")
    _push(tb, module_bytes, repo, "v1")
    digest = sha256(module_bytes)
    cache = wasm_image.Cache(dir=tmp_path / "c")

    client = wasm_image.Client(cache=cache, ca_certs=[ca], use_config_files=False)
    url = f"https://{tls}/v2/{repo}/blobs/{digest}"
    with client.fetch(url, expected_digest=digest) as entry:
        assert entry.module == module_bytes and entry.manifest_digest is None and entry.variant is None
    validate(client.pull(url).module)
    with pytest.raises(wasm_image.NetworkError, match="certificate"):
        wasm_image.Client(cache=cache, use_config_files=False).fetch(url, policy="always")

    http_url = f"http://{tb.host('plain')}/v2/{repo}/blobs/{digest}"
    with pytest.raises(wasm_image.InvalidArgumentError, match="plain http"):
        client.fetch(http_url, policy="always")
    allowed = wasm_image.Client(cache=cache, insecure=[tb.host("plain")], use_config_files=False)
    with allowed.fetch(http_url) as entry:
        assert entry.module_digest == digest
    with pytest.raises(wasm_image.NotFoundError):
        allowed.fetch(f"http://{tb.host('plain')}/v2/{repo}/blobs/sha256:{'1' * 64}")

    module_file = tmp_path / "dir with space" / "plugin.wasm"
    module_file.parent.mkdir()
    module_file.write_bytes(module_bytes)
    file_url = "file://" + str(module_file).replace(" ", "%20")
    with client.fetch(file_url) as entry:
        assert entry.module_digest == digest
    image = client.pull(file_url)
    assert image.module == module_bytes and image.variant == "oci"
    with pytest.raises(wasm_image.InvalidArgumentError, match="read only"):
        client.push(image, file_url)
    with pytest.raises(wasm_image.NotFoundError):
        client.fetch(f"file://{tmp_path}/missing.wasm")
    # With the expected digest given, a bare module already cached needs no download.
    os.remove(module_file)
    with client.fetch(file_url, expected_digest=digest) as entry:
        assert entry.module == module_bytes
    assert_consistent(cache)


def test_fetch_async_and_the_default_client(module_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module_file = tmp_path / "m.wasm"
    module_file.write_bytes(module_bytes)
    cache = wasm_image.Cache(dir=tmp_path / "c")
    client = wasm_image.Client(cache=cache, use_config_files=False)

    async def go() -> wasm_image.FetchEntry:
        return await client.fetch_async(f"file://{module_file}")

    entry = asyncio.run(go())
    with entry:
        assert entry.module == module_bytes
    assert entry.released
    with pytest.raises(wasm_image.InvalidArgumentError, match="released"):
        entry.module
    # The module-level function uses $XDG_CACHE_HOME (read once per process: run a child).
    code = "import sys, wasm_image; e = wasm_image.fetch(sys.argv[1]); print(e.path)"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    done = run_python(code, f"file://{module_file}", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(tmp_path / "xdg" / "wasm-image" / "modules"))


# ---- bad inputs -----------------------------------------------------------------------


def test_bad_inputs_are_typed_and_leave_the_cache_consistent(
    tb: Testbed, repo: str, module_bytes: bytes, tmp_path: Path
) -> None:
    _push(tb, module_bytes, repo, "v1")
    cache = wasm_image.Cache(dir=tmp_path / "c")
    client = _client(tb, cache)
    good = f"oci://{tb.host('plain')}/{repo}:v1"
    client.fetch(good).release()
    for bad, error in [
        ("oci://", wasm_image.InvalidReferenceError),
        ("oci://Bad Host/x", wasm_image.InvalidReferenceError),
        ("https://", wasm_image.InvalidReferenceError),
        ("https://host-only", wasm_image.InvalidReferenceError),
        ("file://remote-host/x.wasm", wasm_image.InvalidReferenceError),
        ("gopher://x/y", wasm_image.InvalidReferenceError),
    ]:
        with pytest.raises(error):
            client.fetch(bad)
    for digest in ["sha256:xyz", "12ab", "md5:" + "0" * 32, ""]:
        with pytest.raises(wasm_image.InvalidArgumentError, match="expected digest"):
            client.fetch(good, expected_digest=digest)
    with pytest.raises(wasm_image.InvalidArgumentError, match="policy"):
        client.fetch(good, policy="sometimes")
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Cache(dir=tmp_path / "c", tag_ttl=-1)

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(wasm_image.InvalidArgumentError, match="not a directory"):
        wasm_image.Cache(dir=blocker)
    with pytest.raises(wasm_image.IoError):
        wasm_image.Cache(dir=blocker / "sub")
    assert [e.module_digest for e in cache.entries()] == [sha256(module_bytes)]
    assert_consistent(cache)


def test_an_unwritable_cache_dir_is_an_io_error(
    tb: Testbed, repo: str, module_bytes: bytes, tmp_path: Path
) -> None:
    _push(tb, module_bytes, repo, "v1")
    loc = f"{tb.host('plain')}/{repo}:v1"
    ro = tmp_path / "ro"
    ro.mkdir()
    cache = wasm_image.Cache(dir=ro / "c")
    if os.geteuid() == 0:
        # Root writes through permission bits: make the directory a read-only bind mount.
        for argv in (["mount", "--bind", str(ro), str(ro)], ["mount", "-o", "remount,bind,ro", str(ro)]):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(ro)], capture_output=True)
                pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    else:
        for d in [ro, *(ro / "c").rglob("*")]:
            if d.is_dir():
                d.chmod(0o555)
    try:
        with pytest.raises(wasm_image.IoError):
            _client(tb, cache).fetch(loc)
        with pytest.raises(wasm_image.IoError):
            wasm_image.Cache(dir=ro / "new")
        assert cache.entries() == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
        else:
            for d in [ro, *(ro / "c").rglob("*")]:
                if d.is_dir():
                    d.chmod(0o755)


def _tiny_filesystem(path: Path) -> Optional[str]:
    """Mounts a 256 KiB tmpfs at path; returns why not when that is impossible here."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


def test_a_full_disk_is_an_io_error_and_leaves_nothing(
    tb: Testbed, repo: str, module_bytes: bytes, tmp_path: Path
) -> None:
    big = with_custom_section(module_bytes, 1024 * 1024)
    _push(tb, big, repo, "v1")
    loc = f"{tb.host('plain')}/{repo}:v1"
    small_dir = tmp_path / "tiny"
    why = _tiny_filesystem(small_dir)
    if why is None:
        try:
            cache = wasm_image.Cache(dir=small_dir / "c")
            with pytest.raises(wasm_image.IoError):
                _client(tb, cache).fetch(loc)
            assert cache.entries() == []
            assert not any((small_dir / "c" / "staging").iterdir())
            assert not any((small_dir / "c" / "modules").iterdir())
        finally:
            subprocess.run(["umount", "-l", str(small_dir)], capture_output=True)
    else:
        # No tmpfs here: a file-size limit makes the write fail the same way (EFBIG).
        code = textwrap.dedent(
            """
            import resource, signal, sys, wasm_image
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
            cache = wasm_image.Cache(dir=sys.argv[1])
            client = wasm_image.Client(cache=cache, insecure=[sys.argv[3]], use_config_files=False)
            try:
                client.fetch(sys.argv[2])
            except wasm_image.IoError as e:
                print("IO", len(cache.entries()))
            """
        )
        done = run_python(code, str(tmp_path / "c"), loc, tb.host("plain"))
        assert done.stdout.split() == ["IO", "0"], done.stderr
    roomy = wasm_image.Cache(dir=tmp_path / "roomy")
    with _client(tb, roomy).fetch(loc) as entry:
        assert entry.module == big


# ---- the command line -----------------------------------------------------------------


def test_cli_fetch_and_cache_verbs(
    tb: Testbed, repo: str, module_bytes: bytes, tmp_path: Path, cli_command: List[str]
) -> None:
    def _cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli_command, *args], capture_output=True, text=True, timeout=120)

    manifest = _push(tb, module_bytes, repo, "v1")
    cdir = str(tmp_path / "c")
    loc = f"oci://{tb.host('plain')}/{repo}:v1"
    done = _cli("--insecure", tb.host("plain"), "fetch", loc, "--sha256", manifest.split(":")[1], "--cache-dir", cdir)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.read_bytes() == module_bytes
    done = _cli("fetch", loc, "--policy", "never", "--cache-dir", cdir, "--json")
    assert json.loads(done.stdout)["module_digest"] == sha256(module_bytes)
    done = _cli("--insecure", tb.host("plain"), "fetch", loc, "--sha256", "0" * 64, "--cache-dir", cdir, "--policy", "always")
    assert done.returncode == 18 and "DIGEST_MISMATCH" in done.stderr
    done = _cli("fetch", f"oci://{tb.host('plain')}/{repo}:nope", "--policy", "never", "--cache-dir", cdir)
    assert done.returncode == 13
    done = _cli("cache", "list", "--cache-dir", cdir, "--json")
    listed = json.loads(done.stdout)["entries"]
    assert [e["module_digest"] for e in listed] == [sha256(module_bytes)] and listed[0]["manifest_digests"] == [manifest]
    assert sha256(module_bytes) in _cli("cache", "list", "--cache-dir", cdir).stdout
    assert _cli("cache", "verify", "--cache-dir", cdir).stdout.strip().endswith("dropped 0")
    done = _cli("cache", "gc", "--max-bytes", "0", "--cache-dir", cdir, "--json")
    assert json.loads(done.stdout)["removed"] == [sha256(module_bytes)]
    assert not path.exists()
