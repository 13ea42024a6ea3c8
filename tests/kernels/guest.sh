#!/bin/sh
# Runs inside a virtme-ng guest started by tests/kernels/run, as root, on the host's file
# system (read-only, with writable overlays on /etc, /tmp and /var): the checkout's release
# binaries and scripts, then its compiled integration tests, on the guest's kernel.
#
#   guest.sh REPO RESULTS [GROUP...]     GROUP: smoke netem tests (default: all three)
#
# RESULTS is a directory shared with the host. Progress goes to the console as lines starting
# with "NSTK " (the host shows them); everything else goes to RESULTS/guest.log; the outcome to
# RESULTS/result, one "group NAME pass|fail|skip", "figure NAME VALUE" or "note TEXT" a line.
set -u
# virtme-ng's init (PID 1) does not reap the orphans it inherits: holders whose ns-unshare has
# exited would stay as zombies and look like leftovers. A child subreaper that does runs the rest.
if [ -z "${NSTK_REAPER:-}" ]; then
    export NSTK_REAPER=1
    exec python3 -c '
import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
while True:
    p, status = os.wait()
    if p == pid:
        sys.exit(os.waitstatus_to_exitcode(status))
' sh "$0" "$@"
fi
REPO=$1
RES=$2
shift 2
WANT=${*:-smoke netem tests}
LOG=$RES/guest.log
OUT=$RES/result
: > "$OUT"
exec 3>&1 > "$LOG" 2>&1
export PATH="$REPO/target/release:$REPO/scripts:$PATH" CI=true LC_ALL=C
export NSTOOLS_BIN_DIR="$REPO/target/release"
USER_NAME=nstools-test
WORK=$(mktemp -d /tmp/nstk.XXXXXX)
chmod 777 "$WORK"
cd "$WORK" || exit 1

say() { echo "NSTK $*" >&3; echo "== $*"; }
record() { echo "$*" >> "$OUT"; }
fig() { record "figure $1 $2"; echo "figure $1 $2"; }
FAILED=""
# check DESC CMD...: run CMD; a failure is logged and fails the current group.
check() {
    desc=$1
    shift
    echo "-- $desc: $*"
    if "$@"; then
        return 0
    fi
    echo "FAILED: $desc"
    echo "NSTK   failed: $desc" >&3
    FAILED="$FAILED; $desc"
    return 1
}
# As the plain user (no user namespace of its own yet), in the work directory.
as_user() { setpriv --reuid "$USER_NAME" --regid "$USER_NAME" --init-groups env HOME="$WORK" sh -c "$1"; }
# Nothing of ours left: no holder, no veth/bridge in this namespace, no /run/netns entry.
clean() {
    ! pgrep -x ns-unshare && ! ip -o link | grep -E 'veth|selftest|v0' && ! ls /run/netns/lab2 2> /dev/null
}
contains() { case $1 in *"$2"*) return 0 ;; esac; echo "not found: '$2' in: $1"; return 1; }
group_end() {
    if [ -z "$FAILED" ]; then record "group $1 pass"; say "$1: pass"; else
        record "group $1 fail"
        record "note $1 failed:${FAILED#;}"
        say "$1: FAIL"
    fi
    FAILED=""
}

# ---------------------------------------------------------------------------------------------
fig boot_s "$(cut -d" " -f1 /proc/uptime)"
say "kernel $(uname -r), $(nproc) CPUs, up in $(cut -d" " -f1 /proc/uptime) s"
ip link set lo up
# useradd replaces /etc/shadow by a rename, which the file virtme-ng mounts over it refuses;
# without that mount the guest's /etc overlay takes the change (the host's /etc is untouched).
if ! id "$USER_NAME" > /dev/null 2>&1; then
    umount /etc/shadow 2> /dev/null
    useradd --system --no-create-home --shell /bin/sh "$USER_NAME" || say "cannot create the user $USER_NAME"
fi
# netem: the kernel's own answer, in a namespace of its own (it loads sch_netem on demand).
modprobe sch_netem 2> /dev/null
if unshare --net sh -c 'ip link set lo up && tc qdisc add dev lo root netem delay 1ms'; then
    NETEM=yes
