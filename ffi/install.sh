#!/usr/bin/env bash
# Builds libwasmimage (release) and installs it for C and C++ users:
#
#   PREFIX/include/wasm_image.h
#   PREFIX/lib/libwasmimage.a
#   PREFIX/lib/libwasmimage.so.X.Y.Z, libwasmimage.so.X -> (soname), libwasmimage.so ->
#   PREFIX/lib/pkgconfig/wasmimage.pc            (pkg-config wasmimage; --static adds
#                                                  the system libraries the .a needs)
#   PREFIX/lib/cmake/WasmImage/WasmImageConfig.cmake + WasmImageConfigVersion.cmake
#                                                 (find_package(WasmImage): targets
#                                                  WasmImage::wasmimage, shared, and
#                                                  WasmImage::wasmimage_static)
#
# Usage: ffi/install.sh [--static-only | --shared-only] PREFIX
#   --static-only   install no shared library, so `-lwasmimage` (pkg-config) links the
#                   static one, with the system libraries it needs in Libs (what a fully
#                   static program, or cgo's `#cgo pkg-config: wasmimage`, wants)
#   --shared-only   install no static library
# Environment: LIBDIR (default "lib"), CARGO (default "cargo"), CARGO_TARGET_DIR.
#   RUST_TARGET  the Rust target to build for (default: the host). A glibc floor such as
#                "x86_64-unknown-linux-gnu.2.28" needs CARGO_RUSTC="cargo-zigbuild rustc".
#   CARGO_RUSTC  the build command (default "$CARGO rustc"); ffi/package.sh links with
#                zig through cargo-zigbuild so the SDK runs on older glibc than the host's.
#
# The version (file names, soname, .pc, CMake version) comes from Cargo; the system
# libraries the static library needs come from rustc itself (--print native-static-libs),
# so nothing here is kept in sync by hand. The pkg-config and CMake files are
# relocatable: they find the prefix relative to their own location.
set -euo pipefail

usage() { echo "usage: $0 [--static-only | --shared-only] PREFIX" >&2; exit 2; }
want_static=1 want_shared=1 prefix=""
for arg in "$@"; do
    case "$arg" in
        --static-only) want_shared=0 ;;
        --shared-only) want_static=0 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $arg" >&2; usage ;;
        *) [ -z "$prefix" ] || usage; prefix="$arg" ;;
    esac
done
[ -n "$prefix" ] || usage
[ "$want_static$want_shared" != "00" ] || usage

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo="${CARGO:-cargo}"
libdir="${LIBDIR:-lib}"
log() { printf '[ffi/install] %s\n' "$*" >&2; }

# Version from Cargo: "path+file:///…/ffi#wasm-image-ffi@0.1.0" (or "…/ffi#0.1.0").
pkgid="$(cd "$root" && "$cargo" pkgid -p wasm-image-ffi)"
version="${pkgid##*[@#]}"
if ! [[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
    echo "cannot read a MAJOR.MINOR.PATCH version from '$pkgid'" >&2
    exit 1
fi
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"

# One build command, always the same, so cargo's cache serves repeated installs; cargo
# replays the native-static-libs note from its cache when nothing changed.
build_log="$(mktemp)"
trap 'rm -f "$build_log"' EXIT
read -r -a rustc_command <<<"${CARGO_RUSTC:-$cargo rustc}"
target_args=() target_subdir=""
if [ -n "${RUST_TARGET:-}" ]; then
    target_args=(--target "$RUST_TARGET")
    target_subdir="${RUST_TARGET%%.*}/" # cargo's folder has no glibc suffix
fi
log "building wasm-image-ffi $version (release${RUST_TARGET:+, $RUST_TARGET})"
if ! (cd "$root" && "${rustc_command[@]}" --release --locked -p wasm-image-ffi --lib "${target_args[@]}" \
        --crate-type staticlib,cdylib -- --print native-static-libs) 2>"$build_log"; then
    cat "$build_log" >&2
    exit 1
fi
native="$(sed -n 's/^note: native-static-libs: //p' "$build_log" | tail -n 1)"
if [ -z "$native" ]; then
    cat "$build_log" >&2
    echo "rustc printed no native-static-libs line" >&2
    exit 1
fi
target_dir="${CARGO_TARGET_DIR:-}"
if [ -z "$target_dir" ]; then
    target_dir="$(cd "$root" && "$cargo" metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
fi
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
built="$target_dir/${target_subdir}release"

mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
lib="$prefix/$libdir"
mkdir -p "$prefix/include" "$lib/pkgconfig" "$lib/cmake/WasmImage"

install -m 0644 "$root/include/wasm_image.h" "$prefix/include/wasm_image.h"
rm -f "$lib"/libwasmimage.so* "$lib/libwasmimage.a"
if [ "$want_static" = 1 ]; then
    install -m 0644 "$built/libwasmimage.a" "$lib/libwasmimage.a"
fi
if [ "$want_shared" = 1 ]; then
    install -m 0755 "$built/libwasmimage.so" "$lib/libwasmimage.so.$version"
    ln -s "libwasmimage.so.$version" "$lib/libwasmimage.so.$major"
    ln -s "libwasmimage.so.$major" "$lib/libwasmimage.so"
fi

# How far the pkgconfig and cmake folders are below the prefix (LIBDIR may be deep).
up() {
    local path="$1" out=""
    IFS=/ read -r -a parts <<<"$path"
    for part in "${parts[@]}"; do [ -z "$part" ] || out="$out/.."; done
    printf '%s' "${out#/}"
}

# With only the static library installed, `-lwasmimage` always means the .a, so the
# system libraries it needs belong in Libs: tools that never pass --static (cgo's
# `#cgo pkg-config:`) then link it too.
static_only_libs=""
if [ "$want_shared" = 0 ]; then static_only_libs=" $native"; fi

cat >"$lib/pkgconfig/wasmimage.pc" <<EOF
# Generated by ffi/install.sh. Relocatable: the prefix is found from this file's place.
prefix=\${pcfiledir}/$(up "$libdir/pkgconfig")
exec_prefix=\${prefix}
libdir=\${exec_prefix}/$libdir
includedir=\${prefix}/include

Name: wasmimage
Description: Build, push, pull and copy WebAssembly modules stored as OCI images
URL: https://github.com/wasm-image/wasm-image
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lwasmimage$static_only_libs
Libs.private: $native
EOF

# CMake: the static target lists the same system libraries, pthread as Threads::Threads.
cmake_libs=""
for flag in $native; do
    case "$flag" in
        -lpthread) item="Threads::Threads" ;;
        -l*) item="${flag#-l}" ;;
        *) item="$flag" ;;
    esac
    cmake_libs="${cmake_libs:+$cmake_libs;}$item"
