# shellcheck shell=sh
# Source this file (". .ci/env.sh") to put the project's tools on PATH: rustup's cargo,
# pip's user scripts, Go and the Go tools .ci/install builds. Safe to source more than once.
_wi_home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
# Go's tools (staticcheck, crane) are built once by .ci/install into the cache folder
# named here.
WASM_IMAGE_GO_TOOLS="${WASM_IMAGE_GO_TOOLS:-${XDG_CACHE_HOME:-$_wi_home/.cache}/wasm-image/go-tools}"
export WASM_IMAGE_GO_TOOLS
for _wi_dir in "${CARGO_HOME:-$_wi_home/.cargo}/bin" "$_wi_home/.local/bin" /usr/local/go/bin \
    "$WASM_IMAGE_GO_TOOLS/bin"; do
    if [ -d "$_wi_dir" ]; then
        case ":$PATH:" in
            *":$_wi_dir:"*) ;;
            *) PATH="$_wi_dir:$PATH" ;;
        esac
    fi
done
export PATH
unset _wi_home _wi_dir
