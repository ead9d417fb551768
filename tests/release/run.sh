#!/usr/bin/env bash
# The release artifacts as users get them, as CI runs it (from anywhere):
#
#   1. release/build.sh builds the wheel, sdist, C SDK, SBOMs and API reference into a
#      temporary folder (or takes WASM_IMAGE_RELEASE_DIR, already built, as is);
#   2. pytest tests/release installs and exercises them with no cargo on PATH and no
#      checkout in sight: the wheel in a fresh venv (README example, CLI), the SDK
#      unpacked and examples/pull.c built with pkg-config and CMake; the ABI check, the
#      one-version check and the documentation check;
#   3. cargo deny checks the dependency graph: licenses, banned crates, duplicate
#      versions, sources. Advisories need the RustSec database, fetched from a host this
#      machine may not reach: checked only where a copy exists, otherwise reported skipped.
#
# Registry checks use the test bed named by $WASM_IMAGE_TESTBED when it runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
. .ci/env.sh
# shellcheck source=../../release/tools.sh
. release/tools.sh
started=$SECONDS

work=""
if [ -z "${WASM_IMAGE_RELEASE_DIR:-}" ]; then
    work="$(mktemp -d /tmp/wasm-image-release.XXXXXX)"
    trap 'rm -rf "$work"' EXIT
    export WASM_IMAGE_RELEASE_DIR="$work/release"
    bash release/build.sh "$WASM_IMAGE_RELEASE_DIR"
fi
built=$SECONDS

printf '\n== release: the artifacts installed and used as users do\n'
python3 -m pytest -q -p no:cacheprovider tests/release

printf '\n== release: cargo deny (licenses, bans, duplicates, sources)\n'
cargo deny --locked check licenses bans sources
advisory_dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if compgen -G "$advisory_dbs/*" >/dev/null; then
    cargo deny --locked --offline check advisories
else
    echo "advisories: skipped: no copy of the RustSec advisory database in $advisory_dbs" \
        "(cargo deny fetches it from GitHub, which this machine cannot reach)"
fi
printf '\n== release: built in %d s, tested in %d s\n' "$((built - started))" "$((SECONDS - built))"
