"""The parts of the benchmark; `bench/run.py` is its command line.

The test bed's helpers (tests/support/testbed.py: free ports, HTTP requests, waiting
for a server, registry and containers configs) are imported as `testbed`, not copied.
"""

import sys
from pathlib import Path

_SUPPORT = str(Path(__file__).resolve().parents[2] / "tests" / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)
