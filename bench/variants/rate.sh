#!/bin/sh
# rate.sh RATE BYTES RUNS - rate-limit accuracy: two testenvs (scripts/testenv), what 'src'
# sends limited to RATE with 'testenv shape src --rate RATE' (tbf, set by netlink), then RUNS
# times BYTES of TCP payload from src to dst (tests/tcp.py on both ends). Prints one line per run:
# 'TRANSFER BYTES SECONDS' (from the first byte sent to the receiver's count coming back).
set -eu
rate=$1 bytes=$2 runs=$3
testenv=$BENCH_SCRIPTS/testenv
work=$(mktemp -d)
trap '"$testenv" down > /dev/null 2>&1 || :; rm -rf "$work"' EXIT
"$testenv" up src:21 dst:22 > /dev/null
"$testenv" shape src --rate "$rate" > /dev/null
tcp=$(cd "$(dirname "$0")/../../tests" && pwd)/tcp.py
mkfifo "$work/ready"
"$testenv" exec dst -- python3 "$tcp" sink 10.53.57.22 "$runs" > "$work/ready" &
read -r _ < "$work/ready" # it listens now
"$testenv" exec src -- python3 "$tcp" send 10.53.57.22 "$bytes" "$runs"
wait
