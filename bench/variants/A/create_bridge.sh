#!/bin/sh
# create_bridge.sh BRIDGE IPV4 IPV6 - variant A (Samba's documented steps, with ip).
set -eu
ip link set dev lo up
ip link add "$1" type bridge
ip addr add "$2/24" dev "$1"
ip addr add "$3/112" dev "$1"
ip link set "$1" up
