#!/bin/sh
# mk_nsenter.sh PID EXPORTS - Samba selftest drop-in (selftest/ns/mk_nsenter.sh).
#
# Writes an executable nsenter.sh next to EXPORTS that enters PID's namespaces - every one that
# differs from the caller's: its network namespace, its user namespace when needed (so it works
# from the user's own shell outside selftest's user namespace), and with NSTOOLS_ISOLATE its
# PID, mount and UTS namespaces too - and runs nsenter-helper.sh EXPORTS there. Prints the path
# of nsenter.sh.
#
# The namespace is named PID:INODE: if the testenv is gone and its PID reused, nsenter.sh
# refuses instead of entering an unrelated process's namespace. Every path is quoted.
set -eu
. "$(dirname -- "$0")/nstools-common.sh"

[ $# -eq 2 ] || nstools_die "usage: mk_nsenter.sh PID EXPORTS"
pid=$1
exports_file=$2
case $exports_file in /*) ;; *) exports_file="$(pwd)/$exports_file" ;; esac

netns=$(readlink "/proc/$pid/ns/net") || nstools_die "no process $pid (or no access to its namespaces)"
inode=${netns#net:[}
inode=${inode%]}
ns_exec=$(command -v ns-exec) || nstools_die "ns-exec not found on PATH nor in $nstools_dir/../target/release"

dyn_script="$(dirname -- "$exports_file")/nsenter.sh"
# In a subshell with stderr closed: a failed redirection ends it, and our message replaces the
# shell's own.
if ! (
    exec 2>/dev/null
    {
        echo "#!/bin/sh"
        echo "# Enter testenv $pid (network namespace $inode). Made by mk_nsenter.sh."
        echo "exec $(nstools_quote "$ns_exec") -t $pid:$inode --all -- $(nstools_quote "$nstools_dir/nsenter-helper.sh") $(nstools_quote "$exports_file")"
    } > "$dyn_script"
); then
    nstools_die "cannot write $dyn_script (does its folder exist, and is it writable?)"
fi
chmod 755 "$dyn_script"
echo "$dyn_script"
