"""``python -m wasm_image`` runs the ``wasm-image`` command line."""

import sys

from wasm_image.cli import main

if __name__ == "__main__":
    sys.exit(main())
