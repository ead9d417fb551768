"""The ``wasm-image`` command line (also ``python -m wasm_image``).

The command line is native code (the Rust crate ``wasm-image-cli``): the ``wasm-image``
command that ``pip`` installs is that binary, and :func:`main` runs the same code inside
the extension. ``wasm-image --help`` lists the verbs and options.

Exit status: 0 on success, 2 for a usage error, 130 after Ctrl-C, and for a failure of
the library ``10 +`` the error kind's number (the same numbers as the C enum)::

    11 INVALID_ARGUMENT   15 FORBIDDEN        19 LIMIT_EXCEEDED   23 IO
    12 INVALID_REFERENCE  16 RATE_LIMITED     20 NETWORK          24 REGISTRY
    13 NOT_FOUND          17 INVALID_FORMAT   21 TIMEOUT          25 INTERNAL
    14 UNAUTHORIZED       18 DIGEST_MISMATCH  22 CANCELLED

On failure one line ``error: KIND: message`` goes to stderr (and with ``--json`` an
``{"error": {...}}`` object to stdout).
"""

from __future__ import annotations

import sys

from wasm_image._native import run_cli

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit
    status."""
    args = sys.argv[1:] if argv is None else list(argv)
    # The native code writes to the file descriptors: what Python buffered goes first.
    sys.stdout.flush()
    sys.stderr.flush()
    return run_cli(["wasm-image", *args])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
