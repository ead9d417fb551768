"""The real cosign CLI, run strictly offline, for the Python tests and the benchmarks.

Its home, docker config and TUF root live in a temporary folder, the key password is in
the environment, nothing goes to a transparency log, and `verify` gets an empty trusted
root (without one it first downloads Sigstore's). cosign is looked for on PATH and in
``$WASM_IMAGE_GO_TOOLS/bin`` (where ``.ci/install`` builds it); when it is missing,
``Cosign.find()`` returns None outside CI and raises under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

PASSWORD = "test-password"
EMPTY_TRUSTED_ROOT = b'{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'


def find_binary() -> Optional[str]:
    tools = os.environ.get("WASM_IMAGE_GO_TOOLS") or str(Path.home() / ".cache" / "wasm-image" / "go-tools")
    path = os.pathsep.join([os.environ.get("PATH", ""), str(Path(tools) / "bin")])
    found = shutil.which("cosign", path=path)
    if found is None and os.environ.get("CI"):
        raise RuntimeError("cosign is required under CI (run .ci/install)")
    return found


class Cosign:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._dir = tempfile.TemporaryDirectory(prefix="cosign-")
        self.dir = Path(self._dir.name)
        (self.dir / "EMPTY.json").write_bytes(EMPTY_TRUSTED_ROOT)

    @classmethod
    def find(cls) -> Optional["Cosign"]:
        binary = find_binary()
        return None if binary is None else cls(binary)

    def env(self) -> dict:  # type: ignore[type-arg]
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "DOCKER_CONFIG": str(self.dir / "docker"),
            "TUF_ROOT": str(self.dir / "tuf"),
            "COSIGN_PASSWORD": PASSWORD,
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], cwd=self.dir, env=self.env(), capture_output=True, text=True, timeout=120
        )

    def generate_key_pair(self) -> Tuple[Path, Path]:
        done = self.run("generate-key-pair")
        assert done.returncode == 0, done.stderr
        return self.dir / "cosign.key", self.dir / "cosign.pub"

    def sign(self, key: Path, reference: str) -> None:
        done = self.run("sign", "--key", str(key), "--allow-insecure-registry", "--tlog-upload=false", "-y", reference)
        assert done.returncode == 0, done.stderr

    def verify_args(self, public_key: Path, reference: str) -> List[str]:
        return [
            self.binary, "verify", "--key", str(public_key), "--allow-insecure-registry",
            "--insecure-ignore-tlog", "--trusted-root", str(self.dir / "EMPTY.json"), reference,
        ]

    def verify(self, public_key: Path, reference: str) -> subprocess.CompletedProcess[str]:
        return self.run(*self.verify_args(public_key, reference)[1:])
