#!/usr/bin/env python3
"""A small Docker registry token server for the test bed.

It implements the token protocol that CNCF distribution's ``auth.token`` expects
(https://distribution.github.io/distribution/spec/auth/token/):

* ``GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]`` with optional
  Basic credentials;
* ``POST /token`` (OAuth2 form: ``grant_type=password``, ``username``, ``password``,
  ``service``, ``scope``), as docker's own client uses it;
* ``POST /token`` with ``grant_type=refresh_token`` and ``refresh_token``: the identity
  token a docker config's ``identitytoken`` holds (``--refresh-token``, default
  ``bob-identity-token``) stands for the valid user; any other is 401.

Policy:

* valid credentials (default ``bob`` / ``builder``): every requested action is granted;
  no scope at all gives a token with empty access (a "login check");
* wrong credentials, or a malformed Authorization header: 401;
* no credentials: pull-only tokens for repositories under ``public/``; a request for
  any other repository, or without a scope, is answered 401.

The answer is ``{"token": JWT, "access_token": JWT}`` with deliberately *no*
``expires_in`` (clients must cope with tokens without a stated lifetime). The JWT is
RS256-signed with the key given on the command line, and its header carries the signing
certificate as an ``x5c`` chain, which distribution verifies against its
``rootcertbundle``.

``GET /__log__`` returns the list of token requests seen (``user``, ``scopes``,
``status``, ``granted``); ``DELETE /__log__`` clears it.

Standard library only, except that ``cryptography`` is used for signing when it is
installed (otherwise the ``openssl`` command signs).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import secrets
import subprocess
import sys
import threading
import time
from typing import Any
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from serving import announce, serve

TOKEN_LIFETIME_SECONDS = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pem_to_der_chain(pem: str) -> list[bytes]:
    """Every certificate in a PEM bundle, as DER."""
    out = []
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    rest = pem
    while begin in rest:
        start = rest.index(begin) + len(begin)
        stop = rest.index(end, start)
        out.append(base64.b64decode("".join(rest[start:stop].split())))
        rest = rest[stop + len(end):]
    return out


class Signer:
    """RS256 signing with the key file, via `cryptography` or the openssl command."""

    def __init__(self, key_path: str):
        self.key_path = key_path
        self._key: Any = None
        try:
            from cryptography.hazmat.primitives import serialization

            from cryptography.hazmat.primitives.asymmetric import rsa

            with open(key_path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise SystemExit(f"{key_path}: RS256 needs an RSA key")
            self._key = key
        except ImportError:
            self._key = None

    def sign(self, data: bytes) -> bytes:
        if self._key is not None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        proc = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.key_path],
            input=data,
            capture_output=True,
            check=True,
            timeout=10,
        )
        return proc.stdout


class TokenIssuer:
    def __init__(self, args: argparse.Namespace):
        self.issuer = args.issuer
        self.service = args.service
        self.username = args.username
        self.password = args.password
        self.public_prefix = args.public_prefix
        self.refresh_token = args.refresh_token
        self.signer = Signer(args.key)
        with open(args.cert, encoding="ascii") as f:
            self.x5c = [base64.b64encode(d).decode("ascii") for d in pem_to_der_chain(f.read())]
        if not self.x5c:
            raise SystemExit(f"no certificate in {args.cert}")
        self.lock = threading.Lock()
        self.log: list[dict] = []

    def make_token(self, subject: str, access: list[dict], audience: str) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.signer.sign(signing_input.encode("ascii"))
        return signing_input + "." + b64url(signature)

    @staticmethod
    def parse_scopes(scopes: list[str]) -> list[dict] | None:
        """`repository:NAME:pull,push` (NAME may contain ':' only with a port; the actions
        are after the last ':'). Several scopes may also be space-separated in one value."""
        out = []
        for value in scopes:
            for scope in value.split():
                parts = scope.split(":")
                if len(parts) < 3:
                    return None
                rtype, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
                out.append(
                    {"type": rtype, "name": name, "actions": [a for a in actions.split(",") if a]}
                )
        return out

    def decide(self, user: str | None, password: str | None, scopes: list[dict]):
        """Returns (status, subject, access)."""
        if user is not None:
            if user != self.username or password != self.password:
                return 401, None, None
            return 200, user, scopes
        # Anonymous.
        if not scopes:
            return 401, None, None
        access = []
        for s in scopes:
            if s["type"] != "repository" or not s["name"].startswith(self.public_prefix):
                return 401, None, None
            if "pull" not in s["actions"]:
                return 401, None, None
            access.append({"type": "repository", "name": s["name"], "actions": ["pull"]})
        return 200, "", access


def make_handler(issuer: TokenIssuer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "testbed-token-server/1"

        def log_message(self, fmt, *args):  # noqa: A003 - to stderr, which is the log file
            sys.stderr.write("%s - %s\n" % (self.log_date_time_string(), fmt % args))

        def _send_json(self, status: int, obj, extra_headers: dict | None = None):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra_headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _basic_credentials(self):
            """(user, password), (None, None) when absent, or 'bad' when malformed."""
            header = self.headers.get("Authorization")
            if not header:
                return None, None
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                return "bad"
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return "bad"
            user, sep, password = decoded.partition(":")
            if not sep:
                return "bad"
            return user, password

        def _issue(self, user, password, service, scope_values, grant=None):
            scopes = issuer.parse_scopes(scope_values)
            entry = {
                "method": self.command,
                "grant": grant,
                "user": user,
                "service": service,
                "scopes": scope_values,
                "status": None,
                "granted": None,
            }
            if scopes is None:
                entry["status"] = 400
                self._record(entry)
                return self._send_json(400, {"errors": [{"code": "INVALID_SCOPE", "message": "malformed scope"}]})
            status, subject, access = issuer.decide(user, password, scopes)
            entry["status"] = status
            if status != 200:
                self._record(entry)
                return self._send_json(
                    status,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required or credentials rejected"}]},
                    {"WWW-Authenticate": 'Basic realm="testbed-token-server"'},
                )
            entry["granted"] = access
            self._record(entry)
            token = issuer.make_token(subject, access, service or issuer.service)
            # Deliberately no "expires_in" and no "issued_at".
            return self._send_json(200, {"token": token, "access_token": token})

        def _record(self, entry):
            with issuer.lock:
                issuer.log.append(entry)

        def do_GET(self):  # noqa: N802
            url = urlsplit(self.path)
            if url.path == "/__log__":
                with issuer.lock:
                    return self._send_json(200, list(issuer.log))
            if url.path == "/healthz":
                return self._send_json(200, {"ok": True})
            if url.path != "/token":
                return self._send_json(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
            query = parse_qs(url.query, keep_blank_values=True)
            creds = self._basic_credentials()
            if creds == "bad":
                return self._send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "malformed Authorization"}]})
            user, password = creds
            service = (query.get("service") or [None])[0]
            self._issue(user, password, service, query.get("scope", []))

        def do_POST(self):  # noqa: N802
            url = urlsplit(self.path)
            body = self._read_body()
            if url.path != "/token":
                return self._send_json(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            grant = (form.get("grant_type") or [""])[0]
            service = (form.get("service") or [None])[0]
            if grant == "refresh_token":
                # The identity token stands for the valid user; any other fails as a
                # wrong password does.
                ok = (form.get("refresh_token") or [""])[0] == issuer.refresh_token
                user, password = issuer.username, (issuer.password if ok else None)
                return self._issue(user, password, service, form.get("scope", []), grant)
            if grant != "password":
                return self._send_json(400, {"error": "unsupported_grant_type"})
            user = (form.get("username") or [None])[0]
            password = (form.get("password") or [None])[0]
            self._issue(user, password, service, form.get("scope", []), grant)

        def do_DELETE(self):  # noqa: N802
            self._read_body()
            if urlsplit(self.path).path == "/__log__":
                with issuer.lock:
                    issuer.log.clear()
                return self._send_json(200, [])
            return self._send_json(404, {})

    return Handler


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write {\"port\": N} here once listening")
    p.add_argument("--key", required=True, help="PEM private key (RSA) that signs tokens")
    p.add_argument("--cert", required=True, help="PEM certificate (chain) of that key, sent as x5c")
    p.add_argument("--issuer", default="testbed-token-issuer")
    p.add_argument("--service", default="testbed-registry")
    p.add_argument("--username", default="bob")
    p.add_argument("--password", default="builder")
    p.add_argument("--public-prefix", default="public/")
    p.add_argument("--refresh-token", default="bob-identity-token",
                   help="the identity token (OAuth2 refresh token) that stands for --username")
    args = p.parse_args(argv)

    issuer = TokenIssuer(args)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(issuer))
    server.daemon_threads = True
    port = server.server_address[1]
    announce(args.port_file, {"port": port}, f"token server listening on {args.host}:{port}")
    return serve(server)


if __name__ == "__main__":
    sys.exit(main())
