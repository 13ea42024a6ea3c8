# Sourced by the nstools scripts (POSIX sh). Finds the nstools binaries: on PATH first, else in
# the workspace's target/release next to these scripts.
#
# Only shell built-ins here, no command substitution: Samba runs the scripts once or twice per
# testenv, and each process they start costs about as much as the work itself (BENCHMARKS.md).

case $0 in
    */*) nstools_dir=${0%/*} ;;
    *) nstools_dir=. ;;
esac
case $nstools_dir in
    /*) ;;
    .) nstools_dir=$PWD ;;
    *) nstools_dir=$PWD/$nstools_dir ;;
esac
case ":$PATH:" in
    *":$nstools_dir/../target/release:"*) ;;
    *) PATH="$PATH:$nstools_dir/../target/release" ;;
esac
export PATH

# nstools_die MESSAGE: one line on stderr, exit 1. (printf, not echo: dash's echo turns a
# backslash sequence in the message - a quoted bad line - into control characters.)
nstools_die() {
    printf '%s\n' "${0##*/}: $*" >&2
    exit 1
}

# nstools_quote STRING: sets nstools_quoted to STRING quoted for sh (in single quotes, each
# embedded one written as '\'').
nstools_quote() {
    nstools_rest=$1
    nstools_quoted=
    while :; do
        case $nstools_rest in
            *"'"*)
                nstools_quoted=$nstools_quoted${nstools_rest%%"'"*}"'\\''"
                nstools_rest=${nstools_rest#*"'"}
                ;;
            *) break ;;
        esac
    done
    nstools_quoted="'$nstools_quoted$nstools_rest'"
}

# nstools_find PROGRAM: sets nstools_found to the first executable PROGRAM on PATH; fails if
# there is none (what 'command -v' does, without a subshell).
nstools_find() {
    nstools_found=
    nstools_ifs=$IFS
    case $- in
        *f*) nstools_noglob=1 ;;
        *)
            nstools_noglob=
            set -f
            ;;
    esac
    IFS=:
    for nstools_d in $PATH; do
        if [ -f "${nstools_d:-.}/$1" ] && [ -x "${nstools_d:-.}/$1" ]; then
            nstools_found=${nstools_d:-.}/$1
            break
        fi
    done
    IFS=$nstools_ifs
    [ -n "$nstools_noglob" ] || set +f
    [ -n "$nstools_found" ]
}

# nstools_netns_inode PID: sets nstools_inode to the inode number of PID's network namespace
# (what 'readlink /proc/PID/ns/net' shows in brackets): opens it, reads the inode from
# /proc/self/fdinfo (Linux 5.14 and later), else asks readlink.
nstools_netns_inode() {
    nstools_inode=
    {
        while read -r nstools_k nstools_v; do
            [ "$nstools_k" != ino: ] || nstools_inode=$nstools_v
        done < /proc/self/fdinfo/9
    } 2> /dev/null 9< "/proc/$1/ns/net" || return 1
    if [ -z "$nstools_inode" ]; then
        nstools_inode=$(readlink "/proc/$1/ns/net") || return 1
        nstools_inode=${nstools_inode#net:[}
        nstools_inode=${nstools_inode%]}
    fi
}

# nstools_mk_nsenter PID EXPORTS: what mk_nsenter.sh does (see there); sets nstools_helper to
# the path of the nsenter.sh written.
nstools_mk_nsenter() {
    case $2 in
        /*) nstools_exports=$2 ;;
        *) nstools_exports=$PWD/$2 ;;
    esac
    nstools_netns_inode "$1" || nstools_die "no process $1 (or no access to its namespaces)"
    nstools_find ns-exec || nstools_die "ns-exec not found on PATH nor in $nstools_dir/../target/release"
    nstools_helper=${nstools_exports%/*}/nsenter.sh
    nstools_quote "$nstools_found"
    nstools_line="exec $nstools_quoted -t $1:$nstools_inode --all --"
    nstools_quote "$nstools_dir/nsenter-helper.sh"
    nstools_line="$nstools_line $nstools_quoted"
    nstools_quote "$nstools_exports"
    nstools_line="$nstools_line $nstools_quoted"
    # A failed redirection of a compound command does not end the shell: our message replaces
    # the shell's own (if/else, not '!': bash does not negate a failed redirection).
    if {
        printf '%s\n' "#!/bin/sh" "# Enter testenv $1 (network namespace $nstools_inode). Made by mk_nsenter.sh." \
            "$nstools_line"
    } 2> /dev/null > "$nstools_helper"; then
        chmod 755 "$nstools_helper"
    else
        nstools_die "cannot write $nstools_helper (does its folder exist, and is it writable?)"
    fi
}

# nstools_isolate_flags LIST SETTING: the ns-unshare flags for LIST, a comma list of namespace
# types (pid, uts, mount, user, ipc, or all), in nstools_flags; nstools_uts is 1 when they make
# a UTS namespace (then a --hostname goes with them). SETTING names LIST in error messages.
nstools_isolate_flags() {
    nstools_flags=
    nstools_uts=
    nstools_kinds=$1,
    while [ -n "$nstools_kinds" ]; do
        nstools_kind=${nstools_kinds%%,*}
        nstools_kinds=${nstools_kinds#*,}
        case $nstools_kind in
            all) nstools_flags="$nstools_flags --pid --mount --uts --ipc --map-root-user" nstools_uts=1 ;;
            pid) nstools_flags="$nstools_flags --pid" ;;
            mount) nstools_flags="$nstools_flags --mount" ;;
            uts) nstools_flags="$nstools_flags --uts" nstools_uts=1 ;;
            ipc) nstools_flags="$nstools_flags --ipc" ;;
            user) nstools_flags="$nstools_flags --map-root-user" ;;
            *) nstools_die "$2: unknown namespace type '$nstools_kind' (pid, uts, mount, user, ipc, all)" ;;
        esac
    done
}
