# shellcheck shell=bash
# Source this file (". release/tools.sh") to put the release tools on PATH (maturin,
# zig, cargo-zigbuild, auditwheel, cargo deny, cargo cyclonedx) and their Python in
# $WASM_IMAGE_TOOLS_PYTHON (with pdoc), installing whatever is missing. Everything is kept where a rerun finds it, so only the first run
# on a machine pays for it:
#
#   - PyPI tools pinned in release/requirements.txt, in a virtual environment of their
#     own ($WASM_IMAGE_TOOLS, default ~/.cache/wasm-image/release-tools): maturin,
#     ziglang, cargo-zigbuild, auditwheel, pdoc (binary wheels: seconds);
#   - cargo-deny and cargo-cyclonedx from crates.io, built once into ~/.cargo/bin
#     (minutes on two cores; their own profiles ask for fat LTO, one codegen unit and
#     full optimisation, which we trade for a build several times faster: both tools run
#     for seconds).
#
# Needs python3 with venv and cargo on PATH (". .ci/env.sh").

_wi_release_tools() {
    local root tools stamp want
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    tools="${WASM_IMAGE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/wasm-image/release-tools}"
    stamp="$tools/requirements.txt"
    if ! cmp -s "$root/release/requirements.txt" "$stamp" || [ ! -x "$tools/bin/maturin" ]; then
        echo "[release/tools] PyPI: $(grep -cE '^[a-z]' "$root/release/requirements.txt") tools into $tools" >&2
        python3 -m venv "$tools" || return 1
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$tools/bin/python" -m pip install -q \
            -r "$root/release/requirements.txt" || return 1
        cp "$root/release/requirements.txt" "$stamp"
    fi
    # Only the tools go on PATH, not the environment's python3 (the tests need the
    # system one); zig is `python -m ziglang` of the tools' own interpreter.
    mkdir -p "$tools/shims"
    for want in maturin cargo-zigbuild auditwheel; do ln -sf "../bin/$want" "$tools/shims/$want"; done
    printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$tools/bin/python" >"$tools/shims/zig"
    chmod +x "$tools/shims/zig"
    case ":$PATH:" in *":$tools/shims:"*) ;; *) PATH="$tools/shims:$PATH" ;; esac
    export PATH
    export WASM_IMAGE_TOOLS_PYTHON="$tools/bin/python"

    # crate version: installed unless that exact version answers `cargo SUBCOMMAND --version`.
    for want in "cargo-deny 0.20.2" "cargo-cyclonedx 0.5.9"; do
        set -- $want
        if [ "$(cargo "${1#cargo-}" --version 2>/dev/null | awk '{print $2}')" != "$2" ]; then
            echo "[release/tools] crates.io: building $1 $2 (once per machine)" >&2
            CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
                CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
                cargo install --quiet --locked "$1" --version "$2" || return 1
        fi
    done
}
_wi_release_tools
