#!/usr/bin/env bash
# The short demo: install the Python package and the wasm-image command line from this
# clone, then, with no server at all (the embedded default store is an OCI layout
# directory), build an example proxy-wasm plugin into an image, inspect it, pull it back
# and check that the bytes are the same and still a valid module.
# Needs python3 with pip and a Rust toolchain (rustup's cargo); everything else comes
# from PyPI and crates.io.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../.ci/env.sh
. .ci/env.sh
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore

step() { printf '\n== %s\n' "$*"; }

step "install the package and CLI (builds the native core with maturin; a few minutes the first time)"
python3 -m pip install -q . wasmtime
wasm_image() { python3 -m wasm_image "$@"; }   # the same program as the wasm-image script

work=$(mktemp -d /tmp/wasm-image-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

step "compile the example plugin (tests/support/fixtures/plugin.wat)"
python3 -c 'import sys, wasmtime; open(sys.argv[2], "wb").write(wasmtime.wat2wasm(open(sys.argv[1]).read()))' \
    tests/support/fixtures/plugin.wat "$work/plugin.wasm"
ls -l "$work/plugin.wasm"

step "build it into an OCI layout directory"
wasm_image build "$work/plugin.wasm" -t "oci:$work/store:add-header" \
    --type envoy_proxy --root-id add_header_root_id --annotation org.example/demo=yes

step "inspect it"
wasm_image inspect "oci:$work/store:add-header"

step "pull it back"
wasm_image pull "oci:$work/store:add-header" -o "$work/pulled.wasm"

step "check the bytes (and the same from Python)"
cmp "$work/plugin.wasm" "$work/pulled.wasm"
python3 - "$work" <<'PY'
import sys, wasmtime, wasm_image
work = sys.argv[1]
original = open(f"{work}/plugin.wasm", "rb").read()
img = wasm_image.pull(f"oci:{work}/store:add-header")
assert img.module == original, "module bytes differ"
wasmtime.Module.validate(wasmtime.Engine(), img.module)
print(f"{img.variant} image {img.manifest_digest}")
print(f"module {img.module_digest}: {len(img.module)} bytes, identical and valid")
PY
echo
echo "demo OK"
