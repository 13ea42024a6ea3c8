#!/bin/sh
# start_in_ns.sh IFACE EXPORTS PARENT_PID CMD... - variant B (tuned): the peer is created
# directly in PARENT_PID's namespace and IFACE is up at creation.
set -eu
IFACE=$1
EXPORTS=$2
PARENT_PID=$3
shift 3
. "$EXPORTS"

echo "-------------------------------------------------------------"
echo "Created namespace for $NETBIOSNAME ($ENVNAME) PID $$"
HELPER=$("${0%/*}/../A/mk_nsenter.sh" $$ "$EXPORTS")
echo "To communicate with this testenv, use: $HELPER"
echo "-------------------------------------------------------------"

ip link set dev lo up
ip link add "$IFACE" up type veth peer name "$IFACE-br" netns "$PARENT_PID"
ip addr add "$SERVER_IP/24" dev "$IFACE"
ip addr add "$SERVER_IPV6/112" dev "$IFACE" nodad

"$@"
