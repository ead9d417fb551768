#!/usr/bin/env bash
# Makes the C SDK: OUTDIR/wasm-image-c-VERSION-linux-x86_64.tar.gz, one folder holding
#
#   include/wasm_image.h
#   lib/libwasmimage.so.X.Y.Z, libwasmimage.so.X (soname), libwasmimage.so, libwasmimage.a
#   lib/pkgconfig/wasmimage.pc, lib/cmake/WasmImage/   (what ffi/install.sh installs)
#   lib/static/pkgconfig/wasmimage.pc                  (links the .a: cgo, static programs)
#   share/wasm-image/examples/                         (pull.c and its CMakeLists.txt)
#   README.md, share/doc/wasm-image/                   (CHANGELOG.md, c-api.md when given)
#
# Usage: ffi/package.sh [OUTDIR]    (default: dist)
#
# The layout is ffi/install.sh's own, run twice into a staging folder, so the SDK and a
# from-source install cannot drift apart. The library is linked with zig against glibc
# 2.28 (cargo-zigbuild, from release/tools.sh) so it loads on RHEL 8 and Ubuntu 20.04,
# not only on the build machine's glibc. Symbols are stripped (debug info from the
# static library, everything but the dynamic symbols from the shared one). The tarball is
# reproducible: sorted names, owner 0, file times from SOURCE_DATE_EPOCH or else the last
# commit. Environment: CARGO_TARGET_DIR (the build goes into its zig-sdk folder);
# C_API_DOC, a file copied in as c-api.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/dist}"
log() { printf '[ffi/package] %s\n' "$*" >&2; }

cd "$root"
# shellcheck source=/dev/null
. .ci/env.sh
# shellcheck source=../release/tools.sh
. release/tools.sh

pkgid="$(cargo pkgid -p wasm-image-ffi)"
version="${pkgid##*[@#]}"
major="${version%%.*}"
name="wasm-image-c-$version-linux-x86_64"
export RUST_TARGET="x86_64-unknown-linux-gnu.2.28" CARGO_RUSTC="cargo-zigbuild rustc"
# A target folder of its own: cargo fingerprints the linker, so a zig build sharing the
# host build's (or the wheel's) folder would rebuild everything each time they alternate.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/zig-sdk"

work="$(mktemp -d /tmp/wasm-image-sdk.XXXXXX)"
trap 'rm -rf "$work"' EXIT
sdk="$work/$name"

bash ffi/install.sh "$sdk"
# A second, static-only view for tools that cannot ask for static linking (cgo's
# `#cgo pkg-config:`): its lib folder holds only the archive, so -lwasmimage means it.
LIBDIR=lib/static bash ffi/install.sh --static-only "$sdk"
ln -sf ../libwasmimage.a "$sdk/lib/static/libwasmimage.a"
rm -rf "$sdk/lib/static/cmake"

strip --strip-unneeded "$sdk/lib/libwasmimage.so.$version"
strip --strip-debug "$sdk/lib/libwasmimage.a"

mkdir -p "$sdk/share/wasm-image/examples" "$sdk/share/doc/wasm-image"
install -m 0644 examples/pull.c examples/CMakeLists.txt "$sdk/share/wasm-image/examples/"
sed -e "s/@VERSION@/$version/g" -e "s/@MAJOR@/$major/g" ffi/sdk/README.md >"$sdk/README.md"
install -m 0644 CHANGELOG.md "$sdk/share/doc/wasm-image/CHANGELOG.md"
if [ -n "${C_API_DOC:-}" ]; then
    install -m 0644 "$C_API_DOC" "$sdk/share/doc/wasm-image/c-api.md"
fi

epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
mkdir -p "$out"
tarball="$out/$name.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$work" -cf - "$name" | gzip -n -9 >"$tarball.part"
mv "$tarball.part" "$tarball"
log "$tarball ($(du -k "$tarball" | cut -f1) KiB)"
