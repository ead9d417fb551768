"""Paths, units, the log line, and the names of the tools that more than one case
family and the report refer to."""

from __future__ import annotations

import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]  # bench/: pyworker.py, pull_c.c, runstat.c, outputs
ROOT = BENCH.parent
MiB = 1 << 20

CURL_W = "%{time_total}\\n"  # curl -w: its own time of each transfer, one line each
VERIFIED = "curl piped to openssl sha256 (verified floor)"
BUILDAH = "buildah from+copy+config+commit"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
