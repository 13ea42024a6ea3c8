# Sourced by each variant's selftest.sh: the driver protocol (see bench/src/driver.rs).
#
# The driver runs 'unshare --net VARIANT/selftest.sh' (the selftest namespace, as Samba's
# selftest runs in one) with these variables:
#   BENCH_IDS     the testenvs, as N:HH words (interface number, in two hex digits)
#   BENCH_LAST    the last N (pinged once everything is up)
#   BENCH_WORK    a work folder: envN/exports.sh (written by the driver, as selftest writes
#                 them), the FIFO 'stdin' (the daemons' stdin, as selftest's pipes) and the
#                 FIFO 'ready' (each daemon writes one line there once it runs)
#   BENCH_SCRIPTS the drop-in scripts (scripts/)
#   BENCH_DAEMON  the long-lived process of each testenv (daemon.sh)
# and reads '@bench ...' lines from stdout, timing them as they arrive. The script prints
# 'selftest PID', 'base' (selftest namespace and bridge ready), 'setup' (all testenvs
# ready), 'ping ok|failed', then waits for a line on stdin before it tears down, and prints
# 'teardown' when its testenvs' processes have exited.

mark() {
    echo "@bench $*"
}

# After setup: check that the last testenv answers, then wait for the driver's go-ahead
# (it checks the topology meanwhile, outside the timed phases).
verify_then_wait() {
    if ping -c 1 -W 5 "10.53.57.$BENCH_LAST" > /dev/null 2>&1; then
        mark ping ok
    else
        mark ping failed
    fi
    read -r _go
}
