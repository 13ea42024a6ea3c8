#!/bin/sh
# Variant D: our binaries composed directly from the selftest side: the bridge with one
# br-attach; per testenv a holder (ns-unshare, the testenv's long-lived process), the pair
# made from here with its end in the holder's namespace (veth-pair --netns), the peer attached
# (br-attach). Teardown: one 'ns-unshare --stop' for all holders (each removes its pair as
# it exits).
set -eu
here=${0%/*}
. "$here/../common.sh"

mark selftest $$
br-attach --create --bridge selftest0 --addr 10.53.57.11/24 --addr fd00:0000:0000:0000:0000:0000:5357:5f0b/112
mark base

pids=
for id in $BENCH_IDS; do
    n=${id%:*}
    pid=$(ns-unshare)
    pids="$pids $pid"
    veth-pair "veth$n" --netns "$pid" --addr "10.53.57.$n/24" --addr "fd00:0000:0000:0000:0000:0000:5357:5f${id#*:}/112"
    br-attach --timeout 0 "veth$n-br"
done
mark setup
verify_then_wait

# shellcheck disable=SC2086 # a list of PIDs
ns-unshare --stop $pids
mark teardown
