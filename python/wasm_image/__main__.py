"""``python -m wasm_image`` runs the ``wasm-image`` command line."""

import sys

from wasm_image.cli import main

sys.exit(main())
