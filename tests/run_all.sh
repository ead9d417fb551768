#!/usr/bin/env bash
# Runs every test against real servers: installs what is missing, starts the test bed
# (registries plain / basic auth / TLS / token auth / mirror, a fault-injecting proxy,
# images made by buildah and skopeo), runs the Rust, Python and C/C++ suites, and stops
# everything it started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash .ci/install

echo "== formatting, lints and the committed C header"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

state=$(mktemp -d /tmp/wasm-image-testbed.XXXXXX)
stop_testbed() { python3 tests/support/testbed.py stop --state "$state" || true; }
trap stop_testbed EXIT
python3 tests/support/testbed.py start --state "$state"
export WASM_IMAGE_TESTBED="$state/testbed.json"

echo "== Rust core (unit, formats, interop, registry)"
cargo test --locked -p wasm-image

echo "== test bed self-check"
python3 -m pytest -q tests/support/test_testbed.py

if [ -f tests/python/conftest.py ]; then
  echo "== Python package and CLI"
  python3 -m pip install -q --force-reinstall --no-deps .
  python3 -m pytest -q tests/python
fi

if [ -x tests/c/run.sh ]; then
  echo "== C ABI (CTest, valgrind, AddressSanitizer)"
  bash tests/c/run.sh
fi
echo "== all suites passed"
