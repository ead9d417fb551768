"""The Python API against the test bed's real registries (plain, basic, TLS, token,
mirror, fault proxy) and the images buildah and skopeo made."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List
from urllib.parse import urlencode

import pytest

import wasm_image
from conftest import sha256, validate
from testbed import Testbed, basic_auth_header, http_request

# ---- reading what other tools wrote ----------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    ["buildah-oci", "buildah-docker", "buildah-multilayer", "oci-layout", "oci-archive", "docker-archive"],
)
def test_pull_images_made_by_buildah_and_skopeo(
    tb: Testbed, registry_client: wasm_image.Client, fixture: str
) -> None:
    img = registry_client.pull(tb.fixtures[fixture])
    validate(img.module)
    assert img.module_digest == tb.fixtures["module_sha256"] == sha256(img.module)
    assert img.module_size == tb.fixtures["module_size"]
    assert img.variant == "compat"
    assert img.manifest_digest == sha256(img.manifest)
    digests = tb.fixtures["digests"]
    if fixture in digests:
        assert img.manifest_digest == digests[fixture]
    if fixture == "buildah-oci":
        assert img.annotations["module.wasm.image/variant"] == "compat"
        assert registry_client.resolve(tb.fixtures[fixture]) == digests[fixture]


def test_push_pull_copy_resolve_on_a_registry(
    tb: Testbed, registry_client: wasm_image.Client, module_bytes: bytes, repo: str, tmp_path: Path
) -> None:
    plain = tb.host("plain")
    for variant in ("oci", "compat"):
        built = wasm_image.build(module_bytes, variant=variant, root_ids=["root"])
        location = f"{plain}/{repo}:{variant}"
        assert registry_client.push(built, location) == built.manifest_digest
        assert registry_client.resolve(location) == built.manifest_digest
        pulled = registry_client.pull(location)
        validate(pulled.module)
        assert pulled.module == module_bytes
        assert pulled.variant == variant
        assert pulled.manifest == built.manifest
        assert pulled.runtime_config is not None and pulled.runtime_config.root_ids == ["root"]
        # By digest, and with the docker:// prefix.
        assert registry_client.pull(f"docker://{plain}/{repo}@{built.manifest_digest}").module == module_bytes
    # Registry to registry, registry to a layout, and back: digests never change.
    digest = registry_client.resolve(f"{plain}/{repo}:oci")
    assert registry_client.copy(f"{plain}/{repo}:oci", f"{plain}/{repo}-copy:v1") == digest
    assert registry_client.copy(f"{plain}/{repo}:oci", f"oci:{tmp_path}/layout:v1") == digest
    assert registry_client.copy(f"oci:{tmp_path}/layout:v1", f"{plain}/{repo}-back:v1") == digest
    info = registry_client.pull_to_file(f"{plain}/{repo}-back:v1", tmp_path / "m.wasm")
    assert info.manifest_digest == digest
    assert (tmp_path / "m.wasm").read_bytes() == module_bytes


def test_module_level_functions_use_insecure_free_defaults(tb: Testbed, module_bytes: bytes, repo: str) -> None:
    # The default client never downgrades to plain HTTP: the plain registry fails.
    with pytest.raises(wasm_image.NetworkError) as info:
        wasm_image.pull(f"{tb.host('plain')}/{repo}:v1")
    assert info.value.kind == "NETWORK"


def test_progress_on_registry_transfers(
    tb: Testbed, registry_client: wasm_image.Client, big_module: bytes, repo: str
) -> None:
    location = f"{tb.host('plain')}/{repo}:v1"
    pushed: List[wasm_image.ProgressEvent] = []
    registry_client.push(wasm_image.build(big_module), location, progress=pushed.append)
    pulled: List[wasm_image.ProgressEvent] = []
    img = registry_client.pull(location, progress=pulled.append)
    for events in (pushed, pulled):
        module_events = [e for e in events if e.digest == img.module_digest]
        assert module_events and module_events[-1].done == module_events[-1].total == len(big_module)
        dones = [e.done for e in module_events]
        assert dones == sorted(dones)


def test_threads_pulling_one_image_share_one_download(
    tb: Testbed, registry_client: wasm_image.Client, big_module: bytes, repo: str, faults: Callable[..., None]
) -> None:
    registry_client.push(wasm_image.build(big_module), f"{tb.host('plain')}/{repo}:v1")
    layer = f"{repo}/blobs/{sha256(big_module)}"
    # The first download is held long enough for every thread to be waiting for it.
    faults(match=layer, method="GET", action="delay", seconds=10, times=1)
    location = f"{tb.host('faulty')}/{repo}:v1"
    start = threading.Barrier(8)
    events: List[List[wasm_image.ProgressEvent]] = [[] for _ in range(8)]

    def pull(i: int) -> bytes:
        start.wait()
        return registry_client.pull(location, progress=events[i].append).module

    with ThreadPoolExecutor(max_workers=8) as pool:
        modules = list(pool.map(pull, range(8)))
    assert all(m == big_module for m in modules)
    # Equal bytes, yet each caller owns its own object.
    assert len({id(m) for m in modules}) == 8
    assert sum(1 for e in tb.fault_log(match=layer) if e["method"] == "GET") == 1
    for own in events:
        module_events = [e for e in own if e.digest == sha256(big_module)]
        assert module_events[-1].done == module_events[-1].total == len(big_module)


# ---- authentication ----------------------------------------------------------------------


def test_basic_auth(tb: Testbed, module_bytes: bytes, repo: str) -> None:
    basic = tb["basic"]
    location = tb.fixtures["basic"]
    anonymous = wasm_image.Client(insecure=[basic["host"]], use_config_files=False)
    with pytest.raises(wasm_image.UnauthorizedError) as info:
        anonymous.pull(location)
    assert info.value.status == 401
    wrong = wasm_image.Client(
        insecure=[basic["host"]], use_config_files=False, credentials={basic["host"]: ("alice", "wrong")}
    )
    with pytest.raises(wasm_image.UnauthorizedError) as info:
        wrong.pull(location)
    assert "wrong" not in str(info.value)
    good = wasm_image.Client(
        insecure=[basic["host"]],
        use_config_files=False,
        credentials={basic["host"]: (basic["username"], basic["password"])},
    )
    validate(good.pull(location).module)
    assert good.push(wasm_image.build(module_bytes), f"{basic['host']}/{repo}:v1")
    assert basic["password"] not in repr(good)


def test_docker_config_bytes(tb: Testbed) -> None:
    basic = tb["basic"]
    auth = base64.b64encode(f"{basic['username']}:{basic['password']}".encode()).decode()
    secret = json.dumps({"auths": {basic["host"]: {"auth": auth}}}).encode()
    client = wasm_image.Client(insecure=[basic["host"]], use_config_files=False, docker_config=secret)
    assert client.pull(tb.fixtures["basic"]).module_digest == tb.fixtures["module_sha256"]


def test_docker_config_file_from_environment(tb: Testbed, tmp_path: Path) -> None:
    basic = tb["basic"]
    auth = base64.b64encode(f"{basic['username']}:{basic['password']}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {basic["host"]: {"auth": auth}}}))
    code = (
        "import sys, wasm_image\n"
        "c = wasm_image.Client(insecure=[sys.argv[1]])\n"
        "print(c.pull(sys.argv[2]).module_digest)\n"
    )
    from conftest import run_python

    env = {**__import__("os").environ, "DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    done = run_python(code, basic["host"], tb.fixtures["basic"], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == tb.fixtures["module_sha256"]
    # use_config_files=False ignores the same file.
    code_off = code.replace("insecure=[sys.argv[1]]", "insecure=[sys.argv[1]], use_config_files=False")
    done = run_python(code_off, basic["host"], tb.fixtures["basic"], env=env)
    assert done.returncode != 0 and "UnauthorizedError" in done.stderr


def test_token_auth(tb: Testbed) -> None:
    token = tb["token"]
    anonymous = wasm_image.Client(insecure=[token["host"]], use_config_files=False)
    assert anonymous.pull(tb.fixtures["token-public"]).module_digest == tb.fixtures["module_sha256"]
    with pytest.raises(wasm_image.UnauthorizedError):
        anonymous.pull(tb.fixtures["token-private"])
    with_password = wasm_image.Client(
        insecure=[token["host"]],
        use_config_files=False,
        credentials={token["host"]: (token["username"], token["password"])},
    )
    assert with_password.pull(tb.fixtures["token-private"]).module_digest == tb.fixtures["module_sha256"]


def test_bearer_token_given_as_is(tb: Testbed) -> None:
    token = tb["token"]
    repo = tb.fixtures["token-private"].split("/", 1)[1].rsplit(":", 1)[0]
    query = urlencode({"service": "testbed-registry", "scope": f"repository:{repo}:pull"})
    status, _, body = http_request(
        "GET",
        f"{token['token_server']}/token?{query}",
        headers={"Authorization": basic_auth_header(token["username"], token["password"])},
    )
    assert status == 200
    bearer = json.loads(body)["token"]
    client = wasm_image.Client(insecure=[token["host"]], use_config_files=False, credentials={token["host"]: bearer})
    assert client.pull(tb.fixtures["token-private"]).module_digest == tb.fixtures["module_sha256"]
    assert bearer not in repr(client)


# ---- TLS ---------------------------------------------------------------------------------


def test_tls_with_extra_ca(tb: Testbed) -> None:
    location = tb.fixtures["tls"]
    with pytest.raises(wasm_image.NetworkError) as info:
        wasm_image.Client(use_config_files=False).pull(location)
    assert "certificate" in str(info.value)
    ca_path = tb["tls"]["ca_cert"]
    for ca in (ca_path, Path(ca_path), Path(ca_path).read_bytes()):
        client = wasm_image.Client(use_config_files=False, ca_certs=[ca])
        assert client.pull(location).module_digest == tb.fixtures["module_sha256"]


def test_insecure_is_an_explicit_allow_list(tb: Testbed, registry_client: wasm_image.Client) -> None:
    location = tb.fixtures["buildah-oci"]
    other = wasm_image.Client(insecure=[tb.host("basic")], use_config_files=False)
    with pytest.raises(wasm_image.NetworkError):
        other.pull(location)
    assert registry_client.pull(location).variant == "compat"


# ---- mirrors, platform, limits -------------------------------------------------------------


def test_mirror_is_used_before_the_registry(
    tb: Testbed, registry_client: wasm_image.Client, module_bytes: bytes, repo: str, faults: Callable[..., None]
) -> None:
    registry_client.push(wasm_image.build(module_bytes), f"{tb.host('plain')}/{repo}:v1")
    # The faulty proxy fronts the same registry; make it fail for this repository.
    faults(action="status", status=500, times=-1)
    insecure = [tb.host("faulty"), tb.host("mirror")]
    no_mirror = wasm_image.Client(insecure=insecure, use_config_files=False, retries=0)
    with pytest.raises(wasm_image.RegistryError):
        no_mirror.pull(f"{tb.host('faulty')}/{repo}:v1")
    mirrored = wasm_image.Client(
        insecure=insecure, use_config_files=False, retries=0, mirrors={tb.host("faulty"): [tb.host("mirror")]}
    )
    assert mirrored.pull(f"{tb.host('faulty')}/{repo}@{wasm_image.build(module_bytes).manifest_digest}").module == (
        module_bytes
    )


def test_platform_options(tb: Testbed, registry_client: wasm_image.Client) -> None:
    # A single manifest has no platform to choose; the preference is accepted and ignored.
    location = tb.fixtures["buildah-oci"]
    assert registry_client.pull(location, platform="wasip1/wasm").variant == "compat"
    client = wasm_image.Client(insecure=[tb.host("plain")], platform="linux/amd64", use_config_files=False)
    assert client.pull(location).variant == "compat"


def test_limits_on_a_registry(tb: Testbed) -> None:
    client = wasm_image.Client(
        insecure=[tb.host("plain")], use_config_files=False, limits=wasm_image.Limits(max_module_bytes=100)
    )
    with pytest.raises(wasm_image.LimitExceededError):
        client.pull(tb.fixtures["buildah-oci"])


# ---- every failure a registry can cause -------------------------------------------------------


def _faulty_client(tb: Testbed, **options: object) -> wasm_image.Client:
    return wasm_image.Client(
        insecure=[tb.host("plain"), tb.host("faulty")],
        use_config_files=False,
        retry_base_delay=0.01,
        retry_max_delay=0.05,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture()
def pushed(tb: Testbed, registry_client: wasm_image.Client, module_bytes: bytes, repo: str) -> str:
    """This test's image in the plain registry; returns its location via the fault proxy."""
    registry_client.push(wasm_image.build(module_bytes), f"{tb.host('plain')}/{repo}:v1")
    return f"{tb.host('faulty')}/{repo}:v1"


