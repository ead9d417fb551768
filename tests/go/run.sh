#!/usr/bin/env bash
# The Go package's whole check, as CI runs it (from the repository root or anywhere):
#
#   1. ffi/install.sh --static-only installs libwasmimage into a temporary prefix, the
#      way the README tells a control-plane author to;
#   2. go vet and staticcheck are clean;
#   3. the example program links the library statically (no libwasmimage.so needed), and
#      the README's Go program builds by the README's steps;
#   4. go test -race runs every test and Example against the test bed's registries.
#
# Registry tests use the test bed named by $WASM_IMAGE_TESTBED; without it this script
# starts one of its own (unless WI_NO_TESTBED=1, when they say "skipped").
# Environment: CARGO_TARGET_DIR is shared with the other suites; WI_GO_KEEP=1 keeps the
# work directory; WI_GO_SHORT=1 runs the shorter finalizer test (go test -short).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
. .ci/env.sh

step() { printf '\n== go: %s\n' "$*"; }
fail() { printf 'go: FAILED: %s\n' "$*" >&2; exit 1; }
started=$SECONDS

for tool in go staticcheck pkg-config cargo; do
    command -v "$tool" >/dev/null 2>&1 || fail "missing $tool (run .ci/install)"
done

work="$(mktemp -d /tmp/wasm-image-go.XXXXXX)"
own_testbed=""
cleanup() {
    if [ -n "$own_testbed" ]; then
        python3 tests/support/testbed.py stop --state "$own_testbed" >/dev/null 2>&1 || true
    fi
    if [ "${WI_GO_KEEP:-}" = 1 ]; then echo "go: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

step "install the static library (ffi/install.sh --static-only)"
bash ffi/install.sh --static-only "$work/prefix"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# Go's build cache does not notice a changed C library or a new prefix (the -L path is
# recorded in the cached package): a define naming both makes the cache key change
# exactly when they do.
build_id="$( (echo "$work/prefix"; cat "$work/prefix/lib/libwasmimage.a" "$work/prefix/include/wasm_image.h") |
    sha256sum | cut -c1-16)"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DWASMIMAGE_LIBRARY_BUILD=$build_id"
echo "pkg-config: $(pkg-config --cflags --libs wasmimage)"

if [ -z "${WASM_IMAGE_TESTBED:-}" ] && [ "${WI_NO_TESTBED:-}" != 1 ] && command -v docker-registry >/dev/null 2>&1; then
    step "starting a test bed of our own"
    own_testbed="$work/testbed"
    python3 tests/support/testbed.py start --state "$own_testbed"
    export WASM_IMAGE_TESTBED="$own_testbed/testbed.json"
fi

cd go
step "go vet and staticcheck"
go vet ./...
staticcheck ./...
echo "ok"

step "the example links libwasmimage statically"
go build -o "$work/watch" ./examples/watch
if ldd "$work/watch" | grep -q wasmimage; then fail "examples/watch needs a shared libwasmimage"; fi
"$work/watch" -h >"$work/watch-help.txt" 2>&1 || true
grep -q '^usage: ' "$work/watch-help.txt" || fail "examples/watch does not run: $(cat "$work/watch-help.txt")"
echo "ok: $(head -n 1 "$work/watch-help.txt")"

step "the README's Go program builds, following the README's steps"
readme_mod="$work/readme-program"
mkdir -p "$readme_mod"
python3 - "$root/README.md" "$readme_mod/main.go" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("```go\npackage main")
end = text.index("```", start + 5)
open(sys.argv[2], "w").write(text[start + len("```go\n"):end])
PY
(
    cd "$readme_mod"
    go mod init example.com/my-control-plane >/dev/null 2>&1
    go mod edit -require=github.com/wasm-image/wasm-image/go@v0.0.0 -replace=github.com/wasm-image/wasm-image/go="$root/go"
    go mod tidy
    go vet .
    go build -o "$work/readme-program.bin" .
)
echo "ok"

step "go test -race"
short=()
if [ "${WI_GO_SHORT:-}" = 1 ]; then short=(-short); fi
go test -race -count=1 -v -timeout 10m "${short[@]}" ./...

step "all passed in $((SECONDS - started)) s"
