#!/bin/sh
# create_bridge.sh BRIDGE IPV4 IPV6 - Samba selftest drop-in (selftest/ns/create_bridge.sh).
#
# Brings lo up, creates the bridge (if missing), adds IPV4/24 and IPV6/112 (IPv6 without
# duplicate address detection, so it is usable at once) and brings it up - one br-attach call.
set -eu
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -eq 3 ] || nstools_die "usage: create_bridge.sh BRIDGE IPV4 IPV6"
exec br-attach --create --bridge "$1" --addr "$2/24" --addr "$3/112"
