#!/bin/sh
# Variant B: variant A without polling - a fair, well-tuned iproute2 peer. The same scripts
# and steps, except: the pair is created with its peer directly in PARENT_PID's namespace
# ('peer name ... netns PID', no move) and IFACE up at creation; selftest waits for the daemon
# to run (a blocking read on a FIFO: the testenv is then configured) before it attaches the
# peer, so add_bridge_iface.sh needs no loop and no sleep; one 'ip' sets up and master at once;
# the bridge is made up at creation and its IPv6 address skips DAD.
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
    read -r _ < "$BENCH_WORK/ready"
    "$here/add_bridge_iface.sh" "veth$n-br" selftest0 >> "$BENCH_WORK/attach.log" 2>&1
done
mark setup
verify_then_wait

exec 3>&- # EOF on every daemon's stdin
wait
mark teardown
