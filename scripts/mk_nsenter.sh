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
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -eq 2 ] || nstools_die "usage: mk_nsenter.sh PID EXPORTS"
nstools_mk_nsenter "$1" "$2"
echo "$nstools_helper"
