# shellcheck shell=sh
# Source this file (". .ci/env.sh") to put the project's tools on PATH: rustup's cargo
# and pip's user scripts. Safe to source more than once.
_wi_home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
for _wi_dir in "${CARGO_HOME:-$_wi_home/.cargo}/bin" "$_wi_home/.local/bin"; do
    if [ -d "$_wi_dir" ]; then
        case ":$PATH:" in
            *":$_wi_dir:"*) ;;
            *) PATH="$_wi_dir:$PATH" ;;
        esac
    fi
done
export PATH
unset _wi_home _wi_dir
