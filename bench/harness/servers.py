"""The benchmark's own servers: a docker-registry (CNCF distribution) on loopback, and
the test bed's fault proxy in front of it, only to count requests."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import testbed
from harness.common import log
from harness.cpu import SERVER_PIDS
from harness.processes import Server

if TYPE_CHECKING:
    from harness.state import RunState

FAULT_PROXY = testbed.HERE / "fault_proxy.py"


def start_servers(b: RunState) -> None:
    d = b.work / "registry"
    port = testbed.free_port()
    # warn, not the test bed's info: fewer log lines written per request while the
    # registry's CPU is measured
    cfg = testbed.write_registry_config(d, port, log_level="warn")
    reg = Server("registry", ["docker-registry", "serve", str(cfg)], d / "registry.log")
    b.servers.append(reg)
    b.host = f"127.0.0.1:{port}"
    reg.wait_http(f"http://{b.host}/v2/")
    SERVER_PIDS["registry"] = reg.proc.pid  # docker-registry itself: Popen without a shell
    log(f"registry on {b.host} (pid {reg.proc.pid})")

    port_file = b.work / "fault_proxy.port"
    proxy = Server(
        "fault_proxy",
        [sys.executable, str(FAULT_PROXY), "--upstream", b.host, "--port-file", str(port_file)],
        b.work / "fault_proxy.log",
    )
    b.servers.append(proxy)
    ports = testbed.wait_port_file(port_file, check_alive=proxy.check_alive, name="fault proxy", timeout=30)
    b.proxy = f"127.0.0.1:{ports['port']}"
    b.proxy_testbed = testbed.Testbed({"faulty": {"host": b.proxy, "log": f"http://{b.proxy}/__log__"}})
    proxy.wait_http(f"http://{b.proxy}/v2/")
    SERVER_PIDS["fault_proxy"] = proxy.proc.pid
    log(f"request-counting proxy on {b.proxy} (pid {proxy.proc.pid})")


def clear_requests(b: RunState) -> None:
    b.proxy_testbed.clear_fault_log()


def record_requests(b: RunState, case: str, tool: str) -> None:
    """Keeps the registry requests the proxy saw since clear_requests(), for the table of
    requests per operation."""
    entries = b.proxy_testbed.fault_log("/v2/")
    reqs = [f"{e['method']} {e['path']} → {e['status']}" for e in entries]
    b.res.requests.setdefault(case, {})[tool] = {"count": len(reqs), "requests": reqs}
    log(f"  requests: {case} / {tool}: {len(reqs)}: {'; '.join(reqs)[:300]}")
