#!/bin/sh
# Variant Cp: variant C with captures on - NSTOOLS_PCAP_DIR set to a folder on the benchmark's
# private /run (a tmpfs): create_bridge.sh records the bridge in the background for the whole
# run, and each start_in_ns.sh records its testenv from before its veth pair exists until its
# daemon has ended ('ns-exec --capture'). Everything else as C.
set -eu
here=${0%/*}
export NSTOOLS_PCAP_DIR="$BENCH_WORK/pcaps"
exec "$here/../selftest.sh" "$BENCH_SCRIPTS"
