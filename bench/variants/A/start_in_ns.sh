#!/bin/sh
# start_in_ns.sh IFACE EXPORTS PARENT_PID CMD... - variant A (Samba's documented steps, with
# ip): runs in the testenv's new network namespace; the pair is created here and one end is
# then moved out to PARENT_PID's namespace.
set -eu
IFACE=$1
EXPORTS=$2
PARENT_PID=$3
shift 3
. "$EXPORTS"

echo "-------------------------------------------------------------"
echo "Created namespace for $NETBIOSNAME ($ENVNAME) PID $$"
HELPER=$("${0%/*}/mk_nsenter.sh" $$ "$EXPORTS")
echo "To communicate with this testenv, use: $HELPER"
echo "-------------------------------------------------------------"

ip link set dev lo up
ip link add "$IFACE-br" type veth peer name "$IFACE"
ip link set "$IFACE-br" netns "$PARENT_PID"
ip addr add "$SERVER_IP/24" dev "$IFACE"
ip addr add "$SERVER_IPV6/112" dev "$IFACE" nodad
ip link set dev "$IFACE" up

"$@"