def test_not_found_carries_registry_detail(tb: Testbed, registry_client: wasm_image.Client, repo: str) -> None:
    with pytest.raises(wasm_image.NotFoundError) as info:
        registry_client.pull(f"{tb.host('plain')}/{repo}:missing")
    assert info.value.status == 404
    assert info.value.code in {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}
    assert repo in str(info.value)


def test_forbidden(tb: Testbed, pushed: str, faults: Callable[..., None]) -> None:
    faults(action="status", status=403, times=-1)
    with pytest.raises(wasm_image.ForbiddenError) as info:
        _faulty_client(tb, retries=0).pull(pushed)
    assert info.value.status == 403


def test_rate_limited(tb: Testbed, pushed: str, faults: Callable[..., None]) -> None:
    faults(action="status", status=429, retry_after=0, times=-1)
    with pytest.raises(wasm_image.RateLimitedError) as info:
        _faulty_client(tb, retries=1).pull(pushed)
    assert info.value.status == 429


def test_registry_error_with_status(tb: Testbed, pushed: str, faults: Callable[..., None]) -> None:
    faults(action="status", status=500, times=-1)
    with pytest.raises(wasm_image.RegistryError) as info:
        _faulty_client(tb, retries=0).pull(pushed)
    assert info.value.status == 500


