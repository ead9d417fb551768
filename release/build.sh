#!/usr/bin/env bash
# Builds every release artifact into one folder (default dist/release), from a clone, on
# Linux x86_64 with no container engine:
#
#   wasm_image-VERSION-cp39-abi3-manylinux_2_28_x86_64.whl    the Python package + the native CLI
#   wasm-image-VERSION-linux-x86_64                            the native CLI alone
#   wasm_image-VERSION.tar.gz                                  its sdist
#   wasm-image-c-VERSION-linux-x86_64.tar.gz                   the C SDK (ffi/package.sh)
#   *.cdx.json                                                 CycloneDX SBOMs of both
#   api/                  the API reference: python/ (HTML), c-api.md, go.txt (with go/)
#   SHA256SUMS
#
# Usage: release/build.sh [OUTDIR]    (a non-empty OUTDIR must be an earlier release:
#        it is replaced only once every step has passed)
#
# The wheel and the SDK are linked with zig against glibc 2.28 (maturin --zig, and
# cargo-zigbuild for the SDK; each in a target folder of its own), so they run on RHEL 8, Debian 10, Ubuntu 20.04 and later;
# maturin checks the wheel's symbols against its manylinux tag and auditwheel says it
# again. The version of everything is the Cargo workspace version. Tools come from
# release/tools.sh (pinned PyPI packages; cargo-cyclonedx from crates.io).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dest="${1:-dist/release}"
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ] && [ ! -f "$dest/SHA256SUMS" ]; then
    echo "release/build.sh: $dest is not empty and not a release folder; give another OUTDIR" >&2
    exit 2
fi
mkdir -p "$(dirname "$dest")"
# Everything is built into a fresh folder beside the destination, which replaces it only
# once every step has passed: a failed build leaves no half release behind.
out="$(mktemp -d "$(dirname "$dest")/.release.XXXXXX")"
sbom_name=""
cleanup() {
    if [ -n "$out" ]; then rm -rf "$out"; fi
    if [ -n "$sbom_name" ]; then rm -f "core/$sbom_name.json" "ffi/$sbom_name.json" "python/$sbom_name.json"; fi
}
trap cleanup EXIT
# shellcheck source=/dev/null
. .ci/env.sh
# shellcheck source=tools.sh
. release/tools.sh
step() { printf '\n== release: %s\n' "$*" >&2; }
started=$SECONDS

version="$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print({p["name"]: p["version"] for p in json.load(sys.stdin)["packages"]}["wasm-image"])')"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"

step "command line $version (the native wasm-image binary, glibc 2.28, stripped)"
# Linked with zig against glibc 2.28 like the wheel, in a target folder of its own. It
# ships alone and inside the wheel (staged into the wheel-data folder maturin packs; the
# PEP 517 backend does the same for `pip install .` with a host build).
cli_target="${CARGO_TARGET_DIR:-$root/target}/zig-cli"
CARGO_TARGET_DIR="$cli_target" cargo zigbuild --release --locked -p wasm-image-cli --bin wasm-image \
    --target x86_64-unknown-linux-gnu.2.28
cli="$out/wasm-image-$version-linux-x86_64"
install -m 0755 "$cli_target/x86_64-unknown-linux-gnu/release/wasm-image" "$cli"
strip --strip-all "$cli"
"$cli" --version | grep -qx "wasm-image $version" || { echo "the CLI does not report $version" >&2; exit 1; }
WASM_IMAGE_CLI_BINARY="$cli" "$WASM_IMAGE_TOOLS_PYTHON" python/build_backend/wasm_image_backend.py >/dev/null

step "wheel $version (abi3, manylinux_2_28, stripped; maturin embeds the Rust SBOM)"
# A target folder of its own: cargo fingerprints the linker, and maturin's zig wrapper is
# not the SDK's (cargo-zigbuild) nor the host's, so sharing one folder would make each
# build throw away the other's work.
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/zig-wheel" \
    maturin build --release --locked --zig --compatibility manylinux_2_28 --auditwheel check \
    --strip --out "$out"
wheel="$(ls "$out"/wasm_image-"$version"-*.whl)"
auditwheel show "$wheel" | tee "$out/auditwheel.txt"
grep -q '"manylinux_2_28_x86_64"' "$out/auditwheel.txt" ||
    { echo "auditwheel does not confirm manylinux_2_28" >&2; exit 1; }
rm "$out/auditwheel.txt"

step "sdist"
maturin sdist --out "$out"

step "SBOM of the wheel (the one maturin put in it)"
python3 - "$wheel" "$out/$(basename "$wheel").cdx.json" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
    sboms = [n for n in whl.namelist() if ".dist-info/sboms/" in n and n.endswith(".json")]
    if len(sboms) != 1:
        sys.exit(f"expected one SBOM in the wheel, found {sboms}")
    open(sys.argv[2], "wb").write(whl.read(sboms[0]))
PY

step "API reference (Python, C$( [ -f go/go.mod ] && echo ", Go"))"
"$WASM_IMAGE_TOOLS_PYTHON" release/api_docs.py "$out/api" --wheel "$wheel" --version "$version"

step "C SDK"
C_API_DOC="$out/api/c-api.md" bash ffi/package.sh "$out"

step "SBOM of the C SDK (cargo cyclonedx: the ffi crate's dependencies on linux x86_64)"
# cargo-cyclonedx writes one file beside each workspace member's Cargo.toml; keep the
# ffi crate's and leave no file behind in the tree.
sbom_name="wasm-image-c-$version-linux-x86_64.tar.gz.cdx"
cargo cyclonedx --manifest-path ffi/Cargo.toml --format json --spec-version 1.5 \
    --target x86_64-unknown-linux-gnu --override-filename "$sbom_name" -q
mv "ffi/$sbom_name.json" "$out/"

step "checksums"
(cd "$out" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)

chmod 0755 "$out"
rm -rf "$dest"
mv "$out" "$dest"
out="" # nothing left for cleanup to remove
final="$(cd "$dest" && pwd)"
step "done in $((SECONDS - started)) s: $final"
for f in "$final"/*.whl "$final/wasm_image-$version.tar.gz" "$final/wasm-image-c-$version-linux-x86_64.tar.gz"; do
    printf '  %-60s %6d KiB\n' "$(basename "$f")" "$(du -k "$f" | cut -f1)" >&2
done
