#!/bin/sh
# create_bridge.sh BRIDGE IPV4 IPV6 - variant B (tuned: up at creation, IPv6 without DAD).
set -eu
ip link set dev lo up
ip link add "$1" up type bridge
ip addr add "$2/24" dev "$1"
ip addr add "$3/112" dev "$1" nodad
