#!/bin/sh
# Replays Samba selftest's calls to the selftest/ns scripts, as selftest.pl and Samba.pm make
# them (see SAMBA-CONTRACT.md), for tests/scripts.rs. Run it inside
# 'unshare --net --user --map-root-user' as a plain user, like 'make test USE_NAMESPACES=1'.
#
#   samba-replay.sh WORKDIR SCRIPTS
#
# Phase 1 sets up testenvs 21 and 22, writes "READY ns21 ns22 selftest" to WORKDIR/ready (a
# FIFO) and waits for a line on WORKDIR/go (the test meanwhile uses nsenter.sh from outside).
# Phase 2 checks traffic and further daemons, then closes each daemon's stdin as selftest does
# at teardown. Results go to stdout as "KEY value" lines.
set -eu
work=$1
scripts=$2
selftest=$$

"$scripts/create_bridge.sh" selftest0 10.53.57.11 fd00:0000:0000:0000:0000:0000:5357:5f0b

for n in 21 22; do
    dir="$work/env $n" # a space in the path: everything must be quoted
    mkdir -p "$dir"
    hex=$(printf %02x "$n")
    cat > "$dir/exports.sh" <<EXPORTS
NETBIOSNAME=LOCALDC$n
SERVER_IP=10.53.57.$n
SERVER_IPV6=fd00:0000:0000:0000:0000:0000:5357:5f$hex
USERNAME=Administrator
PASSWORD=\$(touch $work/pwned)\`touch $work/pwned\`;|&<>*"'
KRB5_CONFIG=$dir/krb5.conf
EXPORTS
    mkfifo "$dir/stdin"
    # selftest forks; the child execs 'unshare --net start_in_ns.sh ...' with stdin a pipe
    # from selftest. The daemon reads its stdin until EOF, like samba -i. (Perl marks its
    # other pipes close-on-exec; here fds 7 and 8, the other testenvs' pipes, are closed.)
    # selftest passes ENVNAME (testenv.daemon) in the daemon's environment, never in the file.
    ENVNAME=env$n.samba NSTOOLS_N=$n unshare --net "$scripts/start_in_ns.sh" "veth$n" "$dir/exports.sh" "$selftest" \
        sh -c 'echo "daemon $NSTOOLS_N started on $(hostname) pid1=$(cat /proc/1/comm) net=$(ls /sys/class/net | tr "\n" " ")cwd=$(pwd)"; cat > /dev/null; echo "daemon $NSTOOLS_N stdin closed"; exit 7' \
        < "$dir/stdin" > "$dir/log" 2>&1 7>&- 8>&- &
    echo $! > "$dir/ns_pid"
    if [ "$n" = 21 ]; then exec 7> "$dir/stdin"; else exec 8> "$dir/stdin"; fi
    # ...and then blocks in add_bridge_iface.sh until the testenv's peer is attached.
    "$scripts/add_bridge_iface.sh" "veth$n-br" selftest0
    # selftest now starts further daemons with 'nsenter -t NS_PID --net': the testenv's PID
    # must already be in the namespace of veth$n (with NSTOOLS_ISOLATE too).
    if nsenter -t "$(cat "$dir/ns_pid")" --net ip -o link show "veth$n" > /dev/null 2>&1; then
        echo "ATTACHED$n ok"
    else
        echo "ATTACHED$n not-yet"
    fi
done
ns21=$(cat "$work/env 21/ns_pid")
ns22=$(cat "$work/env 22/ns_pid")

echo "READY $ns21 $ns22 $selftest" > "$work/ready"
read -r _ < "$work/go"

ok() { if "$@" > /dev/null 2>&1; then echo "OK $*"; else echo "FAIL $*"; fi; }
# Testenv to testenv and to the bridge, IPv4 and IPv6.
ok nsenter -t "$ns21" --net ping -c 1 -W 5 10.53.57.22
ok nsenter -t "$ns21" --net ping -c 1 -W 5 fd00::5357:5f16
ok nsenter -t "$ns22" --net ping -c 1 -W 5 10.53.57.11
ok nsenter -t "$ns22" --net ping -c 1 -W 5 fd00::5357:5f0b
ok ping -c 1 -W 5 10.53.57.21
# Further daemons of a testenv, the way selftest starts them, and through ns-exec.
echo "NSENTER $(nsenter -t "$ns21" --net readlink /proc/self/ns/net)"
echo "NSEXEC $(ns-exec -t "$ns21" readlink /proc/self/ns/net)"
echo "TESTENV $(readlink "/proc/$ns21/ns/net")"
ns-ls --topology -p "$selftest" | sed 's/^/TOPOLOGY /'

# Teardown: selftest closes each daemon's stdin; the daemon exits, start_in_ns.sh with it.
exec 7>&-
wait "$ns21" && echo "EXIT21 0" || echo "EXIT21 $?"
exec 8>&-
wait "$ns22" && echo "EXIT22 0" || echo "EXIT22 $?"
echo "DONE"
