"""Signed plugins from Python and the command line, against the test bed and the real
cosign CLI (offline): cosign-signed images verify, images signed here pass
``cosign verify --key``, wrong keys and missing signatures raise SignatureInvalidError
and leave nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional, Tuple

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import wasm_image
from cosign_offline import Cosign
from testbed import Testbed


@pytest.fixture()
def cosign() -> Cosign:
    found = Cosign.find()
    if found is None:
        pytest.skip("cosign is not installed (.ci/install builds it)")
    return found


def key_pair(tmp_path: Path, name: str) -> Tuple[Path, Path]:
    """A fresh P-256 key pair as unencrypted PEM files: (PKCS#8 private, SPKI public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / f"{name}.key"
    public = tmp_path / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def push(client: wasm_image.Client, module_bytes: bytes, location: str, key: Optional[wasm_image.SigningKey] = None) -> str:
    return client.push(wasm_image.build(module_bytes), location, sign_with=key)


async def pull_async(client: wasm_image.Client, location: str, trust: wasm_image.Trust) -> wasm_image.WasmImage:
    return await client.pull_async(location, verify=trust)


def test_cosign_signed_images_verify_and_wrong_keys_raise(
    tb: Testbed, cosign: Cosign, registry_client: wasm_image.Client, module_bytes: bytes, repo: str, tmp_path: Path
) -> None:
    repository = f"{tb.host('plain')}/{repo}"
    digest = push(registry_client, module_bytes, f"{repository}:v1")
    cosign_key, cosign_pub = cosign.generate_key_pair()
    cosign.sign(cosign_key, f"{repository}@{digest}")

    trust = wasm_image.Trust([cosign_pub], repository=repository)
    assert trust.repository == repository and len(trust.fingerprints) == 1
    image = registry_client.pull(f"{repository}:v1", verify=trust)
    assert image.module == module_bytes

    _, stranger = key_pair(tmp_path, "stranger")
    wrong = wasm_image.Trust([stranger.read_bytes()])
    with pytest.raises(wasm_image.SignatureInvalidError) as raised:
        registry_client.pull(f"{repository}:v1", verify=wrong)
    assert raised.value.kind == "SIGNATURE_INVALID" and "does not verify" in str(raised.value)
    out = tmp_path / "m.wasm"
    with pytest.raises(wasm_image.SignatureInvalidError):
        registry_client.pull_to_file(f"{repository}:v1", out, verify=wrong)
    assert not out.exists()
    with pytest.raises(wasm_image.SignatureInvalidError):
        asyncio.run(pull_async(registry_client, f"{repository}:v1", wrong))

    # The client's policy: signatures required under this test's repositories, a layout exempt.
    cache = wasm_image.Cache(dir=str(tmp_path / "cache"))
    strict = wasm_image.Client(
        insecure=[tb.host("plain")],
        use_config_files=False,
        cache=cache,
        verify={f"{tb.host('plain')}/py/*": wasm_image.Trust([cosign_pub]), "oci:*": None},
    )
    assert strict.pull(f"{repository}:v1").module == module_bytes
    unsigned = f"{tb.host('plain')}/{repo}-unsigned:v1"
    push(registry_client, module_bytes, unsigned)
    with pytest.raises(wasm_image.SignatureInvalidError) as raised:
        strict.pull(unsigned)
    assert "no signature found" in str(raised.value)
    with pytest.raises(wasm_image.SignatureInvalidError):
        strict.fetch(unsigned)
    assert cache.entries() == []
    assert strict.pull(unsigned, verify=False).module == module_bytes
    with strict.fetch(f"{repository}:v1") as entry:
        assert Path(entry.path).read_bytes() == module_bytes
    layout = f"oci:{tmp_path / 'layout'}:v1"
    registry_client.copy(unsigned, layout)
    assert strict.pull(layout).module == module_bytes


def test_images_signed_here_pass_cosign_verify(
    tb: Testbed, cosign: Cosign, registry_client: wasm_image.Client, module_bytes: bytes, repo: str, tmp_path: Path
) -> None:
    private, public = key_pair(tmp_path, "ours")
    key = wasm_image.SigningKey(private)
    assert "PRIVATE" not in repr(key) and len(key.fingerprint) == 16
    location = f"{tb.host('plain')}/{repo}:v1"
    digest = push(registry_client, module_bytes, location, key)
    done = cosign.verify(public, location)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["critical"]["image"]["docker-manifest-digest"] == digest
    assert registry_client.pull(location, verify=wasm_image.Trust([public])).module == module_bytes
    _, stranger = key_pair(tmp_path, "stranger")
    assert cosign.verify(stranger, location).returncode != 0


def test_bad_keys_and_arguments_are_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Trust([b"not a key"])
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Trust([])
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.SigningKey(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    private, _ = key_pair(tmp_path, "k")
    with pytest.raises(wasm_image.InvalidArgumentError) as raised:
        wasm_image.SigningKey(private, password_env="WASM_IMAGE_TEST_UNSET_PASSWORD_VARIABLE")
    assert "not set" in str(raised.value)
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.pull(f"oci:{tmp_path}:x", verify=True)  # type: ignore[arg-type]
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Client(verify={"": None})


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "wasm_image", *args], capture_output=True, timeout=120)