else
    NETEM=no
fi
record "netem $NETEM"
say "sch_netem: $NETEM"

ping_stats() { # ping output on stdin: "n min mean p50 p90 p99 max sd" of the RTTs (ms)
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -n | awk '
        { v[NR] = $1; s += $1; q += $1 * $1 }
        function pct(p,  i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; return v[i] }
        END { if (NR == 0) { print "0 - - - - - - -"; exit }
              m = s / NR; sd = sqrt(q / NR - m * m); if (sd != sd) sd = 0
              printf "%d %.1f %.1f %.1f %.1f %.1f %.1f %.1f\n", NR, v[1], m, pct(0.5), pct(0.9), pct(0.99), v[NR], sd }'
}
received() { sed -n 's/.*, \([0-9]*\) received.*/\1/p'; }

# ---------------------------------------------------------------------------------------------
smoke() {
    say "smoke: the README's ad-hoc block"
    mine=$(readlink /proc/self/ns/net)
    out=$(ns-unshare | ns-exec ip -br addr) && check "pipe idiom: ns-unshare | ns-exec ip -br addr" contains "$out" "lo "
    other=$(ns-unshare | ns-exec readlink /proc/self/ns/net)
    check "the pipe idiom's command runs in another namespace" test -n "$other" -a "$other" != "$mine"
    out=$(ns-unshare --pid --mount | ns-exec --all sh -c 'echo $$; ls /proc | grep -c "^[0-9]"')
    check "ns-unshare --pid --mount | ns-exec --all: own PID namespace and /proc" test "$(echo "$out" | head -n1)" -lt 10
    check "ns-unshare --name lab" ns-unshare --name lab
    check "veth-pair v0 --netns lab" veth-pair v0 --netns lab --addr 192.0.2.1/24 --peer-addr 192.0.2.2/24
    check "ns-exec -t lab ping -c1 192.0.2.2" ns-exec -t lab ping -c1 -W 5 192.0.2.2
    check "veth-pair --shape v0 --netns lab --rate 8mbit" veth-pair --shape v0 --netns lab --rate 8mbit
    out=$(ns-ls) && check "ns-ls shows the rate" contains "$out" "[rate 8Mbit]"
    check "ns-ls --topology --dot | dot -Tsvg" sh -c 'ns-ls --topology --dot | dot -Tsvg -o topology.svg && grep -q "<svg" topology.svg'
    check "ns-unshare --stop lab" ns-unshare --stop lab
    check "ns-unshare --bind /run/netns/lab2" ns-unshare --name lab2 --bind /run/netns/lab2
    check "ip netns exec lab2" ip netns exec lab2 true
    check "ip netns delete lab2" ip netns delete lab2
    out=$(sh -c 'ns-unshare --exit-with $$ > /dev/null; ns-ls --no-interfaces -n -o PID,EXITWITH | grep -c .')
    check "ns-unshare --exit-with \$\$ lives while the shell does" test "$out" -ge 1
    check "nothing left as root" clean

    say "smoke: rootless (a plain user)"
    out=$(as_user 'ns-unshare --map-root-user | ns-exec sh -c "id -u; ip -br link"')
    check "plain user: ns-unshare --map-root-user | ns-exec" contains "$out" "0
lo"
    out=$(as_user 'unshare --user --map-root-user --net sh -c "ns-unshare | ns-exec ip -br addr"')
    check "plain user in unshare --user --map-root-user: the pipe idiom" contains "$out" "lo "
    check "plain user: testenv up a:21 b:22" as_user 'testenv up a:21 b:22'
    check "plain user: testenv exec a -- ping b" as_user 'testenv exec a -- ping -c2 -W 5 10.53.57.22'
    out=$(as_user 'testenv ls') && check "plain user: testenv ls" contains "$out" "veth22"
    check "plain user: testenv shape a --rate 8mbit" as_user 'testenv shape a --rate 8mbit'
    check "plain user: testenv down" as_user 'testenv down'
    check "nothing left rootless" sh -c '! pgrep -u '"$USER_NAME"' -x ns-unshare'

    say "smoke: a testenv with two namespaces, as root"
    check "testenv up ad_dc:21 fs:22" testenv up ad_dc:21 fs:22
    check "testenv exec ad_dc -- ping fs" testenv exec ad_dc -- ping -c3 -W 5 10.53.57.22
    out=$(ns-ls --topology) && check "ns-ls --topology shows the bridge and both ports" \
        sh -c "echo '$out' | grep -q selftest0 && echo '$out' | grep -q veth21-br && echo '$out' | grep -q veth22-br"
    check "testenv down" testenv down
    check "nothing left after testenv down" clean
    group_end smoke
}

