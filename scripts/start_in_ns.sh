#!/bin/sh
# start_in_ns.sh IFACE EXPORTS PARENT_PID CMD... - Samba selftest drop-in
# (selftest/ns/start_in_ns.sh). Runs inside the testenv's new network namespace (selftest
# starts it with 'unshare --net').
#
# Reads NETBIOSNAME, ENVNAME, SERVER_IP and SERVER_IPV6 from EXPORTS on top of the inherited
# environment (selftest passes ENVNAME in the environment: a variable the file does not set
# keeps its inherited value; the file is data, never evaluated), prints the banner, writes the
# nsenter.sh helper, then creates the veth pair IFACE / IFACE-br with each end directly in its
# namespace (IFACE-br in PARENT_PID's) and IFACE's addresses (IPv6 without DAD), lo and both
# ends up - one veth-pair call, made by this process itself (exec), which then becomes
# 'ns-exec --end-netns' (veth-pair's exec; the PID stays the same): it runs CMD as
# its child with stdin untouched (Samba's daemons stop when their stdin pipe closes), passes
# every catchable signal on to it (Samba3's forced stop sends SIGUSR1 and SIGALRM) and exits
# with its status once the testenv is gone (namespace, addresses, IFACE-br), so it can start
# again at once: what CMD left running in the namespace gets SIGTERM (samba 4.17's smbd starts
# samba-dcerpcd in a session of its own, which outlives samba by a minute) and the pair is
# deleted; with nothing left, the kernel destroys the namespace and ns-exec waits for it.
#
# NSTOOLS_ISOLATE (unset: the above, Samba's contract) gives the testenv more namespaces of its
# own: a comma list of pid, uts, mount, user, ipc, or "all". Then a holder (ns-unshare) makes
# them together with a fresh network namespace (owned by the testenv's user namespace, with
# "user": root inside is the caller). This process - still the PID that identifies the testenv -
# first enters that network namespace and creates the pair from there, so it is in its final
# network namespace before IFACE-br appears (selftest then starts further daemons with
# 'nsenter -t PID --net'); then it becomes 'ns-exec --all' into the holder's other namespaces,
# running CMD there (as PID 2 with "pid"; PID 1 is the holder) in the caller's working
# directory. The hostname is $NETBIOSNAME; with "mount", /sys and (with "pid") /proc show only
# the testenv. Entry paths: nsenter.sh and 'ns-exec -t PID --all' see every namespace of the
# testenv; 'nsenter -t PID --net' sees its network only.
#
# NSTOOLS_PCAP_DIR (unset: nothing more runs) records everything in the testenv - every
# interface, loopback included - into $NSTOOLS_PCAP_DIR/NAME.pcap (pcapng; NAME is $ENVNAME, else
# $NETBIOSNAME, else IFACE), from before the veth pair exists until the daemon has ended:
# 'ns-exec --capture' does it in the process that stays in the testenv's network namespace
# (this PID), and the pair is made by its child, veth-pair, which then becomes CMD.
set -eu
case $0 in */*) . "${0%/*}/nstools-common.sh" ;; *) . ./nstools-common.sh ;; esac

[ $# -ge 4 ] || nstools_die "usage: start_in_ns.sh IFACE EXPORTS PARENT_PID CMD..."
interface=$1
exports_file=$2
parent_pid=$3
shift 3

[ -r "$exports_file" ] || nstools_die "cannot read $exports_file"
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

[ -n "${SERVER_IP:-}" ] || nstools_die "$exports_file defines no SERVER_IP"
SERVER_IPV6=${SERVER_IPV6:-}

pcap=
[ -z "${NSTOOLS_PCAP_DIR:-}" ] || pcap=$NSTOOLS_PCAP_DIR/${ENVNAME:-${NETBIOSNAME:-$interface}}.pcap

holder=
if [ -n "${NSTOOLS_ISOLATE:-}" ]; then
    nstools_isolate_flags "$NSTOOLS_ISOLATE" NSTOOLS_ISOLATE
    # shellcheck disable=SC2086 # a list of constant flags
    holder=$(ns-unshare $nstools_flags ${nstools_uts:+${NETBIOSNAME:+--hostname "$NETBIOSNAME"}} \
        ${ENVNAME:+--name "$ENVNAME"} --exit-with $$ --print pid:inode)
fi

echo "-------------------------------------------------------------"
echo "Created namespace for ${NETBIOSNAME:-} (${ENVNAME:-}) PID $$"
entry_pid=${holder%%:*}
nstools_mk_nsenter "${entry_pid:-$$}" "$exports_file" # what mk_nsenter.sh does, without starting it
echo "To communicate with this testenv, use: $nstools_helper"
echo "-------------------------------------------------------------"

# What runs in the end, then the pair before it (veth-pair becomes what follows its '--': exec,
# no shell in between), then what runs first: this PID stays the testenv's throughout.
if [ -n "$holder" ]; then
    # ns-exec joins the holder's network namespace (exec, no new process), the pair is made from
    # there, then ns-exec joins the holder's other namespaces, forks CMD into its PID namespace
    # (with the original stdin), passes signals on and exits with CMD's status. With a capture,
    # this PID records and the rest runs as its child.
    set -- ns-exec -t "$holder" --all -- "$@"
elif [ -z "$pcap" ]; then
    # The daemon ends the testenv: 'ns-exec --end-netns' ends this network namespace with it (not
    # one our parent is in too: start_in_ns.sh run without 'unshare --net' has none of its own).
    set -- ns-exec -t $$ --end-netns -- "$@"
fi
set -- veth-pair "$interface" --peer-netns "$parent_pid" --addr "$SERVER_IP/24" ${SERVER_IPV6:+--addr "$SERVER_IPV6/112"} -- "$@"
if [ -n "$holder" ]; then
    exec ns-exec -t "$holder" --net ${pcap:+--capture "$pcap"} -- "$@"
elif [ -n "$pcap" ]; then
    # As without, with the capture open before the pair is made (by its child, which then
    # becomes CMD).
    exec ns-exec -t $$ --end-netns --capture "$pcap" -- "$@"
fi
exec "$@"
