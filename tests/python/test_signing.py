"""Signed plugins from Python and the command line, against the test bed and the real
cosign CLI (offline): cosign-signed images verify, images signed here pass
``cosign verify --key``, wrong keys and missing signatures raise SignatureInvalidError
and leave nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


def run_cli(command: List[str], *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*command, *args], capture_output=True, timeout=120, env=env)


def test_cli_signs_and_verifies(
    cli_command: List[str], tb: Testbed, cosign: Cosign, module_bytes: bytes, repo: str, tmp_path: Path
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return run_cli(cli_command, *args)

    plain = tb.host("plain")
    module = tmp_path / "m.wasm"
    module.write_bytes(module_bytes)
    private, public = key_pair(tmp_path, "ours")
    location = f"{plain}/{repo}:v1"
    done = cli("--insecure", plain, "build", str(module), "-t", location, "--sign", str(private))
    assert done.returncode == 0, done.stderr
    assert cosign.verify(public, location).returncode == 0
    out = tmp_path / "out.wasm"
    done = cli("--insecure", plain, "pull", location, "-o", str(out), "--verify-key", str(public),
               "--verify-repository", f"{plain}/{repo}")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == module_bytes
    out.unlink()
    _, stranger = key_pair(tmp_path, "stranger")
    done = cli("--insecure", plain, "pull", location, "-o", str(out), "--verify-key", str(stranger))
    assert done.returncode == 26 and done.stderr.startswith(b"error: SIGNATURE_INVALID: "), done.stderr
    assert not out.exists()
    # Any one of several keys will do; another repository in the payload will not.
    done = cli("--insecure", plain, "inspect", location, "--verify-key", str(stranger), "--verify-key", str(public))
    assert done.returncode == 0, done.stderr
    done = cli("--insecure", plain, "inspect", location, "--verify-key", str(public),
               "--verify-repository", f"{plain}/elsewhere")
    assert done.returncode == 26, done.stderr
    done = cli("--insecure", plain, "fetch", location, "--verify-key", str(stranger), "--cache-dir", str(tmp_path / "c"))
    assert done.returncode == 26, done.stderr
    done = cli("--insecure", plain, "fetch", location, "--verify-key", str(public), "--cache-dir", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    # cosign's own encrypted key, its password read from COSIGN_PASSWORD as cosign does.
    cosign_key, cosign_pub = cosign.generate_key_pair()
    encrypted = f"{plain}/{repo}-encrypted:v1"
    done = run_cli(cli_command, "--insecure", plain, "build", str(module), "-t", encrypted, "--sign", str(cosign_key),
                   env={**os.environ, "COSIGN_PASSWORD": cosign_password()})
    assert done.returncode == 0, done.stderr
    assert cosign.verify(cosign_pub, encrypted).returncode == 0
    done = cli("--insecure", plain, "build", str(module), "-t", encrypted,
               "--sign", str(cosign_key), "--sign-password-env", "WASM_IMAGE_TEST_UNSET_VARIABLE")
    assert done.returncode == 11 and b"not set" in done.stderr, done.stderr


def test_cli_push_signs_at_the_destination(
    cli_command: List[str], tb: Testbed, cosign: Cosign, module_bytes: bytes, repo: str, tmp_path: Path
) -> None:
    plain = tb.host("plain")
    module = tmp_path / "m.wasm"
    module.write_bytes(module_bytes)
    layout = f"oci:{tmp_path / 'store'}:v1"
    done = run_cli(cli_command, "build", str(module), "-t", layout)
    assert done.returncode == 0, done.stderr
    cosign_key, cosign_pub = cosign.generate_key_pair()
    location = f"{plain}/{repo}:v1"
    done = run_cli(cli_command, "--json", "--insecure", plain, "push", layout, location, "--sign", str(cosign_key),
                   env={**os.environ, "COSIGN_PASSWORD": cosign_password()})
    assert done.returncode == 0, done.stderr
    pushed = json.loads(done.stdout)
    assert pushed["signed"] is True and pushed["destination"] == location
    verified = cosign.verify(cosign_pub, location)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)[0]["critical"]["image"]["docker-manifest-digest"] == pushed["digest"]
    _, stranger = key_pair(tmp_path, "stranger")
    assert cosign.verify(stranger, location).returncode != 0

    # A wrong --verify-key: exit status 26 (10 + SIGNATURE_INVALID) and no output file.
    out = tmp_path / "out.wasm"
    done = run_cli(cli_command, "--insecure", plain, "pull", location, "-o", str(out), "--verify-key", str(stranger))
    assert done.returncode == 26 and b"SIGNATURE_INVALID" in done.stderr, done.stderr
    assert not out.exists()
    done = run_cli(cli_command, "--insecure", plain, "pull", location, "-o", str(out), "--verify-key", str(cosign_pub))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == module_bytes

    # Without --sign, push is a plain copy: nothing signs the new tag's image at another repository.
    unsigned = f"{plain}/{repo}-unsigned:v1"
    done = run_cli(cli_command, "--insecure", plain, "push", layout, unsigned)
    assert done.returncode == 0, done.stderr
    assert cosign.verify(cosign_pub, unsigned).returncode != 0


def test_cli_signing_usage_errors(cli_command: List[str], module_bytes: bytes, tmp_path: Path) -> None:
    module = tmp_path / "m.wasm"
    module.write_bytes(module_bytes)
    layout = f"oci:{tmp_path / 'store'}:v1"
    done = run_cli(cli_command, "build", str(module), "-t", layout, "--sign-password-env", "X")
    assert done.returncode == 2 and b"--sign-password-env needs --sign" in done.stderr, done.stderr
    done = run_cli(cli_command, "inspect", layout, "--verify-repository", "example.com/x")
    assert done.returncode == 2 and b"--verify-repository needs" in done.stderr, done.stderr
    done = run_cli(cli_command, "inspect", layout, "--fulcio-root", str(module))
    assert done.returncode == 2 and b"--rekor-key" in done.stderr, done.stderr
    done = run_cli(cli_command, "inspect", layout, "--verify-key", str(module))
    assert done.returncode == 11 and b"public key" in done.stderr, done.stderr
    private, _ = key_pair(tmp_path, "k")
    done = run_cli(cli_command, "push", layout, f"oci:{tmp_path / 'other'}:v1", "--sign", str(private),
                   "--sign-password-env", "WASM_IMAGE_TEST_UNSET_VARIABLE")
    assert done.returncode == 11 and b"not set" in done.stderr, done.stderr
    assert not (tmp_path / "other").exists()


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


@pytest.fixture()
def keyless_fixture() -> Path:
    """An image signed keyless by a test Fulcio and Rekor, with the trust to check it
    (core's ``keyless_fixture`` example, written by tests/run_all.sh)."""
    found = os.environ.get("WASM_IMAGE_KEYLESS_FIXTURE")
    if not found:
        pytest.skip("WASM_IMAGE_KEYLESS_FIXTURE unset: no keyless-signed image")
    return Path(found)


def test_keyless_signatures_verify_against_the_trust_given(keyless_fixture: Path, tmp_path: Path) -> None:
    location = f"oci:{keyless_fixture / 'layout'}:v1"
    issuer = (keyless_fixture / "issuer").read_text()
    subject = (keyless_fixture / "subject").read_text()
    roots, rekor = keyless_fixture / "fulcio_root.pem", keyless_fixture / "rekor.pub"
    client = wasm_image.Client(use_config_files=False)

    exact = wasm_image.Trust(fulcio_roots=roots, rekor_keys=rekor, issuer=issuer, subject=subject)
    assert client.pull(location, verify=exact).module.startswith(b"\0asm")
    by_pattern = wasm_image.Trust(
        fulcio_roots=roots.read_bytes(), rekor_keys=rekor.read_bytes(),
        issuer_regex=r"https://issuer[.]example[.]test", subject_regex=r".*@example[.]test",
    )
    client.pull_to_file(location, tmp_path / "ok.wasm", verify=by_pattern)
    assert (tmp_path / "ok.wasm").read_bytes().startswith(b"\0asm")
    asyncio.run(pull_async(client, location, exact))
    strict = wasm_image.Client(use_config_files=False, verify={"oci:*": exact})
    strict.pull(location)

    refusing = {
        "another subject": wasm_image.Trust(fulcio_roots=roots, rekor_keys=rekor, issuer=issuer, subject="someone-else@example.test"),
        "another issuer": wasm_image.Trust(fulcio_roots=roots, rekor_keys=rekor, issuer="https://other.example.test", subject=subject),
        "another Sigstore": wasm_image.Trust(
            fulcio_roots=keyless_fixture / "other_fulcio_root.pem", rekor_keys=keyless_fixture / "other_rekor.pub",
            issuer=issuer, subject=subject,
        ),
    }
    for why, trust in refusing.items():
        with pytest.raises(wasm_image.SignatureInvalidError):
            client.pull(location, verify=trust)
        with pytest.raises(wasm_image.SignatureInvalidError):
            client.pull_to_file(location, tmp_path / "refused.wasm", verify=trust)
        assert not (tmp_path / "refused.wasm").exists(), why
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.wasm"]


def test_cli_verifies_keyless_signatures(cli_command: List[str], keyless_fixture: Path, tmp_path: Path) -> None:
    location = f"oci:{keyless_fixture / 'layout'}:v1"
    trust = ["--fulcio-root", str(keyless_fixture / "fulcio_root.pem"), "--rekor-key", str(keyless_fixture / "rekor.pub"),
             "--certificate-oidc-issuer", (keyless_fixture / "issuer").read_text()]
    subject = (keyless_fixture / "subject").read_text()
    out = tmp_path / "m.wasm"
    done = run_cli(cli_command, "--no-config-files", "pull", location, "-o", str(out), *trust, "--certificate-identity", subject)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"\0asm")
    done = run_cli(cli_command, "--no-config-files", "pull", location, "-o", str(tmp_path / "p.wasm"), *trust,
                   "--certificate-identity-regexp", r".*@example[.]test")
    assert done.returncode == 0, done.stderr
    refused = tmp_path / "refused.wasm"
    done = run_cli(cli_command, "--no-config-files", "pull", location, "-o", str(refused), *trust,
                   "--certificate-identity", "someone-else@example.test")
    assert done.returncode == 26 and b"SIGNATURE_INVALID" in done.stderr, done.stderr
    assert not refused.exists()
