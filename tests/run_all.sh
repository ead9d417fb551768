#!/usr/bin/env bash
# Runs every test against real servers: installs what is missing, starts the test bed
# (registries plain / basic auth / TLS / token auth / mirror, a fault-injecting proxy,
# images made by buildah and skopeo), runs the Rust, Python, C/C++ and Go suites, and stops
# everything it started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash .ci/install
# The tools .ci/install just built (cosign, staticcheck, crane) on PATH: the signing
# tests of every suite run the real cosign.
# shellcheck source=../.ci/env.sh
. .ci/env.sh

echo "== formatting, lints and the committed C header"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

state=$(mktemp -d /tmp/wasm-image-testbed.XXXXXX)
log=$(mktemp /tmp/wasm-image-tests.XXXXXX)
finish() {
  status=$?
  python3 tests/support/testbed.py stop --state "$state" || true
  # Back to the real output, and let tee write out everything before the last line.
  exec 1>&3 2>&4
  wait "$tee_pid" 2>/dev/null || true
  # One closing line over every runner: cargo test, pytest, the C test program, CTest,
  # go test.
  python3 tests/support/tally.py "$log" "$status"
  rm -f "$log"
  exit "$status"
}
trap finish EXIT
exec 3>&1 4>&2
exec > >(tee -a "$log") 2>&1
tee_pid=$!
python3 tests/support/testbed.py start --state "$state"
export WASM_IMAGE_TESTBED="$state/testbed.json"

echo "== a keyless-signed image from a test Sigstore, for the Python, C and Go suites"
cargo run --locked -q -p wasm-image --features testkit --example keyless_fixture -- "$state/keyless"
export WASM_IMAGE_KEYLESS_FIXTURE="$state/keyless"

echo "== Rust core (unit, formats, interop, registry)"
cargo test --locked -p wasm-image

echo "== command line (parsing, output)"
cargo test --locked -p wasm-image-cli

echo "== test bed self-check"
python3 -m pytest -q tests/support/test_testbed.py

if [ -f tests/python/conftest.py ]; then
  echo "== Python package and CLI"
  python3 -m pip install -q --force-reinstall --no-deps .
  # The CLI tests run against the native binary pip installed and `python -m wasm_image`;
  # here a missing binary is a failure, not a skip.
  WASM_IMAGE_REQUIRE_NATIVE_CLI=1 python3 -m pytest -q tests/python
fi

echo "== fuzz targets (10,000 inputs each from their seeds, a fixed random seed; FUZZING.md has the long runs)"
bash fuzz/smoke.sh 10000

if [ -x tests/c/run.sh ]; then
  echo "== C ABI (CTest, valgrind, AddressSanitizer)"
  bash tests/c/run.sh
fi

if [ -x tests/go/run.sh ]; then
  echo "== Go package (vet, staticcheck, go test -race, the watch example)"
  bash tests/go/run.sh
fi

if [ -x tests/release/run.sh ]; then
  echo "== release artifacts (wheel, sdist, C SDK, SBOMs, API reference) installed as users do"
  bash tests/release/run.sh
fi
echo "== all suites passed"
