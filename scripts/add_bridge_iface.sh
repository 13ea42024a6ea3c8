#!/bin/sh
# add_bridge_iface.sh IFACE BRIDGE - Samba selftest drop-in (selftest/ns/add_bridge_iface.sh).
#
# Waits until IFACE exists in this network namespace (by netlink notification, not by
# polling), brings it up and makes BRIDGE its master. Gives up after
# $NSTOOLS_ATTACH_TIMEOUT seconds (default 120), naming the interface that never appeared,
# and exits non-zero (124) instead of hanging selftest forever.
set -eu
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -eq 2 ] || nstools_die "usage: add_bridge_iface.sh IFACE BRIDGE"
exec br-attach --timeout "${NSTOOLS_ATTACH_TIMEOUT:-120}" --bridge "$2" "$1"
