#!/bin/sh
# daemon.sh READY_FIFO - the long-lived process of a testenv in variants A, B and C (what
# Samba's daemons are): says it runs by writing a line to READY_FIFO (selftest waits for its
# daemons to start), then lives until its stdin reaches EOF (as Samba's daemons stop when
# selftest closes their stdin pipe). One sh, no other process.
echo ready > "$1"
while read -r _; do :; done
