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
# capture is open. Messages of the capture (none when all goes well) go to BRIDGE.log.
set -eu
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -eq 3 ] || nstools_die "usage: create_bridge.sh BRIDGE IPV4 IPV6"
[ -n "${NSTOOLS_PCAP_DIR:-}" ] || exec br-attach --create --bridge "$1" --addr "$2/24" --addr "$3/112"

br-attach --create --bridge "$1" --addr "$2/24" --addr "$3/112"
mkdir -p -- "$NSTOOLS_PCAP_DIR"
log=$NSTOOLS_PCAP_DIR/$1.log
fifo=$NSTOOLS_PCAP_DIR/.$1.ready.$$
rm -f -- "$fifo"
mkfifo -m 600 -- "$fifo"
# Its stdout is the FIFO: the placeholder command says there that the capture is open (ns-exec
# starts it only then); if ns-exec fails instead, the FIFO reaches its end. No descriptor of
# selftest's goes along (it waits for the end of some of them).
ns-exec -t $$ --exit-with "$PPID" --capture "$NSTOOLS_PCAP_DIR/$1.pcap" --capture-interface "$1" \
    -- sh -c 'echo capturing; exec sleep infinity > /dev/null' < /dev/null > "$fifo" 2> "$log" &
exec 4< "$fifo" # opens once the other end is open
rm -f -- "$fifo"
read -r ready <&4 || ready=
exec 4<&-
[ "$ready" = capturing ] || {
    read -r why < "$log" || why="ns-exec ended"
    nstools_die "cannot capture on $1: $why"
}
