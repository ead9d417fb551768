#!/usr/bin/env python3
"""The shared test bed: real registries on loopback, for every test suite.

Command line::

    python3 tests/support/testbed.py start  --state DIR   # start, wait, write DIR/testbed.json
    python3 tests/support/testbed.py status --state DIR   # which processes still run
    python3 tests/support/testbed.py stop   --state DIR [--keep-logs]

``start`` returns once everything answers; the servers keep running in the background
(each in its own process group, PIDs in ``DIR/pids.json``, output in ``DIR/logs/``).
``stop`` kills exactly those process groups and removes DIR (only a DIR that ``start``
made: it carries a ``.testbed-state`` marker).

Servers, all on 127.0.0.1 with ports picked at start:

* ``plain``  docker-registry (CNCF distribution 2.8), HTTP, no auth;
* ``basic``  HTTP + htpasswd (bcrypt), alice / wonderland;
* ``tls``    HTTPS, certificate signed by a CA made at start (``ca_cert``);
* ``token``  HTTP + ``auth.token``, tokens from ``token_server.py`` (bob / builder;
  anonymous pull of ``public/*``);
* ``mirror`` pull-through cache (``proxy.remoteurl``) of ``plain``;
* ``faulty`` ``fault_proxy.py`` in front of ``plain`` (see that file for the rule API);
* ``proxy``  ``forward_proxy.py``, an HTTP forward proxy (CONNECT and absolute-form
  requests, loopback targets only) with a log of what it carried, for HTTPS_PROXY tests.

Fixtures made by buildah and skopeo are pushed to ``plain`` (and copied to the other
registries, an OCI layout and two archives); see ``FIXTURES`` in the README of this
folder or ``testbed.json`` itself.

As a module (from tests): ``from testbed import Testbed``; ``Testbed.from_env()`` gives
the parsed ``testbed.json`` named by ``$WASM_IMAGE_TESTBED`` (or None), with helpers
for the fault proxy and for plain HTTP requests.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ENV_VAR = "WASM_IMAGE_TESTBED"
HERE = Path(__file__).resolve().parent
MARKER = ".testbed-state"

BASIC_USER, BASIC_PASSWORD = "alice", "wonderland"
TOKEN_USER, TOKEN_PASSWORD = "bob", "builder"
# What a docker config's "identitytoken" holds for bob (an OAuth2 refresh token).
TOKEN_IDENTITY = "bob-identity-token"
TOKEN_SERVICE = "testbed-registry"
TOKEN_ISSUER = "testbed-token-issuer"

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)

PLUGIN_WAT = HERE / "fixtures" / "plugin.wat"  # the proxy-wasm fixture module's source
READY_TIMEOUT = 30.0  # seconds, per server
COMMAND_TIMEOUT = 120.0  # seconds, per external command
FIXED_MTIME = 1_600_000_000  # stable layer digests need a stable file mtime


# --------------------------------------------------------------------------------------
# Plain HTTP helpers (usable from tests)
# --------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_request(
    method: str,
    url: str,
    *,
    headers: dict | None = None,
    body: bytes | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    follow_redirects: bool = True,
):
    """One HTTP request; returns (status, headers, body) and never raises on an HTTP
    status. Network errors (refused, reset, timeout) do raise. Proxy settings in the
    environment are ignored: every server here is on loopback."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    handlers: list = [urllib.request.ProxyHandler({})]
    if context:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    if not follow_redirects:
        handlers.append(_NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        data = e.read() if e.fp is not None else b""
        return e.code, e.headers, data


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_challenge(header: str) -> tuple[str, dict]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = i + 1
            value = []
            while end < len(rest) and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < len(rest):
                    end += 1
                value.append(rest[end])
                end += 1
            params[key] = "".join(value)
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


# --------------------------------------------------------------------------------------
# The parsed testbed.json
# --------------------------------------------------------------------------------------


class Testbed(dict):
    """The parsed ``testbed.json`` (a dict) with a few helpers."""

    __test__ = False  # not a pytest test class

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Testbed":
        path = path or os.environ.get(ENV_VAR)
        if not path:
            raise RuntimeError(f"${ENV_VAR} is not set: start the test bed first")
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    @classmethod
    def from_env(cls) -> "Testbed | None":
        path = os.environ.get(ENV_VAR)
        return cls.load(path) if path else None

    # -- addresses ------------------------------------------------------------------
    def host(self, name: str) -> str:
        return self[name]["host"]

    def base_url(self, name: str) -> str:
        scheme = "https" if name == "tls" else "http"
        return f"{scheme}://{self[name]['host']}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self["tls"]["ca_cert"])

    @property
    def fixtures(self) -> dict:
        return self["fixtures"]

    @property
    def state_dir(self) -> str:
        return self["state_dir"]

    def request(self, name: str, method: str, path: str, **kwargs):
        """`http_request` against server `name` (the TLS one with the test bed's CA)."""
        if name == "tls":
            kwargs.setdefault("context", self.ssl_context())
        return http_request(method, self.base_url(name) + path, **kwargs)

    # -- fault proxy ----------------------------------------------------------------
    def _json(self, method: str, url: str, payload=None):
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, _, data = http_request(method, url, headers=headers, body=body)
        if status != 200:
            raise RuntimeError(f"{method} {url}: {status} {data[:500]!r}")
        return json.loads(data)

    def add_faults(self, rules: list[dict] | dict) -> list[dict]:
        """Append fault rules (see fault_proxy.py); returns the active rules."""
        return self._json("POST", self["faulty"]["control"], rules)["rules"]

    def set_faults(self, rules: list[dict]) -> list[dict]:
        """Replace all fault rules."""
        return self._json("PUT", self["faulty"]["control"], rules)["rules"]

    def clear_faults(self, match: str | None = None) -> None:
        url = self["faulty"]["control"]
        if match is not None:
            url += "?match=" + urllib.parse.quote(match, safe="")
        self._json("DELETE", url)

    def faults(self) -> list[dict]:
        return self._json("GET", self["faulty"]["control"])

    def fault_log(self, match: str | None = None) -> list[dict]:
        url = self["faulty"]["log"]
        if match is not None:
            url += "?match=" + urllib.parse.quote(match, safe="")
        return self._json("GET", url)

    def clear_fault_log(self) -> None:
        """Clears the proxy's and the redirect server's logs (affects parallel tests)."""
        self._json("DELETE", self["faulty"]["log"])

    def redirect_log(self) -> list[dict]:
        return self._json("GET", self["faulty"]["redirect_log"])

    def token_log(self) -> list[dict]:
        return self._json("GET", self["token"]["token_server"] + "/__log__")


# --------------------------------------------------------------------------------------
# Starting
# --------------------------------------------------------------------------------------


class StartError(RuntimeError):
    pass


def leb128(n: int) -> bytes:
    """Unsigned LEB128, how Wasm encodes sizes (used to build modules of any size)."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def free_port(taken: set[int] | None = None) -> int:
    """A free port on 127.0.0.1, never one already in `taken` (to which it is added)."""
    taken = set() if taken is None else taken
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port
    raise StartError("could not find a free port")


def q(value: object) -> str:
    """A YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(str(value))


def child_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    # Never let a proxy setting send loopback traffic elsewhere.
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


def tail(path: Path, lines: int = 30) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(data[-lines:])


def wait_port_file(path: Path, *, check_alive=None, name: str = "server", timeout: float = READY_TIMEOUT) -> dict:
    """The JSON a server writes (atomically) once it listens; `check_alive()` raises
    when the server has died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if check_alive:
            check_alive()
        time.sleep(0.05)
    raise StartError(f"{name} did not report its port within {timeout:.0f}s")


def wait_http(
    url: str,
    ok: tuple[int, ...] = (200,),
    *,
    check_alive=None,
    name: str = "server",
    context: ssl.SSLContext | None = None,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Polls `GET url` until it answers one of the `ok` statuses; `check_alive()` raises
    when the server has died meanwhile."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if check_alive:
            check_alive()
        try:
            status, _, _ = http_request("GET", url, context=context, timeout=2.0)
            if status in ok:
                return
            last = f"status {status}"
        except (OSError, ssl.SSLError) as e:
            last = repr(e)
        time.sleep(0.1)
    raise StartError(f"{name} did not answer {url} with {ok} within {timeout:.0f}s (last: {last})")


def write_registry_config(d: Path, port: int, extra: str = "", *, log_level: str = "info") -> Path:
    """A docker-registry config listening on 127.0.0.1:port with its storage in d/data
    (deletes allowed, no upload purging); `extra` is appended YAML (auth, tls, proxy).
    Returns the path of d/config.yml."""
    (d / "data").mkdir(parents=True)
    cfg = d / "config.yml"
    cfg.write_text(
        f"""version: 0.1
log:
  level: {log_level}
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {q(d / 'data')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {q(f'127.0.0.1:{port}')}
  secret: {q(os.urandom(16).hex())}
  headers:
    X-Content-Type-Options: [nosniff]
{extra}"""
    )
    return cfg


def containers_config(c: Path) -> tuple[list[str], dict, Path]:
    """Storage, registries, policy and auth files for buildah and skopeo, all inside
    folder c (vfs storage, no search registries, accept anything, no credentials).
    Returns (buildah argv prefix, the environment variables that point the tools at
    those files, the policy file)."""
    root, runroot, tmp = c / "storage", c / "run", c / "tmp"
    for p in (root, runroot, tmp):
        p.mkdir(parents=True)
    (c / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = {q(root)}\nrunroot = {q(runroot)}\n'
    )
    (c / "registries.conf").write_text('unqualified-search-registries = []\nshort-name-mode = "permissive"\n')
    (c / "containers.conf").write_text("[engine]\n")
    policy = c / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    (c / "auth.json").write_text('{"auths": {}}')
    env = {
        "CONTAINERS_STORAGE_CONF": str(c / "storage.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(c / "registries.conf"),
        "CONTAINERS_CONF": str(c / "containers.conf"),
        "REGISTRY_AUTH_FILE": str(c / "auth.json"),
        "TMPDIR": str(tmp),
        "BUILDAH_ISOLATION": "chroot",
    }
    buildah = ["buildah", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "vfs"]
    return buildah, env, policy


def get_manifest(host: str, repo: str, ref: str) -> tuple[str, dict, dict]:
    """GET a manifest over plain HTTP, accepting every manifest and index type:
    (its digest, the parsed manifest, the response headers)."""
    status, headers, body = http_request(
        "GET", f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT}
    )
    if status != 200:
        raise StartError(f"manifest {host}/{repo}:{ref}: HTTP {status} {body[:300]!r}")
    return "sha256:" + hashlib.sha256(body).hexdigest(), json.loads(body), headers


class Starter:
    def __init__(self, state: Path, verbose: bool = True):
        self.state = state
        self.logs = state / "logs"
        self.verbose = verbose
        self.ports: set[int] = set()
        self.popen: dict[str, subprocess.Popen] = {}
        self.records: dict[str, dict] = {}
        self.t0 = time.monotonic()

    def say(self, msg: str) -> None:
        if self.verbose:
            print(f"[testbed {time.monotonic() - self.t0:5.1f}s] {msg}", file=sys.stderr, flush=True)

    # -- processes ----------------------------------------------------------------
    def save_pids(self) -> None:
        tmp = self.state / "pids.json.tmp"
        tmp.write_text(json.dumps(self.records, indent=2))
        os.replace(tmp, self.state / "pids.json")

    def spawn(self, name: str, argv: list[str], cwd: Path | None = None) -> subprocess.Popen:
        log_path = self.logs / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(cwd or self.state),
                env=child_env(),
                start_new_session=True,
                close_fds=True,
            )
        self.popen[name] = proc
        self.records[name] = {"pid": proc.pid, "argv": argv, "log": str(log_path)}
        self.save_pids()
        return proc

    def run(
        self,
        argv: list[str],
        *,
        env: dict | None = None,
        log_name: str = "commands",
        input: bytes | None = None,
        log_output: bool = True,
    ) -> str:
        """Runs a command to completion; its output goes to logs/<log_name>.log (on
        success only when log_output)."""
        log_path = self.logs / f"{log_name}.log"
        try:
            proc = subprocess.run(
                argv,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                cwd=str(self.state),
                env=child_env(env),
                timeout=COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired as e:
            raise StartError(f"timed out after {COMMAND_TIMEOUT:.0f}s: {' '.join(argv)}") from e
        except FileNotFoundError as e:
            raise StartError(f"{argv[0]} is not installed (run .ci/install)") from e
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            if log_output or proc.returncode != 0:
                log.write(proc.stdout)
                log.write(proc.stderr)
            log.write(f"[exit {proc.returncode}]\n".encode())
        if proc.returncode != 0:
            raise StartError(
                f"command failed ({proc.returncode}): {' '.join(argv)}\n"
                f"{proc.stderr.decode(errors='replace')[-3000:]}"
            )
        return proc.stdout.decode(errors="replace")

    def check_alive(self, name: str) -> None:
        proc = self.popen[name]
        if proc.poll() is not None:
            raise StartError(
                f"{name} exited with {proc.returncode} while starting; log tail:\n"
                + tail(self.logs / f"{name}.log")
            )

    def wait_port_file(self, name: str, path: Path, timeout: float = READY_TIMEOUT) -> dict:
        return wait_port_file(path, check_alive=lambda: self.check_alive(name), name=name, timeout=timeout)

    def wait_http(
        self,
        name: str,
        url: str,
        ok: tuple[int, ...],
        context: ssl.SSLContext | None = None,
        timeout: float = READY_TIMEOUT,
    ) -> None:
        wait_http(url, ok, check_alive=lambda: self.check_alive(name), name=name, context=context, timeout=timeout)

    # -- preparation --------------------------------------------------------------
    def make_certs(self) -> dict:
        d = self.state / "certs"
        d.mkdir()
        cnf = d / "openssl.cnf"
        cnf.write_text(
            """[req]
distinguished_name = dn
prompt = no
[dn]
CN = wasm-image testbed
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[token]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""
        )
        o = "openssl"
        self.run([o, "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                  "-config", str(cnf), "-extensions", "v3_ca", "-subj", "/CN=wasm-image testbed CA",
                  "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem")], log_name="certs", log_output=False)
        for name, cn in (("server", "127.0.0.1"), ("token", "wasm-image testbed token signer")):
            self.run([o, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-config", str(cnf),
                      "-subj", f"/CN={cn}", "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr")],
                     log_name="certs", log_output=False)
            self.run([o, "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                      "-CAkey", str(d / "ca.key"), "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                      "-days", "30", "-extfile", str(cnf), "-extensions", name,
                      "-out", str(d / f"{name}.pem")], log_name="certs")
        # A directory in the layout skopeo's --cert-dir expects.
        (d / "skopeo").mkdir()
        shutil.copy(d / "ca.pem", d / "skopeo" / "ca.crt")
        return {
            "ca": d / "ca.pem",
            "server_cert": d / "server.pem",
            "server_key": d / "server.key",
            "token_cert": d / "token.pem",
            "token_key": d / "token.key",
            "skopeo_cert_dir": d / "skopeo",
        }

    def registry_config(self, name: str, port: int, extra: str) -> Path:
        return write_registry_config(self.state / "registries" / name, port, extra)

    def start_registry(self, name: str, extra_for_port) -> tuple[str, subprocess.Popen]:
        """Spawns docker-registry with its own config on a free port."""
        port = free_port(self.ports)
        cfg = self.registry_config(name, port, extra_for_port(port))
        proc = self.spawn(name, ["docker-registry", "serve", str(cfg)])
        return f"127.0.0.1:{port}", proc

    # -- fixtures -----------------------------------------------------------------
    def make_module(self) -> tuple[Path, str]:
        d = self.state / "fixtures"
        d.mkdir()
        wat = d / "plugin.wat"
        shutil.copy(PLUGIN_WAT, wat)
        wasm = d / "plugin.wasm"
        self.run(["wat2wasm", str(wat), "-o", str(wasm)], log_name="fixtures")
        data = wasm.read_bytes()
        if not data.startswith(b"\0asm\x01\0\0\0"):
            raise StartError("wat2wasm produced something that is not a core Wasm module")
        os.utime(wasm, (FIXED_MTIME, FIXED_MTIME))
        lic = d / "LICENSE"
        lic.write_text("This file is the first layer of the buildah-multilayer test fixture.\n")
        os.utime(lic, (FIXED_MTIME, FIXED_MTIME))
        return wasm, "sha256:" + hashlib.sha256(data).hexdigest()

    def containers_env(self) -> tuple[list[str], dict, Path]:
        c = self.state / "containers"
        c.mkdir()
        return containers_config(c)

    def make_fixtures(self, hosts: dict, certs: dict) -> dict:
        module, module_sha = self.make_module()
        fx = self.state / "fixtures"
        plain = hosts["plain"]
        b, env, policy = self.containers_env()
        sp = ["--signature-policy", str(policy)]

        def bd(*args: str) -> str:
            return self.run([*b, *args], env=env, log_name="fixtures")

        # One layer with plugin.wasm at the root: OCI (with the compat annotation) and Docker.
        bd("from", *sp, "--name", "tb-single", "scratch")
        bd("copy", "tb-single", str(module), "./")
        bd("config", "--annotation", "module.wasm.image/variant=compat", "tb-single")
        bd("commit", *sp, "--tls-verify=false", "--format", "oci", "tb-single",
           f"docker://{plain}/fixtures/buildah-oci:latest")
        bd("commit", *sp, "--tls-verify=false", "--format", "docker", "tb-single",
           f"docker://{plain}/fixtures/buildah-docker:latest")
        self.say("buildah: buildah-oci and buildah-docker pushed")

        # Two layers: a LICENSE layer from a first commit, then plugin.wasm on top.
        bd("from", *sp, "--name", "tb-base", "scratch")
        bd("copy", "tb-base", str(fx / "LICENSE"), "./")
        bd("commit", *sp, "--format", "oci", "tb-base", "localhost/testbed-multilayer-base:latest")
        bd("from", *sp, "--pull=never", "--name", "tb-multi", "localhost/testbed-multilayer-base:latest")
        bd("copy", "tb-multi", str(module), "./")
        bd("config", "--annotation", "module.wasm.image/variant=compat", "tb-multi")
        bd("commit", *sp, "--tls-verify=false", "--format", "oci", "tb-multi",
           f"docker://{plain}/fixtures/buildah-multilayer:latest")
        bd("rm", "--all")
        self.say("buildah: buildah-multilayer pushed")

        digests = {}
        for repo, layers in (("buildah-oci", 1), ("buildah-docker", 1), ("buildah-multilayer", 2)):
            digest, manifest, _ = get_manifest(plain, f"fixtures/{repo}", "latest")
            if len(manifest.get("layers", [])) != layers:
                raise StartError(f"fixtures/{repo} has {len(manifest.get('layers', []))} layers, expected {layers}")
            digests[repo] = digest

        # skopeo copies: local stores, and the other registries (exercising their auth
        # with a third-party client).
        sk = ["skopeo", "--policy", str(policy)]
        src_oci = f"docker://{plain}/fixtures/buildah-oci:latest"
        src_docker = f"docker://{plain}/fixtures/buildah-docker:latest"
        layout = self.state / "layout"
        oci_archive = self.state / "buildah-oci.tar"
        docker_archive = self.state / "buildah-docker.tar"
        nv = "--src-tls-verify=false"
        jobs = [
            [*sk, "copy", nv, src_oci, f"oci:{layout}:buildah-oci"],
            [*sk, "copy", nv, src_oci, f"oci-archive:{oci_archive}:buildah-oci"],
            [*sk, "copy", nv, src_docker, f"docker-archive:{docker_archive}:fixtures/buildah-docker:latest"],
            [*sk, "copy", nv, "--dest-tls-verify=false", "--dest-creds", f"{BASIC_USER}:{BASIC_PASSWORD}",
             src_oci, f"docker://{hosts['basic']}/fixtures/buildah-oci:latest"],
            [*sk, "copy", nv, "--dest-cert-dir", str(certs["skopeo_cert_dir"]),
             src_oci, f"docker://{hosts['tls']}/fixtures/buildah-oci:latest"],
            [*sk, "copy", nv, "--dest-tls-verify=false", "--dest-creds", f"{TOKEN_USER}:{TOKEN_PASSWORD}",
             src_oci, f"docker://{hosts['token']}/public/buildah-oci:latest"],
            [*sk, "copy", nv, "--dest-tls-verify=false", "--dest-creds", f"{TOKEN_USER}:{TOKEN_PASSWORD}",
             src_oci, f"docker://{hosts['token']}/private/buildah-oci:latest"],
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for f in [pool.submit(self.run, j, env=env, log_name="fixtures") for j in jobs]:
                f.result()
        self.say("skopeo: layout, archives and copies to basic/tls/token written")

        index = json.loads((layout / "index.json").read_text())
        layout_digest = next(
            m["digest"] for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "buildah-oci"
        )
        if layout_digest != digests["buildah-oci"]:
            self.say(f"note: skopeo rewrote the manifest for the layout ({layout_digest})")
        digests["layout"] = layout_digest
        with tarfile.open(docker_archive) as tar:
            member = tar.extractfile("manifest.json")
            repo_tags = (json.load(member)[0].get("RepoTags") or []) if member is not None else []

        return {
            "module": str(module),
            "module_sha256": module_sha,
            "module_size": module.stat().st_size,
            "wat": str(fx / "plugin.wat"),
            "buildah-oci": f"{plain}/fixtures/buildah-oci:latest",
            "buildah-docker": f"{plain}/fixtures/buildah-docker:latest",
            "buildah-multilayer": f"{plain}/fixtures/buildah-multilayer:latest",
            "oci-layout": f"oci:{layout}:buildah-oci",
            "oci-archive": f"oci-archive:{oci_archive}:buildah-oci",
            "docker-archive": f"docker-archive:{docker_archive}",
            "docker-archive-repotags": repo_tags,
            "basic": f"{hosts['basic']}/fixtures/buildah-oci:latest",
            "tls": f"{hosts['tls']}/fixtures/buildah-oci:latest",
            "token-public": f"{hosts['token']}/public/buildah-oci:latest",
            "token-private": f"{hosts['token']}/private/buildah-oci:latest",
            "digests": digests,
        }

    # -- everything ---------------------------------------------------------------
    def start(self) -> dict:
        for tool in ("docker-registry", "openssl", "htpasswd", "wat2wasm", "buildah", "skopeo"):
            if shutil.which(tool) is None:
                raise StartError(f"{tool} is not installed (run .ci/install)")
        self.logs.mkdir()
        (self.state / "run").mkdir()
        certs = self.make_certs()
        htpasswd = self.state / "htpasswd"
        self.run(["htpasswd", "-Bbc", str(htpasswd), BASIC_USER, BASIC_PASSWORD], log_name="certs")
        self.say("certificates and htpasswd made")

        py = sys.executable or "python3"
        token_port_file = self.state / "run" / "token_server.port"
        self.spawn("token_server", [
            py, str(HERE / "token_server.py"), "--port-file", str(token_port_file),
            "--key", str(certs["token_key"]), "--cert", str(certs["token_cert"]),
            "--issuer", TOKEN_ISSUER, "--service", TOKEN_SERVICE,
            "--username", TOKEN_USER, "--password", TOKEN_PASSWORD,
            "--refresh-token", TOKEN_IDENTITY,
        ])
        hosts: dict[str, str] = {}
        hosts["plain"], _ = self.start_registry("plain", lambda port: "")
        hosts["basic"], _ = self.start_registry("basic", lambda port: f"""auth:
  htpasswd:
    realm: {q('testbed-basic')}
    path: {q(htpasswd)}
""")
        hosts["tls"], _ = self.start_registry("tls", lambda port: f"""  tls:
    certificate: {q(certs['server_cert'])}
    key: {q(certs['server_key'])}
""")
        token_port = self.wait_port_file("token_server", token_port_file)["port"]
        token_server = f"http://127.0.0.1:{token_port}"
        hosts["token"], _ = self.start_registry("token", lambda port: f"""auth:
  token:
    realm: {q(token_server + '/token')}
    service: {q(TOKEN_SERVICE)}
    issuer: {q(TOKEN_ISSUER)}
    rootcertbundle: {q(certs['ca'])}
""")
        hosts["mirror"], _ = self.start_registry("mirror", lambda port: f"""proxy:
  remoteurl: {q('http://' + hosts['plain'])}
""")
        fault_port_file = self.state / "run" / "fault_proxy.port"
        self.spawn("fault_proxy", [py, str(HERE / "fault_proxy.py"), "--upstream", hosts["plain"],
                                   "--port-file", str(fault_port_file)])

        proxy_port_file = self.state / "run" / "forward_proxy.port"
        self.spawn("forward_proxy", [py, str(HERE / "forward_proxy.py"),
                                     "--port-file", str(proxy_port_file)])

        ctx = ssl.create_default_context(cafile=str(certs["ca"]))
        self.wait_http("token_server", token_server + "/healthz", (200,))
        self.wait_http("plain", f"http://{hosts['plain']}/v2/", (200,))
        self.wait_http("basic", f"http://{hosts['basic']}/v2/", (401,))
        self.wait_http("tls", f"https://{hosts['tls']}/v2/", (200,), context=ctx)
        self.wait_http("token", f"http://{hosts['token']}/v2/", (401,))
        self.wait_http("mirror", f"http://{hosts['mirror']}/v2/", (200,))
        ports = self.wait_port_file("fault_proxy", fault_port_file)
        hosts["faulty"] = f"127.0.0.1:{ports['port']}"
        self.wait_http("fault_proxy", f"http://{hosts['faulty']}/v2/", (200,))
        proxy = f"http://127.0.0.1:{self.wait_port_file('forward_proxy', proxy_port_file)['port']}"
        self.wait_http("forward_proxy", proxy + "/__log__", (200,))
        self.say("servers answer: " + ", ".join(f"{k}={v}" for k, v in hosts.items()))

        fixtures = self.make_fixtures(hosts, certs)

        faulty_ctl = f"http://{hosts['faulty']}"
        return {
            "plain": {"host": hosts["plain"]},
            "basic": {"host": hosts["basic"], "username": BASIC_USER, "password": BASIC_PASSWORD},
            "tls": {"host": hosts["tls"], "ca_cert": str(certs["ca"])},
            "token": {"host": hosts["token"], "username": TOKEN_USER, "password": TOKEN_PASSWORD,
                      "token_server": token_server, "identity_token": TOKEN_IDENTITY},
            "proxy": {"url": proxy, "log": proxy + "/__log__"},
            "mirror": {"host": hosts["mirror"], "upstream": hosts["plain"]},
            "faulty": {"host": hosts["faulty"], "control": faulty_ctl + "/__faults__",
                       "log": faulty_ctl + "/__log__",
                       "redirect_log": f"http://127.0.0.1:{ports['redirect_port']}/__log__"},
            "fixtures": fixtures,
            "state_dir": str(self.state),
        }


def prepare_state_dir(state: Path) -> None:
    text = str(state)
    if ":" in text or "@" in text or any(c.isspace() for c in text):
        raise StartError(f"the state directory {text!r} must not contain ':', '@' or spaces "
                         "(they would break location strings)")
    if state.exists():
        if (state / MARKER).exists():
            stop(state, quiet=True)
        elif any(state.iterdir()):
            raise StartError(f"{state} exists, is not empty and was not made by the test bed: refusing to use it")
    state.mkdir(parents=True, exist_ok=True)
    (state / MARKER).write_text("made by tests/support/testbed.py; `stop` deletes this directory\n")


def start(state_dir: str | os.PathLike, verbose: bool = True) -> Testbed:
    """Starts everything and returns the parsed testbed.json. On failure, kills what was
    started, keeps the logs and raises StartError."""
    state = Path(state_dir).absolute()
    prepare_state_dir(state)
    starter = Starter(state, verbose=verbose)
    try:
        info = starter.start()
    except BaseException as e:
        print(f"[testbed] start failed: {e}", file=sys.stderr)
        logs = state / "logs"
        if logs.is_dir():
            for log in sorted(logs.glob("*.log")):
                print(f"----- tail of {log} -----\n{tail(log)}", file=sys.stderr)
        kill_recorded(state, quiet=False, zombie_wait=0)
        for proc in starter.popen.values():  # our own children: reap them here
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        raise
    tmp = state / "testbed.json.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, state / "testbed.json")
    starter.say(f"ready: {state / 'testbed.json'}")
    return Testbed(info)


# --------------------------------------------------------------------------------------
# Stopping
# --------------------------------------------------------------------------------------


def _proc_state(pid: int) -> str | None:
    """The /proc state letter, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
        return data.rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    st = _proc_state(pid)
    return st is not None and st not in ("Z", "X")


def _is_ours(pid: int, argv: list[str]) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return False
    # Compare program names and the first argument (script or "serve").
    if not cmdline:
        return False
    want = [os.path.basename(argv[0])] + argv[1:2]
    have = [os.path.basename(cmdline[0])] + cmdline[1:2]
    return want == have


def kill_recorded(state: Path, quiet: bool = False, grace: float = 5.0, zombie_wait: float = 6.0) -> list[str]:
    """Kills the process groups recorded in state/pids.json; returns what still runs."""
    pids_file = state / "pids.json"
    if not pids_file.exists():
        return []
    try:
        records = json.loads(pids_file.read_text())
    except ValueError:
        records = {}
    targets = {}
    for name, rec in records.items():
        pid = int(rec["pid"])
        if _alive(pid) and _is_ours(pid, rec["argv"]):
            targets[name] = pid
        elif _alive(pid) and not quiet:
            print(f"[testbed] pid {pid} ({name}) now runs something else: left alone", file=sys.stderr)

    def signal_all(sig):
        for pid in targets.values():
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in targets.values()):
        time.sleep(0.05)
    if any(_alive(p) for p in targets.values()):
        signal_all(signal.SIGKILL)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_alive(p) for p in targets.values()):
            time.sleep(0.05)
    # The servers were orphaned when `start` returned, so init reaps them; some inits
    # (a VM's or container's PID 1) do so only every few seconds. Wait a little for the
    # zombies to go too, so `pgrep` right after `stop` shows nothing.
    deadline = time.monotonic() + zombie_wait
    while time.monotonic() < deadline and any(_proc_state(p) is not None for p in targets.values()):
        time.sleep(0.1)
    left = [f"{n}({p})" for n, p in targets.items() if _alive(p)]
    if left and not quiet:
        print(f"[testbed] still running after SIGKILL: {', '.join(left)}", file=sys.stderr)
    if not quiet and targets:
        print(f"[testbed] stopped {', '.join(f'{n}({p})' for n, p in targets.items())}", file=sys.stderr)
    return left


def _unmount_under(state: Path) -> None:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    prefix = str(state) + "/"
    points = [ln.split()[4] for ln in lines if len(ln.split()) > 4 and ln.split()[4].startswith(prefix)]
    for mp in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)


def stop(state_dir: str | os.PathLike, keep_logs: bool = False, quiet: bool = False) -> int:
    state = Path(state_dir).absolute()
    if not state.exists():
        if not quiet:
            print(f"[testbed] {state} does not exist: nothing to stop", file=sys.stderr)
        return 0
    if not (state / MARKER).exists():
        print(f"[testbed] {state} was not made by the test bed: not touching it", file=sys.stderr)
        return 1
    left = kill_recorded(state, quiet=quiet)
    _unmount_under(state)

    def onerror(func, path, exc_info):
        try:
            os.chmod(path, 0o700)
            func(path)
        except OSError:
            pass

    for child in state.iterdir():
        if keep_logs and child.name in ("logs", MARKER):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, onerror=onerror)
        else:
            child.unlink(missing_ok=True)
    if not keep_logs:
        try:
            state.rmdir()
        except OSError:
            pass
    return 1 if left else 0


def status(state_dir: str | os.PathLike) -> int:
    state = Path(state_dir).absolute()
    pids_file = state / "pids.json"
    if not pids_file.exists():
        print("not started")
        return 1
    records = json.loads(pids_file.read_text())
    bad = 0
    for name, rec in records.items():
        pid = int(rec["pid"])
        ok = _alive(pid) and _is_ours(pid, rec["argv"])
        bad += not ok
        print(f"{name:14} pid {pid:<8} {'running' if ok else 'NOT RUNNING'}  log {rec['log']}")
    return 1 if bad else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Start or stop the shared test bed (real registries on loopback).")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("start", "stop", "status"):
        s = sub.add_parser(name)
        s.add_argument("--state", required=True, help="state directory (made by start, removed by stop)")
        if name == "stop":
            s.add_argument("--keep-logs", action="store_true", help="keep DIR/logs")
        if name == "start":
            s.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.cmd == "start":
        t0 = time.monotonic()
        try:
            tb = start(args.state, verbose=not args.quiet)
        except StartError:
            return 1
        print(os.path.join(tb.state_dir, "testbed.json"))
        print(f"[testbed] started in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        return 0
    if args.cmd == "stop":
        return stop(args.state, keep_logs=args.keep_logs)
    return status(args.state)


if __name__ == "__main__":
    sys.exit(main())
