"""What one benchmark run knows, shared by its setup and its cases: the settings from
the command line, the work folder and its scratch files, the servers, the tools (usable
or why not, their versions), the fixture modules and images, and the results so far;
with the helpers that only read it (the containers tools' configuration, the pyworker
command line, usable/want)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import testbed
from harness.common import BENCH
from harness.processes import Server, clean_env
from harness.results import Results


class RunState:
    """Filled in by the setup (harness.tools, harness.servers, harness.fixtures), read by
    the cases; harness.bench.Bench adds the measuring on top."""

    def __init__(self, args, work: Path):
        self.args = args
        self.work = work
        self.repeats = args.repeats or (3 if args.quick else 7)
        self.sizes = sorted({1, 50, *(int(x) for x in args.sizes.split(","))}) if args.sizes else [1, 50, 200]
        self.res = Results()
        self.servers: list[Server] = []
        self.python = args.python or sys.executable
        self.tools: dict[str, str] = {}  # tool -> "" if usable, else why not
        self.versions: dict[str, str] = {}
        self.cli = ""  # the wasm-image command, once probed
        self.c_exe = ""  # bench/pull_c.c, once built
        self.host = ""
        self.proxy = ""
        self.proxy_testbed: testbed.Testbed | None = None  # the counting proxy, driven by the test bed's helpers
        self.modules: dict[int | str, Path] = {}
        self.nonce_offset: dict[int | str, int] = {}
        self.digests: dict[str, dict] = {}  # repo -> {"manifest":…, "module":…, "blob":…}
        self.runtime_config = b""
        self.compress_ratio = 0.0
        self.buildah_ids = 0
        self.floor_ids = 0
        self._containers: tuple[list[str], dict, Path] | None = None

    # -- scratch files ---------------------------------------------------------------
    def scratch(self, name: str) -> Path:
        p = self.work / "scratch" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def wipe(self, *paths: Path) -> None:
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass

    # -- the containers tools' own configuration, all in the work folder ---------------
    def _containers_config(self) -> tuple[list[str], dict, Path]:
        if self._containers is None:
            buildah, env, policy = testbed.containers_config(self.work / "containers")
            self._containers = buildah, clean_env(env), policy
        return self._containers

    def containers_env(self) -> dict:
        return self._containers_config()[1]

    @property
    def policy(self) -> str:
        return str(self._containers_config()[2])

    def buildah(self) -> list[str]:
        return list(self._containers_config()[0])

    # -- the Python API and oras-py run in bench/pyworker.py ------------------------------
    def py_env(self) -> dict:
        return clean_env({"PYTHONDONTWRITEBYTECODE": "1"})

    def pyworker(self, op: str, args: dict) -> list[str]:
        return [self.python, str(BENCH / "pyworker.py"), op, json.dumps(args)]

    def usable(self, key: str) -> bool:
        return not self.tools.get(key)

    def want(self, case: str) -> bool:
        return not self.args.only or any(o in case for o in self.args.only)