# ---------------------------------------------------------------------------------------------
NS_LS_IF="veth21"
shown() { # what ns-ls --topology shows for veth21
    testenv ls | grep -o "\[$NS_LS_IF: [^]]*\]"
}
netem() {
    if [ "$NETEM" = no ]; then
        # The tools must say so in one line naming the module, and leave nothing.
        testenv up a:21 b:22
        err=$(testenv shape a --delay 100ms 2>&1)
        check "without netem: one line naming sch_netem" contains "$err" "sch_netem"
        testenv down
        check "without netem: nothing left" clean
        group_end netem
        return
    fi
    check "testenv up a:21 b:22" testenv up a:21 b:22
    p="testenv exec a -- ping -W 3"

    say "netem: --delay 100ms"
    # The neighbour's address first: netem would delay its request as well as the first ping.
    $p -c 1 10.53.57.22 > /dev/null
    testenv shape a --delay 100ms
    check "ns-ls shows the delay" test "$(shown)" = "[veth21: delay 100ms]"
    set -- $($p -c 30 -i 0.2 10.53.57.22 | ping_stats)
    echo "delay 100ms: $*"
    fig delay100_rtt "n=$1 min=$2 mean=$3 p50=$4 p90=$5 p99=$6 max=$7 sd=$8"
    check "delay 100ms: 30 replies" test "$1" = 30
    check "delay 100ms: every RTT within 100-130 ms ($2-$7)" awk "BEGIN { exit !($2 >= 100 && $7 <= 130) }"

    say "netem: --loss 20% over 1,000 packets"
    testenv shape a --loss 20%
    check "ns-ls shows the loss (alone: shape sets exactly what is given)" test "$(shown)" = "[veth21: loss 20%]"
    got=$($p -c 1000 -i 0.005 10.53.57.22 | received)
    lost=$((1000 - ${got:-0}))
    fig loss20_lost "$lost"
    # Binomial(1000, 0.2): mean 200, sigma 12.65; 4 sigma (a false failure 6 times in 100,000
    # runs) is 150..250.
    check "loss 20%: $lost of 1000 lost, within 200 +- 4 sigma (150-250)" test "$lost" -ge 150 -a "$lost" -le 250

    say "netem: --delay 100ms --jitter 20ms"
    testenv shape a --delay 100ms --jitter 20ms
    check "ns-ls shows delay and jitter" test "$(shown)" = "[veth21: delay 100ms jitter 20ms]"
    set -- $($p -c 100 -i 0.05 10.53.57.22 | ping_stats)
    echo "jitter 20ms: $*"
    fig jitter20_rtt "n=$1 min=$2 mean=$3 p50=$4 p90=$5 p99=$6 max=$7 sd=$8"
    check "jitter: 100 replies" test "$1" = 100
    # Uniform over 80-120 ms: sigma 11.5 ms. Spread, and within the bounds (+30 ms for the guest).
    check "jitter spreads the RTTs: sd $8 ms >= 5, range $2-$7 within 80-150 ms" \
        awk "BEGIN { exit !($8 >= 5 && $2 >= 79.5 && $7 <= 150 && $7 - $2 >= 20) }"

    say "netem: --delay 50ms --rate 1mbit together"
    testenv shape a --delay 50ms --rate 1mbit
    check "ns-ls shows delay and rate" test "$(shown)" = "[veth21: delay 50ms rate 1Mbit]"
    kind=$(testenv exec a -- tc qdisc show dev veth21 | awk '{ print $2; exit }')
    check "one netem qdisc carries both (tc: $kind)" test "$kind" = netem
    set -- $($p -c 10 -i 0.2 10.53.57.22 | ping_stats)
    fig delay50_rate1mbit_rtt "n=$1 min=$2 mean=$3 max=$7"
    check "delay 50ms + rate: RTT $2-$7 within 50-80 ms" awk "BEGIN { exit !($1 == 10 && $2 >= 50 && $7 <= 80) }"
    rm -f ready && mkfifo ready
    testenv exec b -- python3 "$REPO/tests/tcp.py" sink 10.53.57.22 > ready &
    sink=$!
    read -r _ < ready # the sink says "ready" once it listens
    t=$(testenv exec a -- python3 "$REPO/tests/tcp.py" send 10.53.57.22 500000)
    wait $sink
    set -- $t
    mbit=$(awk "BEGIN { printf \"%.3f\", $2 * 8 / $3 / 1e6 }")
    fig delay50_rate1mbit_tcp_mbit "$mbit"
    # Payload over 1 Mbit/s on the wire (Ethernet, IP and TCP headers: ~96% of it), slow start
    # over a 50 ms RTT included.
    check "delay 50ms + rate 1mbit: 500 kB over TCP at $mbit Mbit/s, within 0.75-1.0" \
        awk "BEGIN { exit !($2 == 500000 && $mbit >= 0.75 && $mbit <= 1.0) }"

    say "netem: veth-pair --shape NAME and --clear, ns-ls"
    pid=$(ns-ls --label a -n -o PID --no-interfaces | head -n1)
    check "veth-pair --shape veth21 --netns PID --delay 10ms --loss 1%" veth-pair --shape veth21 --netns "$pid" --delay 10ms --loss 1%
    check "ns-ls shows the new impairment" test "$(shown)" = "[veth21: delay 10ms loss 1%]"
    j=$(ns-ls -p "$pid" --json)
    check "ns-ls --json: delay_us 10000, loss_percent 1" sh -c "echo '$j' | python3 -c '
import json, sys
v = json.load(sys.stdin)
i = [i for i in v[\"namespaces\"][0][\"interfaces\"] if i[\"name\"] == \"veth21\"][0][\"impairment\"]
sys.exit(not (i[\"qdisc\"] == \"netem\" and i[\"delay_us\"] == 10000 and i[\"loss_percent\"] == 1 and i[\"rate_bits_per_sec\"] is None))'"
    check "veth-pair --shape veth21 --clear" veth-pair --shape veth21 --netns "$pid" --clear
    check "ns-ls shows no impairment" test -z "$(shown)"
    set -- $($p -c 5 -i 0.2 10.53.57.22 | ping_stats)
    check "cleared: 5 replies, RTT up to $7 ms < 20" awk "BEGIN { exit !($1 == 5 && $7 < 20) }"
    check "testenv down" testenv down
    check "nothing left" clean
    group_end netem
}

# ---------------------------------------------------------------------------------------------
# The compiled integration tests (built on the host by tests/kernels/run, listed in
# RESULTS/test-binaries as "NAME PATH"), with CI=true: a skip fails, except a kernel without
# netem - which must not be said here when the kernel has it.
tests() {
    while read -r name exe filters; do
        say "tests: $name${filters:+ ($filters)}"
        # shellcheck disable=SC2086 # the filters are words
        "$exe" --test-threads=2 $filters > "$RES/test-$name.log" 2>&1
        rc=$?
        summary=$(grep '^test result:' "$RES/test-$name.log" | tail -n1)
        fig "tests_$name" "$(echo "$summary" | sed 's/^test result: //; s/; finished in.*//')"
        check "tests/$name.rs: $summary" test "$rc" = 0
        skipped=$(grep -c '^SKIPPED' "$RES/test-$name.log")
        if [ "$NETEM" = yes ]; then
            check "tests/$name.rs: nothing skipped on a kernel with netem ($skipped SKIPPED)" test "$skipped" = 0
        else
            record "note tests/$name.rs: $skipped netem tests SKIPPED (no sch_netem)"
        fi
    done < "$RES/test-binaries"
    check "nothing left after the tests" clean
    group_end tests
}

for g in $WANT; do
    case $g in
        smoke | netem | tests) "$g" ;;
        *) say "unknown group $g" ;;
    esac
done
record "done"
say "done"
