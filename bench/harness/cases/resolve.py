"""Resolve a tag to a digest: the Python API, skopeo inspect --raw and curl -I (the
floor), timed; then once more each through the counting proxy, for the requests."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from harness.common import CURL_W
from harness.processes import measure
from harness.servers import clear_requests, record_requests
from testbed import MANIFEST_ACCEPT

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "resolve"
CASES = {"resolve": "curl -I (floor)"}  # case -> the tool its × floor column compares with


def run(b: Bench) -> None:
    if not b.want("resolve"):
        return
    repo = "bench/oci-1m"
    want_digest = b.digests[repo]["manifest"]

    def runners(host: str):
        loc = f"{host}/{repo}:v1"
        via = host == b.proxy

        def r_py(i):
            p = measure(b.pyworker("resolve", {"host": host, "location": loc}), env=b.py_env())

            def check():
                got = json.loads(p.stdout.strip().splitlines()[-1]).get("digest")
                if got != want_digest:
                    raise RuntimeError(f"resolved {got}, expected {want_digest}")
            b.sample("resolve", "wasm-image Python API", None, i, [p], library=True, check=check, via_proxy=via)

        def r_skopeo(i):
            p = measure(["skopeo", "inspect", "--raw", "--retry-times", "0", "--tls-verify=false", f"docker://{loc}"],
                        env=b.containers_env())
            b.sample("resolve", "skopeo inspect --raw", None, i, [p], library=False, via_proxy=via)

        def r_curl(i):
            p = measure(["curl", "-sS", "--fail", "-I", "-w", CURL_W, "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", "/dev/null",
                         f"http://{host}/v2/{repo}/manifests/v1"])
            b.sample("resolve", "curl -I (floor)", None, i, [p], library="curl", via_proxy=via)

        return [("py", "py", r_py), ("skopeo", "skopeo", r_skopeo), ("curl", "curl", r_curl)]

    b.run_rounds("resolve", runners(b.host), b.repeats)
    # Requests, counted by the proxy (one run each, not timed).
    before = len(b.res.samples)
    for name, needs, run_one in runners(b.proxy):
        if not b.usable(needs):
            continue
        clear_requests(b)
        run_one(-1)
        record_requests(b, "resolve", b.res.samples[-1].tool)
    del b.res.samples[before:]
