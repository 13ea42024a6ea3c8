#!/bin/sh
# Variant A: iproute2 + util-linux the way Samba's selftest/ns scripts do it today - our own
# reimplementation of the documented steps (SAMBA-CONTRACT.md), driven the way selftest.pl
# drives them: create_bridge.sh once; per testenv 'unshare --net start_in_ns.sh ...' in the
# background, then add_bridge_iface.sh (which polls for the interface every 0.1 s), then wait
# for the daemon to run. Teardown: close the daemons' stdin, wait for them.
set -eu
here=${0%/*}
exec "$here/../selftest.sh" "$here"