def test_cli_signs_and_verifies(tb: Testbed, cosign: Cosign, module_bytes: bytes, repo: str, tmp_path: Path) -> None:
    plain = tb.host("plain")
    module = tmp_path / "m.wasm"
    module.write_bytes(module_bytes)
    private, public = key_pair(tmp_path, "ours")
    location = f"{plain}/{repo}:v1"
    done = cli("--insecure", plain, "build", str(module), "-t", location, "--sign", str(private))
    assert done.returncode == 0, done.stderr
    assert cosign.verify(public, location).returncode == 0
    out = tmp_path / "out.wasm"
    done = cli("--insecure", plain, "pull", location, "-o", str(out), "--verify-key", str(public))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == module_bytes
    out.unlink()
    _, stranger = key_pair(tmp_path, "stranger")
    done = cli("--insecure", plain, "pull", location, "-o", str(out), "--verify-key", str(stranger))
    assert done.returncode == 26 and done.stderr.startswith(b"error: SIGNATURE_INVALID: "), done.stderr
    assert not out.exists()
    done = cli("--insecure", plain, "fetch", location, "--verify-key", str(stranger), "--cache-dir", str(tmp_path / "c"))
    assert done.returncode == 26, done.stderr
    done = cli("--insecure", plain, "fetch", location, "--verify-key", str(public), "--cache-dir", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    # cosign's own encrypted key, its password read from COSIGN_PASSWORD as cosign does.
    cosign_key, cosign_pub = cosign.generate_key_pair()
    encrypted = f"{plain}/{repo}-encrypted:v1"
    done = subprocess.run(
        [sys.executable, "-m", "wasm_image", "--insecure", plain, "build", str(module), "-t", encrypted,
         "--sign", str(cosign_key)],
        capture_output=True, timeout=120, env={**os.environ, "COSIGN_PASSWORD": cosign_password()},
    )
    assert done.returncode == 0, done.stderr
    assert cosign.verify(cosign_pub, encrypted).returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "wasm_image", "--insecure", plain, "build", str(module), "-t", encrypted,
         "--sign", str(cosign_key), "--sign-password-env", "WASM_IMAGE_TEST_UNSET_VARIABLE"],
        capture_output=True, timeout=120,
    )
    assert done.returncode == 11 and b"not set" in done.stderr, done.stderr


def cosign_password() -> str:
    from cosign_offline import PASSWORD

    return PASSWORD


def test_keyless_trust_arguments(tmp_path: Path) -> None:
    _, public = key_pair(tmp_path, "k")
    with pytest.raises(wasm_image.InvalidArgumentError) as raised:
        wasm_image.Trust(fulcio_roots=b"x")
    assert "both" in str(raised.value)
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Trust(fulcio_roots=b"not pem", rekor_keys=public, issuer="https://issuer.example")
    with pytest.raises(wasm_image.InvalidArgumentError):
        wasm_image.Trust(fulcio_roots=b"x", rekor_keys=public, issuer="i", subject_regex="(")
