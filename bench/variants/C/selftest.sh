#!/bin/sh
# Variant C: our drop-in scripts (scripts/), called exactly as Samba's selftest calls them:
# create_bridge.sh once; per testenv 'unshare --net start_in_ns.sh ...' in the background,
# then add_bridge_iface.sh (which waits by netlink notification), then wait for the daemon to
# run. Teardown: close the daemons' stdin, wait for them.
set -eu
here=${0%/*}
exec "$here/../selftest.sh" "$BENCH_SCRIPTS"
