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
# while it runs, passes SIGTERM/SIGINT/SIGHUP on to it, and exits with its status. When CMD
# ends, what it left running in the namespace is terminated and the veth pair deleted, so the
# testenv is gone at once.
#
# NSTOOLS_ISOLATE (unset: the above, Samba's contract) gives the testenv more namespaces of its
# own: a comma list of pid, uts, mount, user, ipc, or "all". Then a holder (ns-unshare) makes
# them together with a fresh network namespace (owned by the testenv's user namespace, with
# "user": root inside is the caller), the pair goes into it, and this process - still the PID
# that identifies the testenv - becomes 'ns-exec --all' into the holder's namespaces, running
# CMD there (as PID 2 with "pid"; PID 1 is the holder). The hostname is $NETBIOSNAME; with
# "mount", /sys and (with "pid") /proc show only the testenv. Entry paths: nsenter.sh and
# 'ns-exec -t PID --all' see every namespace of the testenv; 'nsenter -t PID --net' (how
# selftest starts further daemons) sees its network only.
set -eu
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -ge 4 ] || nstools_die "usage: start_in_ns.sh IFACE EXPORTS PARENT_PID CMD..."
interface=$1
exports_file=$2
parent_pid=$3
shift 3

[ -r "$exports_file" ] || nstools_die "cannot read $exports_file"
NETBIOSNAME= ENVNAME= SERVER_IP= SERVER_IPV6=
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%[[:cntrl:]]} # a CR (DOS line ends); these values never end in a control character
    line=${line#export }
    case $line in
        NETBIOSNAME=*) NETBIOSNAME=${line#*=} ;;
        ENVNAME=*) ENVNAME=${line#*=} ;;
        SERVER_IP=*) SERVER_IP=${line#*=} ;;
        SERVER_IPV6=*) SERVER_IPV6=${line#*=} ;;
    esac
done < "$exports_file"

[ -n "$SERVER_IP" ] || nstools_die "$exports_file defines no SERVER_IP"

holder=
if [ -n "${NSTOOLS_ISOLATE:-}" ]; then
    nstools_isolate_flags "$NSTOOLS_ISOLATE" NSTOOLS_ISOLATE
    # shellcheck disable=SC2086 # a list of constant flags
    holder=$(ns-unshare $nstools_flags ${nstools_uts:+--hostname "$NETBIOSNAME"} --name "$ENVNAME" --exit-with $$ --print pid:inode)
fi

echo "-------------------------------------------------------------"
echo "Created namespace for $NETBIOSNAME ($ENVNAME) PID $$"
entry_pid=${holder%%:*}
nstools_mk_nsenter "${entry_pid:-$$}" "$exports_file" # what mk_nsenter.sh does, without starting it
echo "To communicate with this testenv, use: $nstools_helper"
echo "-------------------------------------------------------------"

veth-pair "$interface" ${holder:+--netns "$holder"} --peer-netns "$parent_pid" \
    --addr "$SERVER_IP/24" ${SERVER_IPV6:+--addr "$SERVER_IPV6/112"}

if [ -n "$holder" ]; then
    # This PID stays the testenv's: ns-exec joins the holder's namespaces, forks CMD into its PID
    # namespace (with the original stdin), passes signals on and exits with CMD's status.
    exec ns-exec -t "$holder" --all -- "$@"
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

# CMD has ended, and with it the testenv. Daemons can leave helpers behind in sessions of their
# own (samba 4.17's smbd starts samba-dcerpcd on demand; it outlives samba by a minute): they
# would keep this namespace, its addresses and IFACE-br on the bridge alive, and the testenv's
# next start would find IFACE-br taken. So terminate whatever is left in this network namespace
# (unless it is PARENT_PID's: then there is no namespace of our own to end) and delete the pair.
nstools_netns_inode $$
own_ns=$nstools_inode
nstools_netns_inode "$parent_pid" || nstools_inode=
if [ "$own_ns" != "$nstools_inode" ]; then
    set -- /proc/[0-9]*/ns/net # listed before the helpers below exist
    for path in $(find "$@" -maxdepth 0 -lname "net:\\[$own_ns\\]" 2> /dev/null); do
        pid=${path#/proc/}
        pid=${pid%%/*}
        [ "$pid" = $$ ] || kill -TERM "$pid" 2> /dev/null || :
    done
fi
veth-pair --delete "$interface" --missing-ok
exit "$status"
