#!/bin/sh
# tunnel.sh BYTES PINGS - the cost of a VXLAN tunnel: two simulated hosts (network namespaces
# joined by an underlay veth, 198.51.100.1 and .2), each with a testenv on its own selftest0
# (scripts/testenv), joined first by a plain veth between the two bridges, then instead by the
# tunnel (testenv join-remote). For each path: three TCP transfers of BYTES from host b's
# testenv to host a's (python3; the fastest counts: the machine is shared), and PINGS pings
# (0.01 s apart) for the latency. Prints
#   path veth|vxlan transfer BYTES SECONDS rtt_avg_ms MS
# then 'ratio throughput R latency L' (vxlan against veth). Root or rootless
# (unshare --user --map-root-user --net); one run, no repetitions: a figure, not a statistic.
set -eu
bytes=${1:-100000000} pings=${2:-200}
scripts=${BENCH_SCRIPTS:-$(cd "$(dirname "$0")/../../scripts" && pwd)}
tcp=$(cd "$(dirname "$0")/../../tests" && pwd)/tcp.py
PATH=$scripts:$scripts/../target/release:$PATH
export PATH
tag=bench$$
work=$(mktemp -d)
host_a=$(ns-unshare --name "$tag-a")
host_b=$(ns-unshare --name "$tag-b")
on() { # on a|b CMD...
    eval "h=\$host_$1"
    label=$tag-hub-$1
    shift
    ns-exec -t "$h" env NSTOOLS_SELFTEST_LABEL="$label" "$@"
}
cleanup() {
    on a testenv down > /dev/null 2>&1 || :
    on b testenv down > /dev/null 2>&1 || :
    ns-unshare --stop "$host_a" "$host_b" 2> /dev/null || :
    rm -rf "$work"
}
trap cleanup EXIT
ip link add ua netns "$host_a" type veth peer name ub netns "$host_b"
ns-exec -t "$host_a" sh -c 'ip addr add 198.51.100.1/24 dev ua && ip link set ua up'
ns-exec -t "$host_b" sh -c 'ip addr add 198.51.100.2/24 dev ub && ip link set ub up'
on a testenv up dst:21 > /dev/null
on b testenv up src:22 > /dev/null
hub_a=$(on a ns-ls --owned --label "$tag-hub-a" -n -o PID --no-interfaces)
hub_b=$(on b ns-ls --owned --label "$tag-hub-b" -n -o PID --no-interfaces)

measure() { # measure PATH: one transfer and the pings, one line
    mkfifo "$work/ready"
    on a testenv exec dst -- python3 "$tcp" sink 10.53.57.21 3 > "$work/ready" &
    read -r _ < "$work/ready"
    transfer=$(on b testenv exec src -- python3 "$tcp" send 10.53.57.21 "$bytes" 3 best | sed -n 's/^TRANSFER //p')
    wait
    rm "$work/ready"
    rtt=$(on b testenv exec src -- ping -q -c "$pings" -i 0.01 10.53.57.21 | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
    echo "path $1 transfer $transfer rtt_avg_ms $rtt"
}

# The plain path: a veth between the two bridges.
ip link add bra netns "$hub_a" type veth peer name brb netns "$hub_b"
ns-exec -t "$hub_a" br-attach --timeout 0 bra
ns-exec -t "$hub_b" br-attach --timeout 0 brb
veth=$(measure veth)
echo "$veth"
ns-exec -t "$hub_a" ip link delete bra

# The tunnel over the underlay veth.
on a testenv join-remote 198.51.100.2 > /dev/null
on b testenv join-remote 198.51.100.1 > /dev/null
vxlan=$(measure vxlan)
echo "$vxlan"
echo "$veth $vxlan" | awk '{ printf "ratio throughput %.2f latency %.2f (vxlan against veth)\n", $5 / $12, $14 / $7 }'
