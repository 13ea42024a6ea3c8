#!/bin/sh
# Selftest's side of variants A, B and C: drives a set of selftest/ns-style scripts the way
# selftest.pl does - create_bridge.sh once; per testenv 'unshare --net start_in_ns.sh ...' in
# the background (its stdin a pipe from selftest) and add_bridge_iface.sh, then wait for the
# daemon to run. Teardown: close the daemons' stdin, wait for them.
#
#   selftest.sh SCRIPTS [attach-after-ready]
#
# With attach-after-ready (variant B), add_bridge_iface.sh runs once the daemon runs (the
# testenv is configured by then, so the attach step needs no wait); otherwise right after the
# start, as selftest does (A polls there, C waits by notification).
set -eu
scripts=$1
order=${2:-attach-at-once}
. "${0%/*}/common.sh"

mark selftest $$
"$scripts/create_bridge.sh" selftest0 10.53.57.11 fd00:0000:0000:0000:0000:0000:5357:5f0b
mark base

exec 3<> "$BENCH_WORK/stdin" # selftest's end of the daemons' stdin
for id in $BENCH_IDS; do
    n=${id%:*}
    dir=$BENCH_WORK/env$n
    ENVNAME=env$n.samba unshare --net "$scripts/start_in_ns.sh" "veth$n" "$dir/exports.sh" $$ "$BENCH_DAEMON" "$BENCH_WORK/ready" \
        < "$BENCH_WORK/stdin" > "$dir/log" 2>&1 3>&- &
    if [ "$order" = attach-after-ready ]; then
        read -r _ < "$BENCH_WORK/ready"
        "$scripts/add_bridge_iface.sh" "veth$n-br" selftest0 >> "$BENCH_WORK/attach.log" 2>&1
    else
        "$scripts/add_bridge_iface.sh" "veth$n-br" selftest0 >> "$BENCH_WORK/attach.log" 2>&1
        read -r _ < "$BENCH_WORK/ready"
    fi
done
mark setup
verify_then_wait

exec 3>&- # EOF on every daemon's stdin
wait
mark teardown
