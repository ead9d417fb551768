#!/usr/bin/env python3
"""A small HTTP forward proxy for the test bed, so clients' HTTPS_PROXY / HTTP_PROXY /
NO_PROXY handling is tested against a real proxy.

* ``CONNECT host:port`` opens a tunnel (what an ``https://`` request through a proxy
  uses); ``METHOD http://host:port/path`` (absolute form) is forwarded (what a plain
  ``http://`` request through a proxy uses). Only loopback targets are served (403
  otherwise): the test bed reaches nothing else.
* ``GET /__log__`` (origin form, to the proxy itself) lists what was proxied, in order:
  ``{"method": "CONNECT"|"GET"|…, "target": "host:port"}``; ``DELETE /__log__`` clears
  it. A request is recorded before it is answered, so a client that got its answer
  finds it in the log.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from serving import announce, serve

LOOPBACK = ("127.", "::1", "localhost")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.log: list[dict] = []

    def record(self, method: str, target: str):
        with self.lock:
            self.log.append({"method": method, "target": target})


def is_loopback(host: str) -> bool:
    return host.strip("[]").startswith(LOOPBACK)


def pipe(a: socket.socket, b: socket.socket):
    """Relays bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        readable, _, broken = select.select(sockets, [], sockets, 60)
        if broken or not readable:
            return
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if s is a else a).sendall(data)


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # noqa: A003 - to stderr, which is the log file
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

        def send_json(self, status: int, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def refuse(self, target: str):
            self.send_json(403, {"error": f"the test bed proxy serves loopback only, not {target}"})
            self.close_connection = True

        def do_CONNECT(self):  # noqa: N802
            host, _, port = self.path.rpartition(":")
            if not is_loopback(host):
                return self.refuse(self.path)
            state.record("CONNECT", self.path)
            try:
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            except OSError as e:
                self.send_json(502, {"error": str(e)})
                self.close_connection = True
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            try:
                pipe(self.connection, upstream)
            finally:
                upstream.close()
                self.close_connection = True

        def handle_any(self):
            url = urlsplit(self.path)
            if not url.scheme:
                return self.control(url.path)
            target = url.netloc
            if url.scheme != "http" or not is_loopback(url.hostname or ""):
                return self.refuse(target)
            state.record(self.command, target)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            path = url.path or "/"
            if url.query:
                path += "?" + url.query
            lines = [f"{self.command} {path} HTTP/1.1"]
            for k, v in self.headers.items():
                if k.lower() not in ("proxy-connection", "connection", "keep-alive", "proxy-authorization"):
                    lines.append(f"{k}: {v}")
            lines.append("Connection: close")
            try:
                upstream = socket.create_connection((url.hostname, url.port or 80), timeout=30)
            except OSError as e:
                return self.send_json(502, {"error": str(e)})
            try:
                upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                # The answer is relayed as is, then both connections close (it says
                # nothing of its length we would have to parse).
                while True:
                    data = upstream.recv(65536)
                    if not data:
                        break
                    self.connection.sendall(data)
            finally:
                upstream.close()
                self.close_connection = True

        def control(self, path: str):
            if path != "/__log__":
                return self.send_json(404, {"error": path})
            if self.command == "DELETE":
                with state.lock:
                    state.log.clear()
                return self.send_json(200, [])
            with state.lock:
                return self.send_json(200, list(state.log))

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any  # noqa: N815

    return Handler


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help='write {"port": N} here once listening')
    args = p.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(State()))
    server.daemon_threads = True
    port = server.server_address[1]
    announce(args.port_file, {"port": port}, f"forward proxy listening on {args.host}:{port}")
    return serve(server)


if __name__ == "__main__":
    sys.exit(main())