done

cat >"$lib/cmake/WasmImage/WasmImageConfig.cmake" <<EOF
# Generated by ffi/install.sh. find_package(WasmImage) gives:
#   WasmImage::wasmimage         the shared library (libwasmimage.so.$major)
#   WasmImage::wasmimage_static  the static library, with the system libraries it needs
#   WasmImage_VERSION, WasmImage_INCLUDE_DIRS
# Relocatable: the prefix is found from this file's place.
get_filename_component(_wasm_image_prefix "\${CMAKE_CURRENT_LIST_DIR}/$(up "$libdir/cmake/WasmImage")" ABSOLUTE)
set(WasmImage_VERSION "$version")
set(WasmImage_INCLUDE_DIRS "\${_wasm_image_prefix}/include")

if(EXISTS "\${_wasm_image_prefix}/$libdir/libwasmimage.so.$version" AND NOT TARGET WasmImage::wasmimage)
  add_library(WasmImage::wasmimage SHARED IMPORTED)
  set_target_properties(WasmImage::wasmimage PROPERTIES
    IMPORTED_LOCATION "\${_wasm_image_prefix}/$libdir/libwasmimage.so.$version"
    IMPORTED_SONAME "libwasmimage.so.$major"
    INTERFACE_INCLUDE_DIRECTORIES "\${_wasm_image_prefix}/include")
endif()

if(EXISTS "\${_wasm_image_prefix}/$libdir/libwasmimage.a" AND NOT TARGET WasmImage::wasmimage_static)
  include(CMakeFindDependencyMacro)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_dependency(Threads)
  add_library(WasmImage::wasmimage_static STATIC IMPORTED)
  set_target_properties(WasmImage::wasmimage_static PROPERTIES
    IMPORTED_LOCATION "\${_wasm_image_prefix}/$libdir/libwasmimage.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${_wasm_image_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$cmake_libs")
endif()

if(NOT TARGET WasmImage::wasmimage AND NOT TARGET WasmImage::wasmimage_static)
  set(WasmImage_FOUND FALSE)
  set(WasmImage_NOT_FOUND_MESSAGE "no libwasmimage under \${_wasm_image_prefix}/$libdir")
endif()
unset(_wasm_image_prefix)
EOF

pointer_bytes=$(( $(getconf LONG_BIT) / 8 ))
cat >"$lib/cmake/WasmImage/WasmImageConfigVersion.cmake" <<EOF
# Generated by ffi/install.sh. Compatible: the same major version and, before 1.0 (when a
# minor release may break the API), the same minor; not older than the version asked for.
set(PACKAGE_VERSION "$version")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
set(PACKAGE_VERSION_EXACT FALSE)
if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION VERSION_LESS_EQUAL PACKAGE_VERSION
       AND PACKAGE_FIND_VERSION_MAJOR EQUAL $major
       AND ($major GREATER 0 OR PACKAGE_FIND_VERSION_MINOR EQUAL $minor))
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
if(PACKAGE_FIND_VERSION AND PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
if(CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P EQUAL $pointer_bytes)
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} ($((pointer_bytes * 8))-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
EOF

log "installed $version into $prefix ($libdir; static=$want_static shared=$want_shared)"
log "static linking needs: $native"
