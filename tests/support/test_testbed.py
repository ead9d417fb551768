"""Smoke tests of the shared test bed itself (real servers, started by testbed.py).

Run: python3 tests/support/testbed.py start --state DIR
     WASM_IMAGE_TESTBED=DIR/testbed.json python3 -m pytest -q tests/support/test_testbed.py
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import (  # noqa: E402
    ENV_VAR,
    MANIFEST_ACCEPT,
    Testbed,
    basic_auth_header,
    http_request,
    parse_challenge,
)

pytestmark = pytest.mark.skipif(not os.environ.get(ENV_VAR), reason=f"${ENV_VAR} not set (no test bed)")


@pytest.fixture(scope="module")
def tb() -> Testbed:
    return Testbed.load()


def repo_of(location: str) -> tuple[str, str, str]:
    """'HOST/REPO:TAG' -> (host, repo, tag)."""
    host, _, rest = location.partition("/")
    repo, _, tag = rest.rpartition(":")
    return host, repo, tag


def get_manifest(base: str, repo: str, ref: str, **kw):
    headers = {"Accept": MANIFEST_ACCEPT, **kw.pop("headers", {})}
    return http_request("GET", f"{base}/v2/{repo}/manifests/{ref}", headers=headers, **kw)


# ---- plain, basic, tls -----------------------------------------------------------------


def test_plain_answers(tb):
    status, headers, _ = tb.request("plain", "GET", "/v2/")
    assert status == 200
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_basic_requires_credentials(tb):
    status, headers, _ = tb.request("basic", "GET", "/v2/")
    assert status == 401
    scheme, params = parse_challenge(headers["WWW-Authenticate"])
    assert scheme == "basic" and params.get("realm")

    good = basic_auth_header(tb["basic"]["username"], tb["basic"]["password"])
    assert tb.request("basic", "GET", "/v2/", headers={"Authorization": good})[0] == 200
    bad = basic_auth_header(tb["basic"]["username"], "not-the-password")
    assert tb.request("basic", "GET", "/v2/", headers={"Authorization": bad})[0] == 401


def test_tls_with_the_ca(tb):
    assert tb.request("tls", "GET", "/v2/")[0] == 200
    # Without the test bed's CA, verification fails.
    with pytest.raises((ssl.SSLError, OSError)) as info:
        http_request("GET", tb.base_url("tls") + "/v2/", context=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or isinstance(info.value, ssl.SSLError)
    # The certificate also names localhost.
    port = tb.host("tls").rsplit(":", 1)[1]
    status, _, _ = http_request("GET", f"https://localhost:{port}/v2/", context=tb.ssl_context())
    assert status == 200


# ---- token -------------------------------------------------------------------------------


def fetch_token(tb, scope: str | None, user: str | None = None, password: str | None = None):
    status, headers, _ = tb.request("token", "GET", "/v2/")
    assert status == 401
    scheme, params = parse_challenge(headers["WWW-Authenticate"])
    assert scheme == "bearer"
    assert params["realm"] == tb["token"]["token_server"] + "/token"
    query = {"service": params["service"]}
    if scope:
        query["scope"] = scope
    hdrs = {"Authorization": basic_auth_header(user, password or "")} if user is not None else {}
    return http_request("GET", params["realm"] + "?" + urlencode(query), headers=hdrs)


def test_token_flow_end_to_end(tb):
    _, repo, tag = repo_of(tb.fixtures["token-private"])
    status, _, body = fetch_token(tb, f"repository:{repo}:pull", tb["token"]["username"], tb["token"]["password"])
    assert status == 200
    answer = json.loads(body)
    assert set(answer) == {"token", "access_token"}, "no expires_in on purpose"
    bearer = {"Authorization": "Bearer " + answer["token"]}
    assert tb.request("token", "GET", "/v2/", headers=bearer)[0] == 200
    status, headers, manifest = get_manifest(tb.base_url("token"), repo, tag, headers=bearer)
    assert status == 200, manifest
    assert headers["Docker-Content-Digest"] == tb.fixtures["digests"]["buildah-oci"]
    # The token does not grant another repository.
    assert get_manifest(tb.base_url("token"), "other/thing", "latest", headers=bearer)[0] == 401


def test_token_rejections_and_anonymous_public_pull(tb):
    private_repo = repo_of(tb.fixtures["token-private"])[1]
    public_repo = repo_of(tb.fixtures["token-public"])[1]
    assert fetch_token(tb, f"repository:{private_repo}:pull", "bob", "wrong")[0] == 401
    assert fetch_token(tb, f"repository:{private_repo}:pull")[0] == 401  # anonymous, private

    status, _, body = fetch_token(tb, f"repository:{public_repo}:pull,push")  # anonymous, public
    assert status == 200
    token = json.loads(body)["token"]
    claims = json.loads(_b64url_decode(token.split(".")[1]))
    assert claims["access"] == [{"type": "repository", "name": public_repo, "actions": ["pull"]}]
    bearer = {"Authorization": "Bearer " + token}
    assert get_manifest(tb.base_url("token"), public_repo, "latest", headers=bearer)[0] == 200
    # Pull-only: an upload is refused.
    status, _, _ = tb.request("token", "POST", f"/v2/{public_repo}/blobs/uploads/", headers=bearer, body=b"")
    assert status == 401


def _b64url_decode(s: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---- mirror ------------------------------------------------------------------------------


def test_mirror_serves_a_fixture(tb):
    _, repo, tag = repo_of(tb.fixtures["buildah-oci"])
    status, headers, body = get_manifest(tb.base_url("mirror"), repo, tag)
    assert status == 200, body
    assert "sha256:" + hashlib.sha256(body).hexdigest() == tb.fixtures["digests"]["buildah-oci"]
    assert json.loads(body)["annotations"]["module.wasm.image/variant"] == "compat"


# ---- fixtures ----------------------------------------------------------------------------


def test_fixture_files(tb):
    fx = tb.fixtures
    data = Path(fx["module"]).read_bytes()
    assert data.startswith(b"\0asm\x01\0\0\0")
    assert "sha256:" + hashlib.sha256(data).hexdigest() == fx["module_sha256"]
    assert Path(fx["oci-layout"].split(":")[1], "index.json").is_file()
    assert Path(fx["oci-archive"].split(":")[1]).is_file()
    assert Path(fx["docker-archive"].split(":", 1)[1]).is_file()
    _, repo, tag = repo_of(fx["buildah-multilayer"])
    status, _, body = get_manifest(tb.base_url("plain"), repo, tag)
    assert status == 200 and len(json.loads(body)["layers"]) == 2


# ---- fault proxy -------------------------------------------------------------------------


@pytest.fixture
def unique_repo(tb):
    """A fresh copy of the OCI fixture under a unique name, so rules and log entries of
    parallel tests never mix."""
    name = f"smoke/{uuid.uuid4().hex[:12]}"
    _, src_repo, tag = repo_of(tb.fixtures["buildah-oci"])
    _, _, manifest = get_manifest(tb.base_url("plain"), src_repo, tag)
    blobs = [json.loads(manifest)["config"]] + json.loads(manifest)["layers"]
    for d in blobs:
        status, _, _ = tb.request(
            "plain", "POST", f"/v2/{name}/blobs/uploads/?mount={d['digest']}&from={src_repo}", body=b""
        )
        assert status == 201
    status, _, _ = tb.request(
        "plain", "PUT", f"/v2/{name}/manifests/latest", body=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert status == 201
    yield name, json.loads(manifest)
    tb.clear_faults(match=name)


def test_faulty_429_fires_once_then_passes_through(tb, unique_repo):
    name, _ = unique_repo
    tb.add_faults([{"match": f"/v2/{name}/manifests/", "method": "GET", "action": "status", "status": 429,
                    "retry_after": 1, "times": 1}])
    base = tb.base_url("faulty")
    status, headers, body = get_manifest(base, name, "latest")
    assert status == 429
    assert headers["Retry-After"] == "1"
    assert json.loads(body)["errors"][0]["code"] == "TOOMANYREQUESTS"
    status, headers, body = get_manifest(base, name, "latest")
    assert status == 200
    assert headers["Docker-Content-Digest"] == tb.fixtures["digests"]["buildah-oci"]
    log = tb.fault_log(match=name)
    assert [(e["method"], e["status"], e["fault"]) for e in log] == [("GET", 429, "status"), ("GET", 200, None)]


def test_faulty_log_holds_a_request_as_soon_as_its_answer_starts(tb, unique_repo):
    """The proxy records a request before answering it: a client holding the status line
    finds the request in the log, even while the proxy still sleeps before the body."""
    name, _ = unique_repo
    tb.add_faults({"match": f"/v2/{name}/manifests/", "method": "GET", "action": "stall", "bytes": 1,
                   "seconds": 2})
    host, port = tb.host("faulty").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request("GET", f"/v2/{name}/manifests/latest", headers={"Accept": MANIFEST_ACCEPT})
        resp = conn.getresponse()
        assert resp.status == 200
        log = tb.fault_log(match=name)
        assert [(e["method"], e["status"], e["fault"]) for e in log] == [("GET", 200, "stall")]
        assert json.loads(resp.read())["schemaVersion"] == 2
    finally:
        conn.close()


def test_faulty_forwards_pushes_and_location_stays_on_the_proxy(tb, unique_repo):
    name, _ = unique_repo
    status, headers, _ = http_request("POST", tb.base_url("faulty") + f"/v2/{name}/blobs/uploads/", body=b"")
    assert status == 202
    assert urlsplit(headers["Location"]).netloc in ("", tb.host("faulty"))


def test_faulty_reset_after(tb, unique_repo):
    name, manifest = unique_repo
    layer = manifest["layers"][0]
    tb.add_faults({"match": layer["digest"], "action": "reset_after", "bytes": 10})
    host, port = tb.host("faulty").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", f"/v2/{name}/blobs/{layer['digest']}")
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert len(info.value.partial) == 10
    conn.close()


def test_faulty_stall_times_out_a_short_read(tb, unique_repo):
    name, manifest = unique_repo
    layer = manifest["layers"][0]
    tb.add_faults({"match": layer["digest"], "action": "stall", "seconds": 1.0, "bytes": 4})
    with pytest.raises((socket.timeout, TimeoutError, OSError)):
        http_request("GET", tb.base_url("faulty") + f"/v2/{name}/blobs/{layer['digest']}", timeout=0.3)


def test_redirect_server_records_authorization(tb, unique_repo):
    name, manifest = unique_repo
    layer = manifest["layers"][0]
    tb.add_faults({"match": name, "action": "redirect_blob", "times": 2})
    url = tb.base_url("faulty") + f"/v2/{name}/blobs/{layer['digest']}"
    auth = {"Authorization": "Bearer not-for-object-storage"}

    status, headers, _ = http_request("GET", url, headers=auth, follow_redirects=False)
    assert status == 307
    location = headers["Location"]
    assert urlsplit(location).hostname == "localhost"
    # A careless client forwards the header; a careful one drops it.
    assert http_request("GET", location, headers=auth)[0] == 200
    status, _, _ = http_request("GET", url, follow_redirects=False)
    assert status == 307
    status, _, blob = http_request("GET", location)
    assert status == 200
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]

    mine = [e for e in tb.redirect_log() if name in e["path"]]
    assert [e["had_authorization"] for e in mine] == [True, False]
    assert mine[0]["authorization"] == auth["Authorization"]
    # Rules are used up: the next GET passes through.
    assert http_request("GET", url, follow_redirects=False)[0] == 200


def test_bad_rule_is_rejected(tb):
    status, _, body = http_request(
        "POST", tb["faulty"]["control"], body=json.dumps({"action": "explode"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and b"unknown action" in body
