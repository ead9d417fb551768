"""Signed plugins: a 50 MiB pull of a cosign-signed image, unverified and verified
against the signer's key (the Python API), beside `cosign verify --key` of the same
image (offline); then once more each through the counting proxy, for the requests a
verification adds."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cosign_offline import Cosign
from harness.common import MiB, log
from harness.processes import measure
from harness.servers import clear_requests, record_requests

if TYPE_CHECKING:
    from harness.bench import Bench

NAME = "signing"
CASES = {"signing": None}  # case -> the tool its × floor column compares with (none)
SIZE = 50
UNVERIFIED = "pull, no verification"
VERIFIED = "pull, verified (cosign key)"


def run(b: Bench) -> None:
    if not b.want("signing"):
        return
    cosign = Cosign.find()
    if cosign is None:
        log("signing: cosign is not installed (.ci/install builds it); skipped")
        b.res.notes.append("signing: skipped, cosign not installed")
        return
    source = f"{b.host}/bench/oci-{SIZE}m:v1"
    repo = f"bench/signed-{SIZE}m"
    # A repository of its own, so the signature tag changes nothing the other cases read.
    p = measure(["skopeo", "--policy", b.policy, "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                 f"docker://{source}", f"docker://{b.host}/{repo}:v1"], env=b.containers_env(), timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"copying the signed fixture: {p.stderr.strip()[-300:]}")
    digest = b.digests[f"bench/oci-{SIZE}m"]["manifest"]
    key, public = cosign.generate_key_pair()
    cosign.sign(key, f"{b.host}/{repo}@{digest}")
    b.res.notes.append(f"signing: bench/oci-{SIZE}m copied to {repo} and signed by cosign (P-256 key, no tlog)")

    def runners(host: str):
        loc = f"{host}/{repo}:v1"
        via = host == b.proxy

        def check_of(p):
            def check():
                got = json.loads(p.stdout.strip().splitlines()[-1]).get("manifest_digest")
                if got != digest:
                    raise RuntimeError(f"pulled {got}, expected {digest}")
            return check

        def r_unsigned(i):
            p = measure(b.pyworker("pull", {"host": host, "location": loc, "size": SIZE * MiB}), env=b.py_env())
            b.sample("signing", UNVERIFIED, SIZE, i, [p], library=True, check=check_of(p), via_proxy=via)

        def r_verified(i):
            p = measure(b.pyworker("pull", {"host": host, "location": loc, "size": SIZE * MiB, "verify_key": str(public)}),
                        env=b.py_env())
            b.sample("signing", VERIFIED, SIZE, i, [p], library=True, check=check_of(p),
                     via_proxy=via)

        def r_cosign(i):
            p = measure(cosign.verify_args(public, loc), env=cosign.env())
            b.sample("signing", "cosign verify --key", SIZE, i, [p], library=False, via_proxy=via)

        return [("unsigned", "py", r_unsigned), ("verified", "py", r_verified), ("cosign", "py", r_cosign)]

    b.run_rounds(f"signing {SIZE} MiB", runners(b.host), b.repeats)
    before = len(b.res.samples)
    for name, needs, run_one in runners(b.proxy):
        if not b.usable(needs):
            continue
        clear_requests(b)
        run_one(-1)
        record_requests(b, "signing", b.res.samples[-1].tool)
    del b.res.samples[before:]
