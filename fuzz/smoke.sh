#!/usr/bin/env bash
# A short run of every fuzz target from its committed seeds: builds them once with the
# nightly toolchain, then runs each for a fixed number of inputs from a fixed random seed,
# so the run is the same on every machine (a time bound would try more inputs on a fast
# machine than a slow one, and CI must not find new inputs by luck). Fails on any crash,
# hang or INTERNAL error (the crashing input is left in fuzz/artifacts/TARGET/). The long
# runs, which do search, are recorded in FUZZING.md.
#
#   bash fuzz/smoke.sh [RUNS_PER_TARGET]    (default 10000)
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-10000}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz smoke run: skipped (no nightly toolchain; cargo-fuzz needs one)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz smoke run: cargo-fuzz missing (.ci/install installs it)" >&2
  exit 1
fi

# No sanitizer: the code is safe Rust (AddressSanitizer would halve the speed and find
# nothing the Rust checks miss); debug assertions on, so integer overflow panics. The dev
# profile builds in half the CPU time of release, which matters more for a run of seconds
# than the speed of each input (the long runs in FUZZING.md use release).
cargo +nightly fuzz build --dev --sanitizer none --debug-assertions
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/debug"
# The archive and layout targets write files on every run: in memory they run ~6x faster.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
work=$(mktemp -d /tmp/wasm-image-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$work/$target" "artifacts/$target"
  echo "== fuzz $target ($runs inputs)"
  # New inputs go to the scratch corpus; the committed seeds are only read.
  "$bin/$target" "$work/$target" "seeds/$target" \
    -seed=1 -runs="$runs" -max_total_time=120 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 2>"$work/$target.log" || {
    tail -n 40 "$work/$target.log" >&2
    echo "fuzz $target: FAILED (input in fuzz/artifacts/$target/)" >&2
    exit 1
  }
  grep -E '^stat::number_of_executed_units|^Done' "$work/$target.log" || true
done
echo "== fuzz smoke run: every target passed"
