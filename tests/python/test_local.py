"""The Python API on local stores (oci:, oci-archive:): runs without any server."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

import wasm_image
from conftest import sha256, validate

# ---- build ----------------------------------------------------------------------------


def test_build_defaults_and_every_attribute(module_bytes: bytes) -> None:
    img = wasm_image.build(module_bytes)
    assert isinstance(img, wasm_image.WasmImage)
    # A bytes argument is kept as is: .module is the very same object, no copy.
    assert img.module is module_bytes
    assert img.module_digest == sha256(module_bytes)
    assert img.module_size == len(module_bytes)
    assert img.variant == "oci"
    assert img.index_digest is None
    assert img.manifest_digest == sha256(img.manifest)
    manifest = json.loads(img.manifest)
    assert manifest["mediaType"] == img.manifest_media_type == "application/vnd.oci.image.manifest.v1+json"
    assert json.loads(img.config)["type"] == "envoy_proxy"
    rc = img.runtime_config
    assert rc is not None
    assert rc.type == "envoy_proxy"
    # Taken from the module's proxy_abi_version_0_2_1 export.
    assert rc.abi_versions == ["v0.2.1"]
    assert rc.root_ids == []
    assert rc.raw == {"type": "envoy_proxy", "abiVersions": ["v0.2.1"]}
    assert img.annotations["module.wasm.runtime/type"] == "envoy_proxy"
    assert "WasmImage" in repr(img) and img.manifest_digest in repr(img)
    assert "RuntimeConfig(type='envoy_proxy'" in repr(rc)


def test_build_with_every_option(module_bytes: bytes) -> None:
    img = wasm_image.build(
        module_bytes,
        variant="compat",
        runtime_type="custom_runtime",
        abi_versions=["v0.2.0", "v0.2.1"],
        root_ids=["add_header_root_id"],
        annotations={"org.example/team": "edge"},
        manifest_format="docker",
        source_date_epoch=1_700_000_000,
    )
    assert img.variant == "compat"
    assert img.manifest_media_type == "application/vnd.docker.distribution.manifest.v2+json"
    rc = img.runtime_config
    assert rc is not None
    assert (rc.type, rc.abi_versions, rc.root_ids) == ("custom_runtime", ["v0.2.0", "v0.2.1"], ["add_header_root_id"])
    assert "2023-11-14T22:13:20Z" in img.config.decode()
    oci = wasm_image.build(module_bytes, variant="compat", annotations={"org.example/team": "edge"})
    assert oci.annotations["org.example/team"] == "edge"
    assert oci.annotations["module.wasm.image/variant"] == "compat"


def test_build_is_reproducible_and_epoch_changes_it(module_bytes: bytes) -> None:
    a = wasm_image.build(module_bytes, variant="compat")
    b = wasm_image.build(bytearray(module_bytes), variant="compat")
    assert a.manifest_digest == b.manifest_digest
    assert a.module == b.module
    c = wasm_image.build(module_bytes, variant="compat", source_date_epoch=1)
    assert c.manifest_digest != a.manifest_digest


def test_build_from_str_and_pathlike(tmp_path: Path, module_bytes: bytes) -> None:
    path = tmp_path / "plugin.wasm"
    path.write_bytes(module_bytes)
    from_path = wasm_image.build(path)
    from_str = wasm_image.build(str(path))
    assert from_path.manifest_digest == from_str.manifest_digest == wasm_image.build(module_bytes).manifest_digest
    assert from_path.module == module_bytes


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variant": "nope"},
        {"variant": "wasm-artifact"},  # a format we read but do not write
        {"manifest_format": "nope"},
        {"manifest_format": "docker"},  # the oci variant has OCI manifests only
    ],
)
def test_build_rejects_bad_options(module_bytes: bytes, kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(wasm_image.InvalidArgumentError) as info:
        wasm_image.build(module_bytes, **kwargs)
    assert info.value.kind == "INVALID_ARGUMENT"
    assert isinstance(info.value, ValueError)


def test_build_refuses_what_is_not_wasm() -> None:
    with pytest.raises(wasm_image.InvalidFormatError) as info:
        wasm_image.build(b"#!/bin/sh\necho hello\n")
    assert info.value.kind == "INVALID_FORMAT"
    assert "not WebAssembly" in str(info.value)


def test_build_file_errors(tmp_path: Path) -> None:
    with pytest.raises(wasm_image.NotFoundError):
        wasm_image.build(tmp_path / "missing.wasm")
    with pytest.raises(wasm_image.InvalidArgumentError, match="is a directory"):
        wasm_image.build(tmp_path)
    with pytest.raises(TypeError):
        wasm_image.build(12345)  # type: ignore[arg-type]


def test_module_facts(tmp_path: Path, module_bytes: bytes) -> None:
    facts = wasm_image.module_facts(module_bytes)
    assert facts.kind == "core-module"
    assert facts.size == len(module_bytes)
    assert facts.imports == []
    assert "memory" in facts.exports and "proxy_on_vm_start" in facts.exports
    assert facts.proxy_abi_versions == ["v0.2.1"]
    path = tmp_path / "m.wasm"
    path.write_bytes(module_bytes)
    assert wasm_image.module_facts(path) == facts
    assert wasm_image.build(module_bytes).facts() == facts
    assert "ModuleFacts" in repr(facts)
    with pytest.raises(wasm_image.InvalidFormatError):
        wasm_image.module_facts(b"\x00asm\x01\x00\x00\x00\x07\x05")


# ---- push / pull / copy / resolve on oci: and oci-archive: ----------------------------


def test_push_pull_round_trip_oci_layout(store: str, module_bytes: bytes) -> None:
    built = wasm_image.build(module_bytes, root_ids=["r1"], annotations={"k": "v"})
    digest = wasm_image.push(built, f"oci:{store}:v1")
    assert digest == built.manifest_digest
    assert json.loads(Path(store, "index.json").read_text())["manifests"][0]["digest"] == digest

    pulled = wasm_image.pull(f"oci:{store}:v1")
    validate(pulled.module)
    assert pulled.module == module_bytes
    assert type(pulled.module) is bytes
    assert pulled.module is pulled.module  # made once, then cached
    for attr in ("module_digest", "manifest_digest", "variant", "annotations", "manifest", "config", "index_digest"):
        assert getattr(pulled, attr) == getattr(built, attr), attr
    assert pulled.runtime_config == built.runtime_config
    assert wasm_image.resolve(f"oci:{store}:v1") == digest
    assert wasm_image.pull(f"oci:{store}@{digest}").module_digest == built.module_digest


def test_pull_to_file_accepts_str_and_pathlike(tmp_path: Path, store: str, module_bytes: bytes) -> None:
    wasm_image.push(wasm_image.build(module_bytes), f"oci:{store}:v1")
    out = tmp_path / "out"
    out.mkdir()
    info = wasm_image.pull_to_file(f"oci:{store}:v1", out / "a.wasm")
    assert isinstance(info, wasm_image.ImageInfo)
    assert info.module_digest == sha256(module_bytes)
    assert info.module_size == len(module_bytes)
    assert info.variant == "oci"
    assert info.runtime_config is not None and info.runtime_config.abi_versions == ["v0.2.1"]
    assert "ImageInfo" in repr(info)
    wasm_image.pull_to_file(f"oci:{store}:v1", str(out / "b.wasm"))
    assert (out / "a.wasm").read_bytes() == (out / "b.wasm").read_bytes() == module_bytes
    assert sorted(os.listdir(out)) == ["a.wasm", "b.wasm"]  # no temporary files left
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.pull_to_file(f"oci:{store}:v1", out)  # a directory


def test_copy_between_layout_and_archive(tmp_path: Path, store: str, module_bytes: bytes) -> None:
    built = wasm_image.build(module_bytes, variant="compat")
    wasm_image.push(built, f"oci:{store}:v1")
    archive = tmp_path / "image.tar"
    assert wasm_image.copy(f"oci:{store}:v1", f"oci-archive:{archive}:v1") == built.manifest_digest
    assert archive.is_file()
    second = tmp_path / "second"
    assert wasm_image.copy(f"oci-archive:{archive}:v1", f"oci:{second}:again") == built.manifest_digest
    again = wasm_image.pull(f"oci:{second}:again")
    assert again.module == module_bytes and again.variant == "compat"


def test_push_pulled_image_elsewhere(tmp_path: Path, store: str, module_bytes: bytes) -> None:
    wasm_image.push(wasm_image.build(module_bytes), f"oci:{store}:v1")
    pulled = wasm_image.pull(f"oci:{store}:v1")
    other = tmp_path / "other"
    assert wasm_image.push(pulled, f"oci:{other}:copy") == pulled.manifest_digest
    assert wasm_image.pull(f"oci:{other}:copy").module == module_bytes


def test_progress_callback(store: str, big_module: bytes) -> None:
    events: List[wasm_image.ProgressEvent] = []
    callers: List[int] = []

    def progress(event: wasm_image.ProgressEvent) -> None:
        events.append(event)
        callers.append(threading.get_ident())

    img = wasm_image.build(big_module)
    wasm_image.push(img, f"oci:{store}:v1", progress=progress)
    assert events, "push reported no progress"
    wasm_image.pull(f"oci:{store}:v1", progress=progress)
    module_events = [e for e in events if e.digest == img.module_digest]
    assert module_events
    assert all(0 <= e.done <= e.total == len(big_module) for e in module_events)
    assert module_events[-1].done == len(big_module)
    assert module_events[-1].media_type == "application/vnd.module.wasm.content.layer.v1+wasm"
    assert set(callers) == {threading.get_ident()}, "progress must run on the calling thread"
    assert "ProgressEvent(digest='sha256:" in repr(events[0])
    # The client-wide callback is used when a call gives none.
    seen: List[wasm_image.ProgressEvent] = []
    wasm_image.Client(progress=seen.append).pull(f"oci:{store}:v1")
    assert seen


def test_progress_callback_exception_stops_the_call(tmp_path: Path, store: str, big_module: bytes) -> None:
    wasm_image.push(wasm_image.build(big_module), f"oci:{store}:v1")

    class Stop(Exception):
        pass

    def progress(event: wasm_image.ProgressEvent) -> None:
        raise Stop("enough")

    # Raised even when the (fast, local) transfer finished before the next check.
    with pytest.raises(Stop):
        wasm_image.pull_to_file(f"oci:{store}:v1", tmp_path / "x.wasm", progress=progress)
    with pytest.raises(Stop):
        wasm_image.push(wasm_image.build(big_module), f"oci:{tmp_path / 'other'}:v1", progress=progress)


# ---- errors -----------------------------------------------------------------------------


def test_error_classes() -> None:
    expected = {
        "InvalidArgumentError": "INVALID_ARGUMENT",
        "InvalidReferenceError": "INVALID_REFERENCE",
        "NotFoundError": "NOT_FOUND",
        "UnauthorizedError": "UNAUTHORIZED",
        "ForbiddenError": "FORBIDDEN",
        "RateLimitedError": "RATE_LIMITED",
        "InvalidFormatError": "INVALID_FORMAT",
        "DigestMismatchError": "DIGEST_MISMATCH",
        "LimitExceededError": "LIMIT_EXCEEDED",
        "NetworkError": "NETWORK",
        "TimeoutError": "TIMEOUT",
        "CancelledError": "CANCELLED",
        "IoError": "IO",
        "RegistryError": "REGISTRY",
        "InternalError": "INTERNAL",
        "SignatureInvalidError": "SIGNATURE_INVALID",
    }
    for name, kind in expected.items():
        cls = getattr(wasm_image, name)
        assert issubclass(cls, wasm_image.WasmImageError)
        assert cls.kind == kind
        err = cls("boom", 500, "CODE")
        assert (err.kind, str(err), err.message, err.status, err.code) == (kind, "boom", "boom", 500, "CODE")
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls and (back.message, back.status, back.code) == ("boom", 500, "CODE")
    # Familiar builtins still catch the obvious ones.
    assert issubclass(wasm_image.TimeoutError, TimeoutError)
    assert issubclass(wasm_image.NetworkError, ConnectionError)
    assert issubclass(wasm_image.IoError, OSError)
    assert issubclass(wasm_image.InvalidArgumentError, ValueError)
    assert wasm_image.TimeoutError is not TimeoutError


@pytest.mark.parametrize("location", ["", "Bad Ref", "127.0.0.1:5000/UPPER:x", "oci:", "host/repo@sha256:short"])
def test_invalid_reference(location: str) -> None:
    with pytest.raises(wasm_image.InvalidReferenceError) as info:
        wasm_image.pull(location)
    assert info.value.kind == "INVALID_REFERENCE"


def test_not_found(store: str, module_bytes: bytes) -> None:
    with pytest.raises(wasm_image.NotFoundError) as info:
        wasm_image.pull(f"oci:{store}:v1")
    assert store in str(info.value)
    wasm_image.push(wasm_image.build(module_bytes), f"oci:{store}:v1")
    with pytest.raises(wasm_image.NotFoundError) as info:
        wasm_image.resolve(f"oci:{store}:v2")
    assert "v2" in str(info.value)


def test_digest_mismatch_on_tampered_blob(store: str, module_bytes: bytes) -> None:
    img = wasm_image.build(module_bytes)
    wasm_image.push(img, f"oci:{store}:v1")
    blob = Path(store, "blobs", "sha256", img.module_digest.split(":", 1)[1])
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    blob.write_bytes(bytes(data))
    with pytest.raises(wasm_image.DigestMismatchError) as info:
        wasm_image.pull(f"oci:{store}:v1")
    assert info.value.kind == "DIGEST_MISMATCH"


def test_limit_exceeded(store: str, module_bytes: bytes) -> None:
    wasm_image.push(wasm_image.build(module_bytes), f"oci:{store}:v1")
    small = wasm_image.Client(limits=wasm_image.Limits(max_module_bytes=16))
    assert small.limits.max_module_bytes == 16
    with pytest.raises(wasm_image.LimitExceededError):
        small.pull(f"oci:{store}:v1")
    tiny_metadata = wasm_image.Client(limits=wasm_image.Limits(max_metadata_bytes=10))
    with pytest.raises(wasm_image.LimitExceededError):
        tiny_metadata.pull(f"oci:{store}:v1")


def test_invalid_arguments(store: str) -> None:
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Client(read_timeout=-1)
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Client(platform="linux")
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.pull(f"oci:{store}:v1", platform="a/b/c/d")
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Client(ca_certs=[b"not a certificate"])
    with pytest.raises(wasm_image.NotFoundError):
        wasm_image.Client(ca_certs=[Path(store) / "missing.pem"])


def test_cancel_token(store: str, module_bytes: bytes) -> None:
    wasm_image.push(wasm_image.build(module_bytes), f"oci:{store}:v1")
    token = wasm_image.CancelToken()
    assert not token.cancelled
    token.cancel()
    assert token.cancelled
    assert "cancelled=True" in repr(token)
    with pytest.raises(wasm_image.CancelledError) as info:
        wasm_image.pull(f"oci:{store}:v1", cancel=token)
    assert info.value.kind == "CANCELLED"
    with pytest.raises(wasm_image.CancelledError):
        wasm_image.Client().resolve(f"oci:{store}:v1", cancel=token)


def test_io_error_kind_for_unreadable_store(tmp_path: Path) -> None:
    # A file where the layout directory should be.
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(wasm_image.WasmImageError) as info:
        wasm_image.pull(f"oci:{not_a_dir}:v1")
    assert info.value.kind in {"IO", "NOT_FOUND", "INVALID_FORMAT"}


# ---- options, repr, logging, threads ---------------------------------------------------


def test_limits_and_client_repr() -> None:
    default = wasm_image.Limits()
    assert default.max_module_bytes == 256 * 1024 * 1024
    custom = wasm_image.Limits(
        max_module_bytes=1,
        max_metadata_bytes=2,
        max_decompressed_bytes=3,
        max_tar_entries=4,
        max_index_depth=5,
        max_index_entries=6,
    )
    assert (
        custom.max_module_bytes,
        custom.max_metadata_bytes,
        custom.max_decompressed_bytes,
        custom.max_tar_entries,
        custom.max_index_depth,
        custom.max_index_entries,
    ) == (1, 2, 3, 4, 5, 6)
    assert custom == wasm_image.Limits(
        max_module_bytes=1,
        max_metadata_bytes=2,
        max_decompressed_bytes=3,
        max_tar_entries=4,
        max_index_depth=5,
        max_index_entries=6,
    )
    assert "max_tar_entries=4" in repr(custom)
    client = wasm_image.Client(
        credentials={"r.example:5000": ("alice", "s3cret-password"), "ghcr.io": "s3cret-token"},
        docker_config=b'{"auths": {}}',
        use_config_files=False,
        insecure=["r.example:5000"],
        connect_timeout=1.5,
        read_timeout=2,
        retries=0,
        retry_base_delay=0.01,
        retry_max_delay=0.1,
        limits=custom,
        mirrors={"docker.io": ["mirror.example"]},
        platform="wasip1/wasm",
        user_agent="tests/1.0",
    )
    text = repr(client)
    assert "s3cret" not in text
    assert "r.example:5000" in text and "mirror.example" in text and "wasip1/wasm" in text
    assert client.limits == custom


def test_logs_reach_python_logging(store: str, module_bytes: bytes, caplog: pytest.LogCaptureFixture) -> None:
    wasm_image.push(wasm_image.build(module_bytes), f"oci:{store}:v1")
    with caplog.at_level(logging.DEBUG, logger="wasm_image"):
        wasm_image.pull(f"oci:{store}:v1")
    records = [r for r in caplog.records if r.name == "wasm_image"]
    assert any("pulled" in r.getMessage() for r in records), [r.getMessage() for r in records]
    assert all(hasattr(r, "wasm_image_target") for r in records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wasm_image"):
        wasm_image.pull(f"oci:{store}:v1")
    assert not [r for r in caplog.records if r.name == "wasm_image" and r.levelno < logging.WARNING]


def test_threads_share_one_client(store: str, module_bytes: bytes) -> None:
    wasm_image.push(wasm_image.build(module_bytes), f"oci:{store}:v1")
    client = wasm_image.Client()
    results: List[str] = []
    errors: List[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(client.pull(f"oci:{store}:v1").module_digest)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results == [sha256(module_bytes)] * 40


# VmHWM, not ru_maxrss: the latter keeps the parent's high-water mark across exec.
PULL_AND_REPORT_RSS = """
import sys, wasm_image
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
before = peak()
img = wasm_image.pull(sys.argv[1])
module = img.module
assert module is img.module and len(module) == int(sys.argv[2])
print(peak() - before)
"""


@pytest.mark.parametrize("variant", ["oci", "compat"])
def test_pull_into_memory_holds_the_module_once(tmp_path: Path, module_bytes: bytes, variant: str) -> None:
    # A 48 MiB module: the header of a valid one plus a custom section of filler.
    size = 48 << 20
    payload = os.urandom(size - len(module_bytes) - 16)
    name = b"\x04fill"
    body = name + payload
    length = bytearray()
    n = len(body)
    while True:
        byte, n = n & 0x7F, n >> 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    module = module_bytes + b"\x00" + bytes(length) + body
    expected_len = len(module)
    wasm_image.push(wasm_image.build(module, variant=variant), f"oci:{tmp_path}/store:big")
    del module, payload, body
    done = subprocess.run(
        [sys.executable, "-c", PULL_AND_REPORT_RSS, f"oci:{tmp_path}/store:big", str(expected_len)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    grown = int(done.stdout)
    # One module's worth (48 MiB) plus working buffers (seen: 55 MiB); a second copy of
    # the module, as a copying binding makes, would show about 103 MiB.
    assert grown < size * 1.35, f"peak RSS grew by {grown / 2**20:.0f} MiB for a {size >> 20} MiB module"
