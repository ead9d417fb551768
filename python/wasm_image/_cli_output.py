"""How the command line shows results, errors and progress, per ``--json`` / ``--quiet``."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import IO, Any, Callable, Dict, Optional, Sequence

    from wasm_image import ProgressEvent, WasmImageError


class Output:
    """Where results, messages and progress go, per ``--json`` / ``--quiet``."""

    def __init__(self, as_json: bool, quiet: bool, stdout: IO[str], stderr: IO[str]) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.stdout = stdout
        self.stderr = stderr

    def result(self, data: Dict[str, Any], human: Sequence[str]) -> None:
        if self.as_json:
            import json

            json.dump(data, self.stdout, indent=2, sort_keys=False)
            self.stdout.write("\n")
        elif not self.quiet:
            for line in human:
                self.stdout.write(line + "\n")
        self.stdout.flush()

    def error(self, err: WasmImageError) -> None:
        if self.as_json:
            import json

            json.dump(
                {"error": {"kind": err.kind, "message": err.message, "status": err.status, "code": err.code}},
                self.stdout,
            )
            self.stdout.write("\n")
            self.stdout.flush()
        self.stderr.write(f"error: {err.kind}: {err.message}\n")
        self.stderr.flush()

    def progress(self) -> Optional[Callable[[ProgressEvent], None]]:
        """A progress bar on stderr when it is a terminal and output is for people."""
        if self.quiet or self.as_json or not self.stderr.isatty():
            return None
        return ProgressBars(self.stderr)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - the loop always returns


class ProgressBars:
    """One line per blob, redrawn in place; plain ANSI-free carriage returns."""

    WIDTH = 30

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.current: Optional[str] = None
        self.finished: set[str] = set()
        self.last_draw = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if event.digest in self.finished:
            return
        if self.current is not None and self.current != event.digest:
            self.stream.write("\n")
        self.current = event.digest
        done = event.done >= event.total
        now = time.monotonic()
        if not done and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        fraction = 1.0 if event.total == 0 else min(1.0, event.done / event.total)
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        short = event.digest.split(":", 1)[-1][:12]
        self.stream.write(f"\r{short} [{bar}] {_size(event.done)} / {_size(event.total)}")
        if done:
            self.stream.write("\n")
            self.finished.add(event.digest)
            self.current = None
        self.stream.flush()


# ---- verbs -----------------------------------------------------------------------------
