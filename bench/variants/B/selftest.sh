#!/bin/sh
# Variant B: variant A without polling - a fair, well-tuned iproute2 peer. The same scripts
# and steps, except: the pair is created with its peer directly in PARENT_PID's namespace
# ('peer name ... netns PID', no move) and IFACE up at creation; selftest waits for the daemon
# to run (a blocking read on a FIFO: the testenv is then configured) before it attaches the
# peer, so add_bridge_iface.sh needs no loop and no sleep; one 'ip' sets up and master at once;
# the bridge is made up at creation and its IPv6 address skips DAD.
set -eu
here=${0%/*}
exec "$here/../selftest.sh" "$here" attach-after-ready
