#!/bin/sh
# start_in_ns.sh IFACE EXPORTS PARENT_PID CMD... - Samba selftest drop-in
# (selftest/ns/start_in_ns.sh). Runs inside the testenv's new network namespace (selftest
# starts it with 'unshare --net').
#
# Reads NETBIOSNAME, ENVNAME, SERVER_IP and SERVER_IPV6 from EXPORTS (as data, never
# evaluated), prints the banner, writes the nsenter.sh helper, then creates the veth pair
# IFACE / IFACE-br with each end directly in its namespace (IFACE-br in PARENT_PID's) and
# IFACE's addresses (IPv6 without DAD), lo and both ends up - one veth-pair call. Then runs
# CMD with stdin untouched (Samba's daemons stop when their stdin pipe closes), stays alive
# while it runs, passes SIGTERM/SIGINT/SIGHUP on to it, and exits with its status.
set -eu
. "$(dirname -- "$0")/nstools-common.sh"

[ $# -ge 4 ] || nstools_die "usage: start_in_ns.sh IFACE EXPORTS PARENT_PID CMD..."
interface=$1
exports_file=$2
parent_pid=$3
shift 3

NETBIOSNAME= ENVNAME= SERVER_IP= SERVER_IPV6=
cr=$(printf '\r')
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%"$cr"}
    line=${line#export }
    case $line in
        NETBIOSNAME=*) NETBIOSNAME=${line#*=} ;;
        ENVNAME=*) ENVNAME=${line#*=} ;;
        SERVER_IP=*) SERVER_IP=${line#*=} ;;
        SERVER_IPV6=*) SERVER_IPV6=${line#*=} ;;
    esac
done < "$exports_file"

echo "-------------------------------------------------------------"
echo "Created namespace for $NETBIOSNAME ($ENVNAME) PID $$"
helper_script=$("$nstools_dir/mk_nsenter.sh" $$ "$exports_file")
echo "To communicate with this testenv, use: $helper_script"
echo "-------------------------------------------------------------"

[ -n "$SERVER_IP" ] || nstools_die "$exports_file defines no SERVER_IP"
if [ -n "$SERVER_IPV6" ]; then
    veth-pair "$interface" --peer-netns "$parent_pid" --addr "$SERVER_IP/24" --addr "$SERVER_IPV6/112"
else
    veth-pair "$interface" --peer-netns "$parent_pid" --addr "$SERVER_IP/24"
fi

# Run CMD as a child with the original stdin: an asynchronous command of a non-interactive
# shell would get /dev/null, so stdin is handed over through fd 3.
exec 3<&0
"$@" <&3 3<&- &
child=$!
exec 3<&-
got_signal=
trap 'got_signal=1; kill -TERM "$child" 2>/dev/null || :' TERM
trap 'got_signal=1; kill -INT "$child" 2>/dev/null || :' INT
trap 'got_signal=1; kill -HUP "$child" 2>/dev/null || :' HUP
while :; do
    got_signal=
    wait "$child" && status=0 || status=$?
    [ -n "$got_signal" ] || break # not interrupted by a signal: CMD has ended
done
exit "$status"
