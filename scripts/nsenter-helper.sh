#!/bin/sh
# nsenter-helper.sh EXPORTS - Samba selftest drop-in (selftest/ns/nsenter-helper.sh).
#
# Exports every KEY=VALUE of EXPORTS, prints them, and starts $SHELL. The file is read as
# data: values are never evaluated (a value like $(rm -rf ~) stays that text).
set -eu
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -ge 1 ] || { echo "Usage: $0 <exports-file>"; exit 1; }
exports_file=$1
[ -r "$exports_file" ] || nstools_die "cannot read $exports_file"

cr=$(printf '\r')
n=0
while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line=${line%"$cr"}
    case $line in '' | '#'*) continue ;; esac
    line=${line#export }
    key=${line%%=*}
    case $key in
        "$line" | '' | [0-9]* | *[!A-Za-z0-9_]*)
            # Shown shortened and printable: the line may be binary garbage of any length.
            shown=$(printf '%s' "$line" | cut -c1-60 | LC_ALL=C tr -c '[:print:]' '?')
            [ ${#line} -le 60 ] || shown="$shown..."
            nstools_die "$exports_file: line $n is not KEY=VALUE: $shown" ;;
    esac
    export "$key=${line#*=}"
    printf '%s\n' "$line"
done < "$exports_file"

echo ""
echo "Entered ${NETBIOSNAME:-} namespace, with above variables defined."
echo "Use CTRL+D or exit to leave the namespace."
echo ""

exec "${SHELL:-/bin/sh}"
