#!/bin/sh
# Two simulated hosts joined by a VXLAN tunnel, driven by tests/vxlan.rs (which checks what this
# prints): each host a network namespace (an ns-unshare holder) with its own testenvs and
# selftest0 (testenv up), the two joined only by an underlay veth ua/ub with documentation
# addresses 198.51.100.1 and .2, the tunnel made by 'testenv join-remote' on each side.
#
# Usage: vxlan-two-hosts.sh PHASE WORK SCRIPTS
#   PHASE: main (pings, MTU, a TCP transfer, captures, ls, teardown), wrong-vni, wrong-port
#   WORK: a directory for files
#   SCRIPTS: the scripts/ directory (testenv)
# Runs as root, or rootless inside 'unshare --user --map-root-user --net'.
set -eu
phase=$1 work=$2 scripts=$3
tag=${NSTOOLS_TEST_TAG:-vx$$}
tcp=$(cd "$(dirname "$0")" && pwd)/tcp.py
PATH=$scripts:$PATH
export PATH

# Host X: its holder's PID, its selftest label.
hosts() {
    host_a=$(ns-unshare --name "$tag-host-a")
    host_b=$(ns-unshare --name "$tag-host-b")
    ip link add ua netns "$host_a" type veth peer name ub netns "$host_b"
    ns-exec -t "$host_a" sh -c 'ip addr add 198.51.100.1/24 dev ua && ip link set ua up && ip link set lo up'
    ns-exec -t "$host_b" sh -c 'ip addr add 198.51.100.2/24 dev ub && ip link set ub up && ip link set lo up'
}

# on a|b CMD...: CMD in host a's or b's namespace, with that host's selftest label.
on() {
    h=$1
    shift
    eval "pid=\$host_$h"
    ns-exec -t "$pid" env NSTOOLS_SELFTEST_LABEL="$tag-hub-$h" "$@"
}

hub_of() {
    on "$1" ns-ls --owned --label "$tag-hub-$1" -n -o PID --no-interfaces
}

# What is left: every link of each host and hub, one line each.
left() {
    for h in a b; do
        eval "pid=\$host_$h"
        printf 'LEFT host-%s %s\n' "$h" "$(ns-exec -t "$pid" ip -o link show | cut -d: -f2 | tr -d ' ' | sed 's/@.*//' | tr '\n' ' ')"
        hub=$(hub_of "$h")
        if [ -n "$hub" ]; then
            printf 'LEFT hub-%s %s\n' "$h" "$(ns-exec -t "$hub" ip -o link show | cut -d: -f2 | tr -d ' ' | sed 's/@.*//' | tr '\n' ' ')"
        else
            printf 'LEFT hub-%s none\n' "$h"
        fi
    done
}

teardown() {
    on a testenv down > /dev/null 2>&1 || :
    on b testenv down > /dev/null 2>&1 || :
    ns-unshare --stop "$host_a" "$host_b" 2> /dev/null || :
}

hosts
trap teardown EXIT
on a testenv up dc:21 > /dev/null
on b testenv up member:22 > /dev/null

