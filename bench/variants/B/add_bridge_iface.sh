#!/bin/sh
# add_bridge_iface.sh IFACE BRIDGE - variant B (tuned): IFACE exists already (selftest waited
# for the testenv's daemon); up and master in one command.
set -eu
ip link set "$1" master "$2" up
