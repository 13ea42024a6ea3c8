# Sourced by the nstools scripts (POSIX sh). Finds the nstools binaries: on PATH first, else in
# the workspace's target/release next to these scripts.

nstools_dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
case ":$PATH:" in
    *":$nstools_dir/../target/release:"*) ;;
    *) PATH="$PATH:$nstools_dir/../target/release" ;;
esac
export PATH

# nstools_die MESSAGE: one line on stderr, exit 1.
nstools_die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# nstools_quote STRING: STRING quoted for sh (single quotes; embedded ones escaped).
nstools_quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}
