#!/bin/sh
# rate.sh RATE BYTES RUNS - rate-limit accuracy: two testenvs (scripts/testenv), what 'src'
# sends limited to RATE with 'testenv shape src --rate RATE' (tbf, set by netlink), then RUNS
# times BYTES of TCP payload from src to dst (python3 on both ends). Prints one line per run:
# 'transfer BYTES SECONDS' (from the first byte sent to the receiver's count coming back).
set -eu
rate=$1 bytes=$2 runs=$3
testenv=$BENCH_SCRIPTS/testenv
work=$(mktemp -d)
trap '"$testenv" down > /dev/null 2>&1 || :; rm -rf "$work"' EXIT
"$testenv" up src:21 dst:22 > /dev/null
"$testenv" shape src --rate "$rate" > /dev/null
server='
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.53.57.22", 5001)); s.listen(1)
print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    c, _ = s.accept(); n = 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        n += len(b)
    c.sendall(str(n).encode()); c.close()
'
client='
import socket, sys, time
size = int(sys.argv[1]); data = b"x" * size
for _ in range(int(sys.argv[2])):
    c = socket.create_connection(("10.53.57.22", 5001), timeout=60)
    t0 = time.monotonic(); c.sendall(data); c.shutdown(socket.SHUT_WR)
    n = int(c.recv(64)); t = time.monotonic() - t0; c.close()
    print("transfer", n, t, flush=True)
'
mkfifo "$work/ready"
"$testenv" exec dst -- python3 -c "$server" "$runs" > "$work/ready" &
read -r _ < "$work/ready" # it listens now
"$testenv" exec src -- python3 -c "$client" "$bytes" "$runs"
wait
