"""Test Wasm modules: the test bed's small proxy-wasm module plus one custom section of
random bytes, of an exact size."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import testbed
from testbed import leb128
from harness.common import MiB
from harness.processes import run_quiet

CUSTOM_NAME = b"bench.random"
NONCE_LEN = 16
EMPTY_MODULE = b"\0asm\x01\0\0\0"


def small_module(work: Path) -> bytes:
    """The test bed's proxy-wasm fixture (exports proxy_abi_version_0_2_1) when wabt is
    there, else the 8-byte empty module."""
    if testbed.PLUGIN_WAT.exists() and shutil.which("wat2wasm"):
        out = work / "plugin-small.wasm"
        run_quiet(["wat2wasm", str(testbed.PLUGIN_WAT), "-o", str(out)])
        return out.read_bytes()
    return EMPTY_MODULE


def compressible_bytes(n: int) -> bytes:
    """Bytes that gzip -6 shrinks about 2.6 times, like real Wasm code: a random
    sequence of 6-byte words drawn from a vocabulary of 2048 random words."""
    vocab = [os.urandom(6) for _ in range(2048)]
    count = n // 6 + 1
    idx = os.urandom(2 * count)
    return b"".join(vocab[(idx[2 * i] << 8 | idx[2 * i + 1]) & 2047] for i in range(count))[:n]


def write_module(path: Path, base: bytes, total: int, compressible: bool = False) -> int:
    """Writes base + one custom section (id 0, LEB128 size, name, random payload) so that
    the file is exactly `total` bytes; returns the payload's offset (its first NONCE_LEN
    bytes can be rewritten to make a distinct module of the same size)."""
    name = leb128(len(CUSTOM_NAME)) + CUSTOM_NAME
    for size_len in range(1, 6):
        content = total - len(base) - 1 - size_len
        if len(leb128(content)) == size_len:
            break
    else:
        raise ValueError(f"cannot make a {total}-byte module")
    payload = content - len(name)
    header = base + b"\x00" + leb128(content) + name
    with open(path, "wb") as f:
        f.write(header)
        left = payload
        while left:
            n = min(left, 4 * MiB)
            chunk = compressible_bytes(n) if compressible else os.urandom(n)
            f.write(chunk)
            left -= len(chunk)
    assert path.stat().st_size == total
    return len(header)


def distinct_copy(src: Path, dst: Path, nonce_offset: int) -> None:
    """A copy of src whose custom section starts with fresh random bytes: same size,
    another digest, so no client can skip the upload because the blob is known."""
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(nonce_offset)
        f.write(os.urandom(NONCE_LEN))


def validate_module(path: Path) -> str:
    try:
        import wasmtime  # type: ignore
    except ImportError:
        data = path.read_bytes()[:8]
        return "header only (wasmtime not installed)" if data == EMPTY_MODULE else "INVALID"
    engine = wasmtime.Engine()
    wasmtime.Module.validate(engine, path.read_bytes())
    return f"validated by wasmtime {getattr(wasmtime, '__version__', '')}".strip()
