"""The push floor: one blob uploaded over plain HTTP, nothing else."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from harness.common import MiB

FLOOR_PUT = "HTTP client floor: POST + one PUT"
FLOOR_PATCH = "HTTP client floor: POST + 4 MiB PATCHes + PUT"
UPLOAD_CHUNK = 4 * MiB  # core's UPLOAD_CHUNK (the registry store's uploads): GHCR rejects larger bodies


def http_push_floor(args: dict) -> dict:
    """Runs in a child process of its own (`python3 -c` with this function's source, so
    that its RSS and CPU are its own): uploads one blob the way a registry client must,
    over one keep-alive connection (Python's http.client; it sets TCP_NODELAY and hands a
    memoryview body to one sendall), and reports the time from the first connect to the
    registry's 201. The blob is read into memory and its digest is given before the clock
    starts: no hashing, no build, no config blob, no manifest, no existence checks.
    chunk 0: POST, then one PUT with the whole body (monolithic); else POST, PATCHes of
    `chunk` bytes with Content-Range, then a PUT with no body, as wasm-image uploads."""
    import http.client
    import time
    import urllib.parse

    with open(args["blob"], "rb") as f:
        data = f.read()
    view = memoryview(data)
    size, chunk, repo = len(data), args["chunk"], args["repo"]
    octets = {"Content-Type": "application/octet-stream"}
    requests = 0

    def call(method, target, body=None, headers=None, want=202):
        nonlocal requests
        hdrs = dict(headers or {})
        hdrs["Content-Length"] = str(0 if body is None else len(body))
        conn.request(method, target, body=body, headers=hdrs)
        r = conn.getresponse()
        r.read()
        requests += 1
        if r.status != want:
            raise SystemExit(f"{method} {target}: HTTP {r.status}, expected {want}")
        loc = r.getheader("Location") or ""
        u = urllib.parse.urlsplit(loc)
        return u.path + ("?" + u.query if u.query else "")

    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(args["host"], timeout=300)
    at = call("POST", f"/v2/{repo}/blobs/uploads/")
    if chunk:
        for off in range(0, size, chunk):
            part = view[off:off + chunk]
            at = call("PATCH", at, part, {**octets, "Content-Range": f"{off}-{off + len(part) - 1}"})
        body = None
    else:
        body = view
    sep = "&" if "?" in at else "?"
    call("PUT", f"{at}{sep}digest={args['digest']}", body, octets, want=201)
    t1 = time.perf_counter()
    conn.close()
    return {"op_s": t1 - t0, "requests": requests, "bytes": size}


def http_push_floor_argv(args: dict) -> list[str]:
    import inspect

    code = inspect.getsource(http_push_floor) + "\nimport json, sys\nprint(json.dumps(http_push_floor(json.loads(sys.argv[1]))))\n"
    return [sys.executable, "-c", code, json.dumps(args)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()
