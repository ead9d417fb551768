"""What every server of the test bed does once it listens: tell the test bed its port
(written atomically to --port-file, so a reader never sees half a file) and serve until
stopped."""

from __future__ import annotations

import json
import os
import sys
from http.server import HTTPServer


def announce(port_file: str | None, info: dict, banner: str) -> None:
    """Writes `info` (plus this process's pid) to port_file, and a banner on stderr."""
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({**info, "pid": os.getpid()}, f)
        os.replace(tmp, port_file)
    sys.stderr.write(banner + "\n")
    sys.stderr.flush()


def serve(server: HTTPServer) -> int:
    """Serves until interrupted; the exit status of a server process."""
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0
