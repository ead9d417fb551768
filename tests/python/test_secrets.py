"""No secret shows in what the package prints: repr of a client, str/repr/args of every
error, and every log record, with credentials given directly and as a pull secret, right
and wrong. A secret is looked for as itself and in base64 (as docker configs hold it)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Iterable

import pytest

import wasm_image
from testbed import Testbed

PASSWORD = "pw-Zq81-never-printed"
TOKEN = "tok-Hx42-never-printed"
CONFIG_PASSWORD = "cfg-Jm07-never-printed"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(secret: str) -> list[str]:
    return [secret, b64(secret), b64(f"user:{secret}"), secret.encode().hex()]


def assert_no_secret(text: str, secrets: Iterable[str], what: str) -> None:
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"{what} shows a secret ({form!r}): {text}"


def error_texts(err: BaseException) -> list[str]:
    return [str(err), repr(err), repr(err.args), repr(vars(err))]


def docker_config(auths: dict) -> bytes:
    return json.dumps({"auths": auths}).encode()


def test_repr_of_a_client_shows_no_secret() -> None:
    client = wasm_image.Client(
        credentials={"basic.example": ("user", PASSWORD), "bearer.example": TOKEN},
        docker_config=docker_config({"reg.example": {"auth": b64(f"user:{CONFIG_PASSWORD}")}}),
        use_config_files=False,
    )
    for text in (repr(client), str(client)):
        assert_no_secret(text, [PASSWORD, TOKEN, CONFIG_PASSWORD], "repr of a client")
    assert "basic.example" in repr(client)


def test_registry_errors_and_logs_show_no_secret(
    tb: Testbed, repo: str, module_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    image = wasm_image.build(module_bytes)
    secrets = [PASSWORD, TOKEN, CONFIG_PASSWORD]
    with caplog.at_level(logging.DEBUG, logger="wasm_image"):
        for server in ("basic", "token"):
            host, user, password = tb.host(server), tb[server]["username"], tb[server]["password"]
            secrets.append(password)
            target = f"{host}/{repo}-{server}:v1"

            def client(password: str, in_config: bool) -> wasm_image.Client:
                if in_config:
                    auth = {"docker_config": docker_config({host: {"auth": b64(f"{user}:{password}")}})}
                else:
                    auth = {"credentials": {host: (user, password)}}
                return wasm_image.Client(insecure=[host], use_config_files=False, retries=0, **auth)  # type: ignore[arg-type]

            for in_config in (False, True):
                right = client(password, in_config)
                right.push(image, target)
                right.pull(target)
                assert_no_secret(repr(right), [password], "repr of a client")
            for in_config in (False, True):
                with pytest.raises(wasm_image.WasmImageError) as info:
                    client(PASSWORD, in_config).pull(target)
                assert info.value.kind == "UNAUTHORIZED", info.value
                for text in error_texts(info.value):
                    assert_no_secret(text, [PASSWORD, password], "a registry error")
            # A pull secret whose entry is a string: parsers like to quote such values.
            broken = wasm_image.Client(
                insecure=[host], use_config_files=False, retries=0,
                docker_config=docker_config({host: b64(f"{user}:{CONFIG_PASSWORD}")}),
            )
            with pytest.raises(wasm_image.WasmImageError) as info:
                broken.pull(target)
            for text in error_texts(info.value):
                assert_no_secret(text, [CONFIG_PASSWORD], "a malformed pull secret's error")
    records = [r for r in caplog.records if r.name.startswith("wasm_image")]
    assert records, "the library logged nothing"
    for record in records:
        assert_no_secret(f"{record.getMessage()} {record.__dict__!r}", secrets, "a log record")
