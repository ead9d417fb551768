#!/usr/bin/env bash
# The C ABI's whole check, as CI runs it (from the repository root or anywhere):
#
#   0. the ffi crate's unit tests pass;
#   1. include/wasm_image.h is what cbindgen generates now (ffi/gen-header), and it
#      compiles as C99, C11 and C++17 with -Wall -Wextra -Werror -pedantic;
#   2. ffi/install.sh builds the release library and installs it into a temporary prefix
#      (and a static-only one); the soname and the exported symbols are checked;
#   3. a C program links the static library with nothing but
#      `pkg-config --static --libs wasmimage`, and runs;
#   4. tests/c is built against the installed package with find_package(WasmImage) and
#      again through pkg-config, and CTest runs the C, C++ (GoogleTest) and example tests;
#   5. the same tests under valgrind (no leaks, no invalid accesses) and built with
#      AddressSanitizer (leak detection on).
#
# Registry tests use the test bed named by $WASM_IMAGE_TESTBED (testbed.json); without
# it this script starts one of its own (unless WI_NO_TESTBED=1, when they skip).
# Environment: CARGO_TARGET_DIR is shared with the other suites; WI_C_KEEP=1 keeps the
# work directory; WI_C_SKIP="valgrind asan" leaves out those passes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if [ -f .ci/env.sh ]; then
    # shellcheck source=/dev/null
    . .ci/env.sh
