#!/bin/sh
# Variant A: iproute2 + util-linux the way Samba's selftest/ns scripts do it today - our own
# reimplementation of the documented steps (SAMBA-CONTRACT.md), driven the way selftest.pl
# drives them: create_bridge.sh once; per testenv 'unshare --net start_in_ns.sh ...' in the
# background, then add_bridge_iface.sh (which polls for the interface every 0.1 s), then wait
# for the daemon to run. Teardown: close the daemons' stdin, wait for them.
set -eu
here=${0%/*}
. "$here/../common.sh"

mark selftest $$
"$here/create_bridge.sh" selftest0 10.53.57.11 fd00:0000:0000:0000:0000:0000:5357:5f0b
mark base

exec 3<> "$BENCH_WORK/stdin" # selftest's end of the daemons' stdin
for id in $BENCH_IDS; do
    n=${id%:*}
    dir=$BENCH_WORK/env$n
    unshare --net "$here/start_in_ns.sh" "veth$n" "$dir/exports.sh" $$ "$BENCH_DAEMON" "$BENCH_WORK/ready" \
        < "$BENCH_WORK/stdin" > "$dir/log" 2>&1 3>&- &
    "$here/add_bridge_iface.sh" "veth$n-br" selftest0 >> "$BENCH_WORK/attach.log" 2>&1
    read -r _ < "$BENCH_WORK/ready"
done
mark setup
verify_then_wait

exec 3>&- # EOF on every daemon's stdin
wait
mark teardown
