#!/bin/sh
# add_bridge_iface.sh IFACE BRIDGE - variant A (Samba's documented steps, with ip): polls
# every 0.1 s until IFACE exists, then brings it up and attaches it.
set -eu
while ! ip link show "$1" > /dev/null 2>&1; do
    echo "Waiting for $1 to be created..."
    sleep 0.1
done
ip link set dev "$1" up
ip link set "$1" master "$2"
