#!/bin/sh
# create_bridge.sh BRIDGE IPV4 IPV6 - Samba selftest drop-in (selftest/ns/create_bridge.sh).
#
# Brings lo up, creates the bridge (if missing), adds IPV4/24 and IPV6/112 (IPv6 without
# duplicate address detection, so it is usable at once) and brings it up - one br-attach call.
#
# NSTOOLS_PCAP_DIR (unset: nothing more runs) also records all traffic on the bridge, for
# selftest's whole life, into $NSTOOLS_PCAP_DIR/BRIDGE.pcap (pcapng; the folder is made if
# missing): 'ns-exec --capture' in the background, with a placeholder command that
# 'ns-exec --exit-with PARENT' ends when the calling process - selftest.pl, which runs this
# script by fork and exec - exits; the file is then complete. The script returns once the
# capture is open (ns-exec --ready-fd). Messages of the capture (none when all goes well) go to
# BRIDGE.log. A capture that cannot start leaves no bridge behind: what it needs (the folder,
# the file, the privilege to capture) is tried first, on lo, before the bridge is made.
set -eu
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -eq 3 ] || nstools_die "usage: create_bridge.sh BRIDGE IPV4 IPV6"
[ -n "${NSTOOLS_PCAP_DIR:-}" ] || exec br-attach --create --bridge "$1" --addr "$2/24" --addr "$3/112"

pcap=$NSTOOLS_PCAP_DIR/$1.pcap
log=$NSTOOLS_PCAP_DIR/$1.log
cannot() {
    read -r why < "$log" || why="ns-exec ended"
    nstools_die "cannot capture on $1: ${why#ns-exec: }"
}
mkdir -p -- "$NSTOOLS_PCAP_DIR" 2> /dev/null || nstools_die "cannot capture on $1: cannot make the folder $NSTOOLS_PCAP_DIR"
ns-exec -t $$ --capture "$pcap" --capture-interface lo -- true < /dev/null > /dev/null 2> "$log" || cannot "$1"
br-attach --create --bridge "$1" --addr "$2/24" --addr "$3/112"
# 'ready' comes through the pipe once the capture is open, then the pipe closes (the
# placeholder command does not inherit it); if ns-exec fails instead, it closes empty. No
# descriptor of selftest's goes along (it waits for the end of some of them).
ready=$(ns-exec -t $$ --exit-with "$PPID" --capture "$pcap" --capture-interface "$1" --ready-fd 3 \
    -- sleep infinity 3>&1 < /dev/null > /dev/null 2> "$log" &)
[ "$ready" = ready ] || cannot "$1"