def test_retries_recover_from_transient_errors(
    tb: Testbed, pushed: str, faults: Callable[..., None], repo: str, module_bytes: bytes
) -> None:
    faults(action="status", status=503, times=2)
    assert _faulty_client(tb, retries=3).pull(pushed).module == module_bytes
    statuses = [entry["status"] for entry in tb.fault_log(match=repo)]
    assert statuses.count(503) == 2


def test_network_error_on_refused_connection() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = wasm_image.Client(insecure=[f"127.0.0.1:{port}"], retries=0, use_config_files=False)
    with pytest.raises(wasm_image.NetworkError) as info:
        client.pull(f"127.0.0.1:{port}/x/y:z")
    assert isinstance(info.value, ConnectionError)


def test_timeout_on_stalled_download(
    tb: Testbed, registry_client: wasm_image.Client, big_module: bytes, repo: str, faults: Callable[..., None]
) -> None:
    registry_client.push(wasm_image.build(big_module), f"{tb.host('plain')}/{repo}:v1")
    faults(match=f"{repo}/blobs/", method="GET", action="stall", seconds=20, times=-1)
    client = _faulty_client(tb, retries=0, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(wasm_image.TimeoutError) as info:
        client.pull(f"{tb.host('faulty')}/{repo}:v1")
    assert time.monotonic() - started < 10
    assert isinstance(info.value, TimeoutError)


def test_connect_timeout(tb: Testbed) -> None:
    # A listening socket that never accepts: the kernel completes the handshake only
    # while the backlog has room, so fill it first.
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        client = wasm_image.Client(
            insecure=[f"127.0.0.1:{port}"], retries=0, connect_timeout=0.3, read_timeout=0.3, use_config_files=False
        )
        started = time.monotonic()
        with pytest.raises((wasm_image.TimeoutError, wasm_image.NetworkError)):
            client.pull(f"127.0.0.1:{port}/x/y:z")
        assert time.monotonic() - started < 10
    finally:
        for c in fillers:
            c.close()
        server.close()


def test_invalid_format_from_a_registry(tb: Testbed, registry_client: wasm_image.Client, repo: str) -> None:
    # An ordinary (non-Wasm) image: a config and one tar layer without any .wasm file.
    import hashlib
    import io
    import tarfile

    plain = tb.host("plain")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"#!/bin/sh\necho hi\n"
        entry = tarfile.TarInfo("bin/hello")
        entry.size = len(data)
        tar.addfile(entry, io.BytesIO(data))
    layer = buf.getvalue()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
    ).encode()

    def upload(blob: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        status, headers, _ = http_request("POST", f"http://{plain}/v2/{repo}/blobs/uploads/")
        assert status == 202
        location = headers["Location"]
        sep = "&" if "?" in location else "?"
        if location.startswith("/"):
            location = f"http://{plain}{location}"
        status, _, _ = http_request(
            "PUT", f"{location}{sep}digest={digest}", body=blob, headers={"Content-Type": "application/octet-stream"}
        )
        assert status == 201
        return digest

    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": upload(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": upload(layer), "size": len(layer)}],
        }
    ).encode()
    status, _, _ = http_request(
        "PUT",
        f"http://{plain}/v2/{repo}/manifests/v1",
        body=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert status == 201
    with pytest.raises(wasm_image.InvalidFormatError) as info:
        registry_client.pull(f"{plain}/{repo}:v1")
    assert info.value.kind == "INVALID_FORMAT"


def test_broken_download_is_resumed_and_logged(
    tb: Testbed,
    registry_client: wasm_image.Client,
    big_module: bytes,
    repo: str,
    faults: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry_client.push(wasm_image.build(big_module), f"{tb.host('plain')}/{repo}:v1")
    faults(match=f"{repo}/blobs/{sha256(big_module)}", method="GET", action="reset_after", bytes=100_000, times=1)
    with caplog.at_level("WARNING", logger="wasm_image"):
        img = _faulty_client(tb, retries=2).pull(f"{tb.host('faulty')}/{repo}:v1")
    assert img.module == big_module
    warnings = [r for r in caplog.records if r.name == "wasm_image" and r.levelname == "WARNING"]
    assert warnings, "the resumed download was not logged"
    assert any(getattr(r, "wasm_image_target", "").startswith("wasm_image") for r in warnings)
