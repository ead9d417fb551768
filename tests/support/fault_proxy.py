#!/usr/bin/env python3
"""A fault-injecting HTTP reverse proxy for the test bed (standard library only).

It forwards every request, with all its end-to-end headers (``Authorization`` and
``Host`` included, so the registry's ``Location`` headers keep pointing at the proxy),
to an upstream registry, unless a fault rule matches the request.

Control API, on the proxy's own port (registry paths all start with ``/v2/``):

``POST /__faults__``   body: one rule object or a JSON list of them; **appends** them.
``PUT /__faults__``    same body; **replaces** all rules.
``GET /__faults__``    the rules still active, with their remaining ``times``.
``DELETE /__faults__`` removes every rule, or with ``?match=S`` only rules whose
                       ``match`` equals S.
``GET /__log__``       every request seen (``?match=S`` keeps those whose path contains
                       S): ``{"method", "path", "status", "had_authorization", "fault"}``,
                       in the order they arrived. A request is recorded when it arrives
                       and its ``status`` is set before the first byte of its answer is
                       sent (0 when the connection is closed without an answer, null
                       while it is still unanswered): a client that has seen an answer
                       always finds it in the log.
``DELETE /__log__``    clears this log and the redirect server's log.

A rule is a JSON object:

``match``   substring of the request target (path and query); absent/null/"" = any.
``method``  ``"GET"``, ``"HEAD"``, ``"PUT"``...; absent/null = any.
``times``   how many matching requests it applies to; absent = 1; null or -1 = forever.
``action``  one of

* ``"status"``: answer ``status`` (e.g. 429, 500, 503) without contacting the upstream,
  with ``Retry-After: retry_after`` when ``retry_after`` is not null, a registry-style
  JSON error body (or ``body``, a string), plus any ``headers`` (object);
* ``"reset_after"``: forward, send the status, the headers and the first ``bytes``
  bytes of the upstream body, then close the connection abruptly (FIN; ``"rst": true``
  sends a TCP reset instead);
* ``"stall"``: forward, send the headers and ``bytes`` (default 16) bytes of the body,
  then sleep ``seconds``; afterwards send the rest (``"then": "continue"``, the default)
  or close the connection (``"then": "close"``). ``"before_headers": true`` sleeps
  before sending anything;
* ``"delay"``: sleep ``seconds``, then forward normally;
* ``"close"``: read the request and close the connection without any answer;
* ``"redirect_blob"``: only for GET/HEAD of ``/v2/NAME/blobs/DIGEST``: answer ``307``
  with ``Location: http://localhost:RPORT/v2/NAME/blobs/DIGEST?testbed-signature=1``, a
  second little server (other port, other host name) that serves the blob from the
  upstream and records whether it received an ``Authorization`` header.

The first matching rule with ``times`` left wins and is used up by one.

Redirect server (``http://127.0.0.1:RPORT``): ``GET /__log__`` lists
``{"method", "path", "host", "had_authorization", "authorization", "status"}``, recorded
the same way as the proxy's log;
``DELETE /__log__`` clears it.

Tests that run in parallel share this proxy: give each test its own repository name,
use it as ``match``, and filter the log with ``?match=``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from serving import announce, serve

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",
    "proxy-connection",
}

ACTIONS = {"status", "reset_after", "stall", "delay", "close", "redirect_blob"}
BLOB_PATH = re.compile(r"^/v2/.+/blobs/[A-Za-z0-9_+.-]+:[A-Za-z0-9=_-]+$")
CHUNK = 64 * 1024


class RuleError(ValueError):
    pass


def validate_rule(raw) -> dict:
    if not isinstance(raw, dict):
        raise RuleError(f"a rule must be an object, got {raw!r}")
    rule = dict(raw)
    action = rule.get("action")
    if action not in ACTIONS:
        raise RuleError(f"unknown action {action!r}; expected one of {sorted(ACTIONS)}")
    if rule.get("match") is not None and not isinstance(rule["match"], str):
        raise RuleError("match must be a string or null")
    if rule.get("method") is not None:
        if not isinstance(rule["method"], str):
            raise RuleError("method must be a string or null")
        rule["method"] = rule["method"].upper()
    times = rule.get("times", 1)
    if times is None:
        times = -1
    if not isinstance(times, int) or times == 0 or times < -1:
        raise RuleError("times must be a positive integer, or -1/null for forever")
    rule["times"] = times
    if action == "status":
        if not isinstance(rule.get("status"), int) or not 100 <= rule["status"] <= 599:
            raise RuleError("status action needs an integer status")
        ra = rule.get("retry_after")
        if ra is not None and not isinstance(ra, (int, str)):
            raise RuleError("retry_after must be an integer, a string or null")
    if action == "reset_after":
        if not isinstance(rule.get("bytes"), int) or rule["bytes"] < 0:
            raise RuleError("reset_after needs bytes >= 0")
    if action in ("stall", "delay"):
        if not isinstance(rule.get("seconds"), (int, float)) or rule["seconds"] < 0:
            raise RuleError(f"{action} needs seconds >= 0")
        if rule.get("then", "continue") not in ("continue", "close"):
            raise RuleError('then must be "continue" or "close"')
        b = rule.get("bytes", 16)
        if b is None:
            b = 16
        if not isinstance(b, int) or b < 0:
            raise RuleError("bytes must be >= 0")
        rule["bytes"] = b
    return rule


class State:
    def __init__(self, upstream: tuple[str, int], redirect_port_holder: list):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.log: list[dict] = []
        self.redirect_log: list[dict] = []
        self.redirect_port_holder = redirect_port_holder

    def take(self, method: str, target: str) -> dict | None:
        path = urlsplit(target).path
        with self.lock:
            for rule in self.rules:
                if rule["times"] == 0:
                    continue
                if rule.get("match") and rule["match"] not in target:
                    continue
                if rule.get("method") and rule["method"] != method:
                    continue
                if rule["action"] == "redirect_blob" and (
                    method not in ("GET", "HEAD") or not BLOB_PATH.match(path)
                ):
                    continue
                if rule["times"] > 0:
                    rule["times"] -= 1
                chosen = dict(rule)
                self.rules = [r for r in self.rules if r["times"] != 0]
                return chosen
        return None

    def record(self, entry: dict):
        with self.lock:
            self.log.append(entry)

    def record_redirect(self, entry: dict):
        with self.lock:
            self.redirect_log.append(entry)


def json_bytes(obj) -> bytes:
    return json.dumps(obj).encode()


ERROR_CODES = {
    400: "UNSUPPORTED",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NAME_UNKNOWN",
    405: "UNSUPPORTED",
    429: "TOOMANYREQUESTS",
    503: "UNAVAILABLE",
}


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "testbed-fault-proxy/1"

    def log_message(self, fmt, *args):  # noqa: A003
        sys.stderr.write("%s [%s] %s\n" % (self.log_date_time_string(), self.server_label, fmt % args))

    server_label = "proxy"
    answered = False
    # This request's log entry, recorded on arrival; its status is filled in before the
    # answer leaves, so a client never reads the log ahead of its own request.
    entry: dict | None = None

    def note_status(self, status: int):
        if self.entry is not None and self.entry["status"] is None:
            self.entry["status"] = status

    def send_response_only(self, code, message=None):
        self.answered = True
        self.note_status(code)
        super().send_response_only(code, message)

    def send_json(self, status: int, obj, extra: dict | None = None):
        body = json_bytes(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None when there is none."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            parts = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers until the empty line.
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(parts)
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        n = int(length)
        return self.rfile.read(n) if n > 0 else b""

    def abort_connection(self, rst: bool = False):
        self.note_status(0)
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def make_proxy_handler(state: State):
    class ProxyHandler(BaseHandler):
        server_label = "proxy"

        # ---- control API ------------------------------------------------------
        def control(self) -> bool:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/__faults__":
                body = self.read_body()
                if self.command == "GET":
                    with state.lock:
                        self.send_json(200, list(state.rules))
                elif self.command in ("POST", "PUT"):
                    try:
                        raw = json.loads(body or b"null")
                        raws = raw if isinstance(raw, list) else [raw]
                        rules = [validate_rule(r) for r in raws]
                    except (ValueError, RuleError) as e:
                        self.send_json(400, {"error": str(e)})
                        return True
                    with state.lock:
                        if self.command == "PUT":
                            state.rules = rules
                        else:
                            state.rules.extend(rules)
                        current = list(state.rules)
                    self.send_json(200, {"rules": current})
                elif self.command == "DELETE":
                    match = query.get("match", [None])[0]
                    with state.lock:
                        if match is None:
                            state.rules = []
                        else:
                            state.rules = [r for r in state.rules if r.get("match") != match]
                        current = list(state.rules)
                    self.send_json(200, {"rules": current})
                else:
                    self.send_json(405, {"error": "method not allowed"})
                return True
            if url.path == "/__log__":
                self.read_body()
                if self.command == "GET":
                    match = query.get("match", [None])[0]
                    with state.lock:
                        entries = [e for e in state.log if match is None or match in e["path"]]
                    self.send_json(200, entries)
                elif self.command == "DELETE":
                    with state.lock:
                        state.log.clear()
                        state.redirect_log.clear()
                    self.send_json(200, [])
                else:
                    self.send_json(405, {"error": "method not allowed"})
                return True
            return False

        # ---- proxying -----------------------------------------------------------
        def handle_any(self):
            if self.path.startswith("/__") and self.control():
                return
            body = self.read_body()
            entry = {
                "method": self.command,
                "path": self.path,
                "status": None,
                "had_authorization": self.headers.get("Authorization") is not None,
                "fault": None,
                "time": time.time(),
            }
            self.entry = entry
            state.record(entry)
            rule = state.take(self.command, self.path)
            self.answered = False
            try:
                if rule is None:
                    entry["status"] = self.forward(body)
                else:
                    entry["fault"] = rule["action"]
                    entry["status"] = self.apply(rule, body)
            except (ConnectionError, socket.timeout, OSError) as e:
                self.log_message("error while serving %s %s: %r", self.command, self.path, e)
                if not self.answered:
                    try:
                        self.send_json(502, {"errors": [{"code": "UNKNOWN", "message": f"upstream failed: {e!r}"}]})
                        entry["status"] = 502
                    except OSError:
                        pass
                self.close_connection = True
                self.note_status(0)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = handle_any  # noqa: N815

        def upstream_request(self, body: bytes | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
            conn = http.client.HTTPConnection(*state.upstream, timeout=120)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            has_length = False
            for k, v in self.headers.items():
                lk = k.lower()
                if lk in HOP_BY_HOP:
                    continue
                if lk == "content-length":
                    if body is None:
                        continue
                    has_length = True
                    v = str(len(body))
                conn.putheader(k, v)
            if body is not None and not has_length:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            return conn, conn.getresponse()

        def send_upstream_head(self, resp: http.client.HTTPResponse, content_length: int | None):
            self.log_request(resp.status)
            self.send_response_only(resp.status, resp.reason)
            for k, v in resp.getheaders():
                lk = k.lower()
                if lk in HOP_BY_HOP or lk == "content-length":
                    continue
                self.send_header(k, v)
            if content_length is not None:
                self.send_header("Content-Length", str(content_length))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()

        def response_has_body(self, status: int) -> bool:
            return self.command != "HEAD" and status not in (204, 304) and status >= 200

        def forward(self, body: bytes | None) -> int:
            conn, resp = self.upstream_request(body)
            try:
                length_header = resp.getheader("Content-Length")
                if not self.response_has_body(resp.status):
                    self.send_upstream_head(resp, int(length_header) if length_header else None)
                    resp.read()
                elif length_header is not None:
                    self.send_upstream_head(resp, int(length_header))
                    while True:
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                else:
                    data = resp.read()
                    self.send_upstream_head(resp, len(data))
                    self.wfile.write(data)
                return resp.status
            finally:
                conn.close()

        def apply(self, rule: dict, body: bytes | None) -> int:
            action = rule["action"]
            if action == "status":
                status = rule["status"]
                headers = {}
                if rule.get("retry_after") is not None:
                    headers["Retry-After"] = rule["retry_after"]
                headers.update(rule.get("headers") or {})
                if rule.get("body") is not None:
                    payload = str(rule["body"]).encode()
                    ctype = "text/plain"
                else:
                    code = ERROR_CODES.get(status, "UNKNOWN")
                    payload = json_bytes(
                        {"errors": [{"code": code, "message": f"injected by the testbed fault proxy ({status})", "detail": None}]}
                    )
                    ctype = "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, str(v))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return status
            if action == "close":
                self.abort_connection(rst=bool(rule.get("rst")))
                return 0
            if action == "delay":
                time.sleep(rule["seconds"])
                return self.forward(body)
            if action == "redirect_blob":
                port = state.redirect_port_holder[0]
                location = f"http://localhost:{port}{urlsplit(self.path).path}?testbed-signature=1"
                self.send_response(307)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return 307
            if action == "stall" and rule.get("before_headers"):
                time.sleep(rule["seconds"])
                if rule.get("then", "continue") == "close":
                    self.abort_connection(rst=bool(rule.get("rst")))
                    return 0
                return self.forward(body)
            # reset_after / stall: fetch the whole upstream answer first, so the upstream
            # connection is never left hanging.
            conn, resp = self.upstream_request(body)
            try:
                data = resp.read()
            finally:
                conn.close()
            has_body = self.response_has_body(resp.status)
            self.send_upstream_head(resp, len(data) if has_body else (int(resp.getheader("Content-Length") or 0)))
            if not has_body:
                data = b""
            if action == "reset_after":
                self.wfile.write(data[: rule["bytes"]])
                self.abort_connection(rst=bool(rule.get("rst")))
                return resp.status
            # stall
            first = data[: rule["bytes"]]
            self.wfile.write(first)
            self.wfile.flush()
            time.sleep(rule["seconds"])
            if rule.get("then", "continue") == "close":
                self.abort_connection(rst=bool(rule.get("rst")))
            else:
                self.wfile.write(data[len(first):])
            return resp.status

    return ProxyHandler


def make_redirect_handler(state: State):
    class RedirectHandler(BaseHandler):
        server_label = "redirect"

        def handle_any(self):
            url = urlsplit(self.path)
            self.read_body()
            if url.path == "/__log__":
                if self.command == "DELETE":
                    with state.lock:
                        state.redirect_log.clear()
                    return self.send_json(200, [])
                with state.lock:
                    entries = list(state.redirect_log)
                return self.send_json(200, entries)
            entry = {
                "method": self.command,
                "path": self.path,
                "host": self.headers.get("Host"),
                "had_authorization": self.headers.get("Authorization") is not None,
                "authorization": self.headers.get("Authorization"),
                "status": None,
                "time": time.time(),
            }
            self.entry = entry
            state.record_redirect(entry)
            try:
                if self.command not in ("GET", "HEAD") or not BLOB_PATH.match(url.path):
                    return self.send_json(404, {"errors": [{"code": "BLOB_UNKNOWN", "message": "not a blob path"}]})
                # Object storage never sees the registry's credentials: fetch anonymously.
                conn = http.client.HTTPConnection(*state.upstream, timeout=120)
                try:
                    headers = {}
                    if self.headers.get("Range"):
                        headers["Range"] = self.headers["Range"]
                    conn.request("GET", url.path, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                status = resp.status
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if status in (200, 206) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for h in ("Content-Range", "Accept-Ranges", "ETag"):
                    if resp.getheader(h):
                        self.send_header(h, resp.getheader(h))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except (ConnectionError, socket.timeout, OSError) as e:
                self.log_message("error while serving %s %s: %r", self.command, self.path, e)
                self.close_connection = True
                self.note_status(0)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any  # noqa: N815

    return RedirectHandler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT of the plain-HTTP upstream registry")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--redirect-port", type=int, default=0)
    p.add_argument("--port-file", help='write {"port": N, "redirect_port": M} here once listening')
    args = p.parse_args(argv)

    up_host, _, up_port = args.upstream.rpartition(":")
    holder = [0]
    state = State((up_host, int(up_port)), holder)
    proxy = Server((args.host, args.port), make_proxy_handler(state))
    redirect = Server((args.host, args.redirect_port), make_redirect_handler(state))
    holder[0] = redirect.server_address[1]
    threading.Thread(target=redirect.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    announce(
        args.port_file,
        {"port": proxy.server_address[1], "redirect_port": holder[0]},
        f"fault proxy on {args.host}:{proxy.server_address[1]} -> {args.upstream}; redirect server on port {holder[0]}",
    )
    return serve(proxy)


if __name__ == "__main__":
    sys.exit(main())