fi
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n== c: %s\n' "$*"; }
fail() { printf 'c: FAILED: %s\n' "$*" >&2; exit 1; }
skipping() { case " ${WI_C_SKIP:-} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
started=$SECONDS

work="$(mktemp -d /tmp/wasm-image-c.XXXXXX)"
own_testbed=""
cleanup() {
    if [ -n "$own_testbed" ]; then
        python3 tests/support/testbed.py stop --state "$own_testbed" >/dev/null 2>&1 || true
    fi
    if [ "${WI_C_KEEP:-}" = 1 ]; then echo "c: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
export WI_TMP="$work/tmp"
mkdir -p "$WI_TMP"

# What the C suite needs besides Rust (.ci/install normally provides it; a fresh machine
# run as root gets it here too).
missing=()
for tool in cc c++ cmake pkg-config valgrind readelf nm python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
gtest=""
for config in /usr/lib/*/cmake/GTest/GTestConfig.cmake /usr/lib/cmake/GTest/GTestConfig.cmake \
    /usr/local/lib/cmake/GTest/GTestConfig.cmake; do
    [ -f "$config" ] && gtest="$config"
done
[ -n "$gtest" ] || missing+=(libgtest-dev)
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "c: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq -o Dpkg::Use-Pty=0 build-essential cmake pkg-config valgrind binutils libgtest-dev >/dev/null
    else
        fail "missing: ${missing[*]} (Debian: build-essential cmake pkg-config valgrind libgtest-dev)"
    fi
fi

target_dir="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}"
jobs="$(nproc 2>/dev/null || echo 2)"

# ------------------------------------------------------------------- the binding's own --
step "unit tests of the ffi crate (handle table, panic boundary, argument checks, kinds)"
cargo test -q --locked -p wasm-image-ffi 2>&1 | grep -v "^thread '.*' panicked at\|^boom\|^note: run with"

# ---------------------------------------------------------------------------- header --
step "the committed header is cbindgen's output"
cargo run -q --locked --manifest-path ffi/gen-header/Cargo.toml --target-dir "$target_dir" -- "$work/wasm_image.h"
if ! diff -u include/wasm_image.h "$work/wasm_image.h"; then
    fail "include/wasm_image.h is stale: run 'cargo run --manifest-path ffi/gen-header/Cargo.toml' and commit it"
fi

step "the header compiles as C99, C11 and C++17, warnings as errors"
printf '#include <wasm_image.h>\n#include <wasm_image.h>\nint main(void) { return wasm_image_version() == 0; }\n' >"$work/h.c"
cp "$work/h.c" "$work/h.cpp"
for std in c99 c11; do
    cc -std=$std -Wall -Wextra -Werror -pedantic -Iinclude -c "$work/h.c" -o "$work/h-$std.o"
done
c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -c "$work/h.cpp" -o "$work/h-cxx.o"
undocumented="$(awk '/^[a-z].*wasm_image_[a-z_0-9]+\(/ { if (prev !~ /\*\//) print } { prev = $0 }' include/wasm_image.h)"
[ -z "$undocumented" ] || fail "functions without a doc comment in the header: $undocumented"
echo "ok"

# --------------------------------------------------------------------------- install --
step "build (release) and install"
prefix="$work/prefix"
static_prefix="$work/prefix-static"
bash ffi/install.sh "$prefix"
bash ffi/install.sh --static-only "$static_prefix"

so="$(readlink -f "$prefix/lib/libwasmimage.so")"
soname="$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
[ "$soname" = "libwasmimage.so.0" ] || fail "soname is '$soname', expected libwasmimage.so.0"
[ "$(readlink "$prefix/lib/libwasmimage.so.0")" = "$(basename "$so")" ] || fail "libwasmimage.so.0 link"
foreign="$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^wasm_image_/ {print $3}')"
[ -z "$foreign" ] || fail "the shared library exports symbols outside wasm_image_: $foreign"
declared="$(grep -oE '\bwasm_image_[a-z_0-9]+\(' include/wasm_image.h | tr -d '(' | sort -u)"
exported="$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sort -u)"
[ "$declared" = "$exported" ] || fail "header and library disagree: $(diff <(echo "$declared") <(echo "$exported") || true)"
if grep -rqE 'sigaction|signal\(' ffi/src; then fail "the C ABI must install no signal handler"; fi
echo "soname $soname; $(echo "$exported" | wc -l) functions exported, all declared in the header"

# The registry tests' addresses, from testbed.json into WI_* variables.
if [ -z "${WASM_IMAGE_TESTBED:-}" ] && [ "${WI_NO_TESTBED:-}" != 1 ] && command -v docker-registry >/dev/null 2>&1; then
    step "starting a test bed of our own"
    own_testbed="$work/testbed"
    python3 tests/support/testbed.py start --state "$own_testbed"
    export WASM_IMAGE_TESTBED="$own_testbed/testbed.json"
fi
if [ -n "${WASM_IMAGE_TESTBED:-}" ]; then
    eval "$(python3 - "$WASM_IMAGE_TESTBED" <<'PY'
import json, shlex, sys
d = json.load(open(sys.argv[1]))
f = d.get("fixtures", {})
values = {
    "WI_PLAIN": d["plain"]["host"],
    "WI_BASIC": d["basic"]["host"],
    "WI_BASIC_USER": d["basic"]["username"],
    "WI_BASIC_PASSWORD": d["basic"]["password"],
    "WI_TLS": d["tls"]["host"],
    "WI_TLS_CA": d["tls"]["ca_cert"],
    "WI_TOKEN": d["token"]["host"],
    "WI_TOKEN_USER": d["token"]["username"],
    "WI_TOKEN_PASSWORD": d["token"]["password"],
    "WI_MIRROR": d["mirror"]["host"],
    "WI_FAULTY": d["faulty"]["host"],
    "WI_FAULTY_CONTROL": d["faulty"]["control"],
    "WI_FIXTURE_OCI": f.get("buildah-oci", ""),
    "WI_FIXTURE_DOCKER": f.get("buildah-docker", ""),
    "WI_FIXTURE_TOKEN_PRIVATE": f.get("token-private", ""),
    "WI_FIXTURE_MODULE_SHA256": f.get("module_sha256", ""),
}
for key, value in values.items():
    print(f"export {key}={shlex.quote(str(value))}")
PY
)"
    echo "registry tests use the test bed: plain=$WI_PLAIN faulty=$WI_FAULTY"
else
    echo "WASM_IMAGE_TESTBED unset: the registry tests will skip"
fi

# -------------------------------------------------------------- static, pkg-config only --
step "a C program linked against libwasmimage.a with only 'pkg-config --static --libs'"
pc_cflags="$(PKG_CONFIG_PATH="$static_prefix/lib/pkgconfig" pkg-config --cflags wasmimage)"
pc_libs="$(PKG_CONFIG_PATH="$static_prefix/lib/pkgconfig" pkg-config --static --libs wasmimage)"
echo "flags: $pc_cflags $pc_libs"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $pc_cflags tests/c/test_c.c tests/c/support.c -o "$work/test_c_pkgconfig_static" $pc_libs
if ldd "$work/test_c_pkgconfig_static" | grep -q wasmimage; then fail "linked the shared library"; fi
"$work/test_c_pkgconfig_static"

# ------------------------------------------------------------------------------ CTest --
cmake_build() { # DIR ARGS...: configure and build tests/c
    local dir="$1"
    shift
    cmake -S tests/c -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log"; fail "cmake configure $dir"; }
    cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || { cat "$dir.build.log"; fail "cmake build $dir"; }
}

step "CTest: find_package(WasmImage) build"
cmake_build "$work/build" -DCMAKE_PREFIX_PATH="$prefix"
(cd "$work/build" && ctest --output-on-failure)

step "CTest: pkg-config build"
(export PKG_CONFIG_PATH="$prefix/lib/pkgconfig" && cmake_build "$work/build-pc" -DWI_USE_PKGCONFIG=ON)
(cd "$work/build-pc" && ctest --output-on-failure)

if skipping valgrind; then
    echo "valgrind pass skipped (WI_C_SKIP)"
else
    step "CTest under valgrind"
    vg="valgrind;--error-exitcode=99;--leak-check=full;--show-leak-kinds=definite,indirect"
    vg="$vg;--errors-for-leak-kinds=definite,indirect;--suppressions=$root/tests/c/valgrind.supp;--quiet"
    cmake "$work/build" -DWI_TEST_WRAPPER="$vg" >/dev/null
    (cd "$work/build" && WI_QUICK=1 ctest --output-on-failure)
fi

if skipping asan; then
    echo "AddressSanitizer pass skipped (WI_C_SKIP)"
else
    step "CTest with AddressSanitizer (leak detection on)"
    cmake_build "$work/build-asan" -DCMAKE_PREFIX_PATH="$prefix" -DWI_SANITIZE=address
    (cd "$work/build-asan" &&
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1" \
            ctest --output-on-failure)
fi

step "all passed in $((SECONDS - started)) s"