case $phase in
    main)
        on a testenv join-remote 198.51.100.2 | sed 's/^/JOIN a: /'
        on b testenv join-remote 198.51.100.1 | sed 's/^/JOIN b: /'
        hub_a=$(hub_of a) hub_b=$(hub_of b)
        echo "DETAILS a: $(ns-exec -t "$hub_a" ip -d -o link show vx5357)"
        echo "FDB a: $(ns-exec -t "$hub_a" bridge fdb show dev vx5357 | tr '\n' ';')"

        on a testenv exec dc -- ping -c 2 -i 0.2 -W 5 10.53.57.22 > /dev/null && echo "PING a->b ipv4 ok"
        on b testenv exec member -- ping -c 2 -i 0.2 -W 5 10.53.57.21 > /dev/null && echo "PING b->a ipv4 ok"
        on a testenv exec dc -- ping -c 2 -i 0.2 -W 5 fd00::5357:5f16 > /dev/null && echo "PING a->b ipv6 ok"
        on b testenv exec member -- ping -c 2 -i 0.2 -W 5 fd00::5357:5f15 > /dev/null && echo "PING b->a ipv6 ok"
        on a testenv exec dc -- ping -c 1 -W 5 -M do -s 1400 10.53.57.22 > /dev/null && echo "PING a->b 1400 DF ok"
        # Too big for one underlay packet, don't fragment: the kernel answers for the tunnel.
        echo "PING a->b 1472 DF: $(on a testenv exec dc -- ping -c 1 -W 5 -M do -s 1472 10.53.57.22 2>&1 | grep -o 'mtu = [0-9]*' || echo no answer)"
        on a testenv exec dc -- ping -c 1 -W 5 -s 3000 10.53.57.22 > /dev/null && echo "PING a->b 3000 fragmented ok"

        # 10 MB over TCP from a testenv on host b to one on host a.
        on a testenv exec dc -- python3 "$tcp" sink 10.53.57.21 > "$work/sink.out" &
        sink=$!
        # The sink says "ready" once it listens (a FIFO would do too; this is a test).
        i=0
        until grep -q ready "$work/sink.out" 2> /dev/null; do
            i=$((i + 1))
            [ $i -lt 500 ] || { echo "the sink never listened" >&2; exit 1; }
            sleep 0.01
        done
        on b testenv exec member -- python3 "$tcp" send 10.53.57.21 10000000
        wait $sink

        # Captures on both bridges and on host a's underlay while host b's testenv pings host a's.
        ns-exec -t "$hub_a" --capture "$work/bridge-a.pcap" --capture-interface selftest0 -- \
            ns-exec -t "$hub_b" --capture "$work/bridge-b.pcap" --capture-interface selftest0 -- \
            ns-exec -t "$host_a" --capture "$work/underlay-a.pcap" --capture-interface ua -- \
            env NSTOOLS_SELFTEST_LABEL="$tag-hub-b" testenv exec member -- ping -c 3 -i 0.2 -W 5 10.53.57.21 > /dev/null
        # tshark (tcpdump -r cannot change its user inside a user namespace): ICMP type and VNI.
        for f in bridge-a bridge-b underlay-a; do
            tshark -r "$work/$f.pcap" -T fields -e icmp.type -e vxlan.vni 2> /dev/null | awk -v f="$f" '
                $1 == 8 { req++ } $1 == 0 { rep++ } $NF == 5357 { vx++ }
                END { printf "CAPTURE %s: %d requests, %d replies, %d vxlan\n", f, req, rep, vx }'
        done

        on a testenv ls | sed 's/^/LS a: /'
        on a testenv ls --dot | sed 's/^/DOT a: /'
        echo "JSON a: $(ns-exec -t "$hub_a" ns-ls --json -p "$hub_a" | tr -d '\n')"

        # The tunnel goes: with --delete on a, with the selftest namespace on b.
        on a testenv join-remote --delete | sed 's/^/DELETE a: /'
        on b testenv down > /dev/null
        left
        # Ending host a's side: its selftest namespace goes with the tunnel in it.
        on a testenv join-remote 198.51.100.2 > /dev/null
        on a testenv down > /dev/null
        left | sed 's/^LEFT/ENDED/'
        ;;
    wrong-vni | wrong-port)
        on a testenv join-remote 198.51.100.2 > /dev/null
        if [ "$phase" = wrong-vni ]; then
            on b testenv join-remote 198.51.100.1 --vni 5358 > /dev/null
        else
            on b testenv join-remote 198.51.100.1 --dstport 4790 > /dev/null
        fi
        if on a testenv exec dc -- ping -c 2 -i 0.2 -W 1 10.53.57.22 > /dev/null; then
            echo "PING a->b ok"
        else
            echo "PING a->b failed"
        fi
        hub_a=$(hub_of a)
        echo "LEARNED a: $(ns-exec -t "$hub_a" bridge fdb show dev vx5357 | grep -vc '^00:00:00:00:00:00\|permanent' || :)"
        echo "JSON a: $(ns-exec -t "$hub_a" ns-ls --json -p "$hub_a" | tr -d '\n')"
        on a testenv ls | sed 's/^/LS a: /'
        ;;
    *)
        echo "unknown phase $phase" >&2
        exit 2
        ;;
esac
