#!/bin/sh
# End to end with a real Samba AD DC (Debian's samba), for tests/samba_e2e.rs.
#
#   unshare --mount samba-e2e.sh provision DIR
#       As real root: provision the AD DC "localdc" (realm SAMBA.EXAMPLE.COM, 10.53.57.21,
#       fd00::5357:5f15) into DIR/dc, and write DIR/client.conf for the clients.
#   unshare --net --user --map-root-user --mount samba-e2e.sh selftest WORK SCRIPTS
#       As a plain user, like 'make test USE_NAMESPACES=1': the selftest namespace. Samba's
#       calling sequence with the real DC (WORK/samba, provisioned and handed to the user),
#       checks from the selftest namespace and from testenv 22, then "READY ns21 ns22
#       selftest"; waits for a line on stdin; closes samba's stdin and checks the teardown.
#       Results go to stdout as "KEY value" lines; "OK what" or "FAIL what" for each check.
#
# Both phases run in a private mount namespace in which Samba's system directories
# (/etc/samba, /run/samba, /var/lib/samba, /var/cache/samba, /var/log/samba) are replaced by
# directories under DIR/sys: nothing of the machine's Samba is read or written. This is needed,
# not only tidy: the winbind client library in smbd looks for winbindd's socket in the
# compiled-in /run/samba/winbindd whatever smb.conf says, and the daemons write their first log
# lines to /var/log/samba before they read smb.conf.
set -eu

realm=SAMBA.EXAMPLE.COM
domain=SAMBADOMAIN
password='L0cal$DC;pw' # AD complexity rules; shell-special characters on purpose

# privatise DIR: bind DIR/sys/<dir> over each of Samba's system directories.
privatise() {
    for d in /etc/samba /run/samba /var/lib/samba /var/cache/samba /var/log/samba; do
        mkdir -p "$1/sys$d"
        [ -d "$d" ] || {
            echo "samba-e2e.sh: $d is missing (created by the samba package; as root: mkdir -p $d)" >&2
            exit 1
        }
        mount --bind "$1/sys$d" "$d"
    done
    # The clients' default smb.conf (smbclient, ldbsearch): ours.
    cp "$1/client.conf" /etc/samba/smb.conf
}

provision() {
    dir=$1
    mkdir -p "$dir/dc" "$dir/client"
    cat > "$dir/client.conf" <<EOF
[global]
	workgroup = $domain
	realm = $realm
	lock directory = $dir/client
	state directory = $dir/client
	cache directory = $dir/client
	private dir = $dir/client
	ncalrpc dir = $dir/client
EOF
    privatise "$dir"
    # 'dns forwarder =' keeps provision from copying the machine's resolver into smb.conf;
    # without dnsupdate the DC does not try to reach any name server but itself.
    samba-tool domain provision -s /dev/null --targetdir="$dir/dc" \
        --realm="$realm" --domain="$domain" --server-role=dc --dns-backend=SAMBA_INTERNAL \
        --adminpass="$password" --host-name=localdc \
        --host-ip=10.53.57.21 --host-ip6=fd00::5357:5f15 \
        --option="interfaces = 10.53.57.21/24 fd00::5357:5f15/112" \
        --option="bind interfaces only = yes" \
        --option="dns forwarder = " \
        --option="server services = -dnsupdate" \
        --option="pid directory = $dir/dc/run" \
        --option="ncalrpc dir = $dir/dc/run/ncalrpc" \
        --option="ntp signd socket directory = $dir/dc/run/ntp_signd" \
        --option="log file = $dir/dc/log.%m" \
        > "$dir/provision.log" 2>&1 || {
        tail -n 20 "$dir/provision.log" >&2
        exit 1
    }
}

# ok WHAT FILE NEEDLE CMD...: run CMD (output to FILE); OK if it succeeds and prints NEEDLE.
ok() {
    what=$1 file=$2 needle=$3
    shift 3
    if "$@" > "$file" 2>&1 && grep -qF -- "$needle" "$file"; then
        echo "OK $what"
    else
        echo "FAIL $what: $(tr '\n' ' ' < "$file" | cut -c1-400)"
    fi
}

# list_shares_ipv6 ADDR: smbclient -L over IPv6. It lists the shares, then exits 1 for the
# NetBIOS workgroup list, which has no IPv6 transport: that one failure is success here.
list_shares_ipv6() {
    out=$(smbclient -L "$1" -U "Administrator%$password" 2>&1) && rc=0 || rc=$?
    printf '%s\n' "$out"
    [ "$rc" -eq 0 ] || [ "$(printf '%s\n' "$out" | tail -n 1)" = "$1 is an IPv6 address -- no workgroup available" ]
}

links() {
    ip -o link show | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | sort | tr '\n' ' ' | sed 's/ $//'
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

selftest() {
    work=$1
    scripts=$2
    prov=$work/samba
    smb_conf=$prov/dc/etc/smb.conf
    selftest=$$
    exec 3<&0 < /dev/null # the test's "go" line arrives on fd 3; nothing else reads it
    privatise "$prov"

    "$scripts/create_bridge.sh" selftest0 10.53.57.11 fd00:0000:0000:0000:0000:0000:5357:5f0b

    # Testenv 21: the AD DC. selftest forks; the child execs
    # 'unshare --net start_in_ns.sh ...' with stdin a pipe from selftest (samba -i stops at its
    # EOF). uid_wrapper lets samba change credentials (setgroups, become_root) inside a user
    # namespace that maps only root, as in selftest, which preloads it for everything it runs:
    # so here our scripts and tools run under it too. Each testenv's pipe is closed in the
    # others' children (Perl marks its pipes close-on-exec), or an EOF would never come.
    env21=$work/ad_dc
    mkdir -p "$env21"
    cat > "$env21/exports.sh" <<EOF
NETBIOSNAME=LOCALDC
SERVER=localdc
SERVER_IP=10.53.57.21
SERVER_IPV6=fd00:0000:0000:0000:0000:0000:5357:5f15
DOMAIN=$domain
REALM=$realm
USERNAME=Administrator
PASSWORD=$password
SERVERCONFFILE=$smb_conf
EOF
    mkfifo "$env21/stdin"
    started=$(now_ms)
    ENVNAME=ad_dc.samba UID_WRAPPER=1 UID_WRAPPER_ROOT=1 LD_PRELOAD=libuid_wrapper.so \
        unshare --net "$scripts/start_in_ns.sh" veth21 "$env21/exports.sh" "$selftest" \
        samba -i -M single -s "$smb_conf" \
        < "$env21/stdin" > "$env21/log" 2>&1 3<&- &
    ns21=$!
    exec 7> "$env21/stdin"
    "$scripts/add_bridge_iface.sh" veth21-br selftest0

    # Testenv 22: a long-lived command (reads its stdin pipe until EOF, like a daemon).
    env22=$work/client22
    mkdir -p "$env22"
    cat > "$env22/exports.sh" <<EOF
NETBIOSNAME=CLIENT22
SERVER_IP=10.53.57.22
SERVER_IPV6=fd00:0000:0000:0000:0000:0000:5357:5f16
DC_SERVER=localdc
DC_SERVER_IP=10.53.57.21
DC_USERNAME=Administrator
DC_PASSWORD=$password
EOF
    mkfifo "$env22/stdin"
    ENVNAME=client22.samba unshare --net "$scripts/start_in_ns.sh" veth22 "$env22/exports.sh" "$selftest" \
        sh -c 'echo "testenv 22 started"; cat > /dev/null; echo "testenv 22 stdin closed"' \
        < "$env22/stdin" > "$env22/log" 2>&1 3<&- 7>&- &
    ns22=$!
    exec 8> "$env22/stdin"
    "$scripts/add_bridge_iface.sh" veth22-br selftest0

    # Wait until the DC answers: a bounded retry of the client itself.
    deadline=$(($(now_ms) + ${NSTOOLS_E2E_READY_MS:-40000}))
    tries=0
    ready=
    while [ "$(now_ms)" -lt "$deadline" ] && kill -0 "$ns21" 2> /dev/null; do
        tries=$((tries + 1))
        if smbclient -L 10.53.57.21 -U "Administrator%$password" > "$work/ready.out" 2>&1; then
            ready=1
            break
        fi
        sleep 0.1
    done
    if [ -n "$ready" ]; then
        echo "OK ready after $(($(now_ms) - started)) ms, $tries tries"
    else
        echo "FAIL ready: the DC did not answer in time: $(tail -n 3 "$work/ready.out" | tr '\n' ' ')"
    fi

    # From the selftest namespace (10.53.57.11 on selftest0).
    ok "smbclient -L over IPv4" "$work/smb4.out" 'IPC$' \
        smbclient -L 10.53.57.21 -U "Administrator%$password"
    ok "smbclient -L over IPv6" "$work/smb6.out" 'IPC$' list_shares_ipv6 fd00::5357:5f15
    ok "ldbsearch over LDAP" "$work/ldap.out" "dn: CN=Administrator,CN=Users,DC=samba,DC=example,DC=com" \
        ldbsearch -H ldap://10.53.57.21 -U "Administrator%$password" '(sAMAccountName=Administrator)' dn
    ok "DNS A record" "$work/dns-a.out" "localdc.samba.example.com has address 10.53.57.21" \
        host -t A localdc.samba.example.com 10.53.57.21
    ok "DNS SRV record" "$work/dns-srv.out" "has SRV record 0 100 389 localdc.samba.example.com." \
        host -t SRV _ldap._tcp.samba.example.com 10.53.57.21

    # From inside testenv 22, through its generated nsenter.sh: testenv to testenv.
    cat > "$env22/probe.sh" <<'EOF'
#!/bin/sh
echo "PROBE_NETNS $(readlink /proc/self/ns/net)"
smbclient -L "$DC_SERVER_IP" -U "$DC_USERNAME%$DC_PASSWORD"
EOF
    chmod 755 "$env22/probe.sh"
    ok "smbclient from testenv 22 via nsenter.sh" "$work/from22.out" 'IPC$' \
        env SHELL="$env22/probe.sh" "$env22/nsenter.sh"
    # From a testenv on a second (simulated) host: its own selftest0 in a namespace of its own,
    # joined to this one only by a VXLAN tunnel over an underlay veth (198.51.100.0/24); each
    # tunnel's UDP socket in its host's underlay namespace. Removed again before the teardown.
    under_a=$(ns-unshare --exit-with "$selftest")
    under_b=$(ns-unshare --exit-with "$selftest")
    hub_b=$(ns-unshare --exit-with "$selftest")
    t23=$(ns-exec -t "$hub_b" ns-unshare --exit-with "$selftest")
    ip link add ua netns "$under_a" type veth peer name ub netns "$under_b"
    ns-exec -t "$under_a" sh -c 'ip addr add 198.51.100.1/24 dev ua && ip link set ua up'
    ns-exec -t "$under_b" sh -c 'ip addr add 198.51.100.2/24 dev ub && ip link set ub up'
    ns-exec -t "$hub_b" sh -c "br-attach --create && veth-pair veth23 --netns $t23 --addr 10.53.57.23/24 && br-attach --timeout 0 veth23-br"
    br-attach --vxlan 5357 --remote 198.51.100.2 --underlay-netns "$under_a" > /dev/null
    br-attach --netns "$hub_b" --vxlan 5357 --remote 198.51.100.1 --underlay-netns "$under_b" > /dev/null
    ok "smbclient from another host's testenv over VXLAN" "$work/remote-smb.out" 'IPC$' \
        ns-exec -t "$t23" smbclient -L 10.53.57.21 -U "Administrator%$password"
    ok "DNS from another host's testenv over VXLAN" "$work/remote-dns.out" "localdc.samba.example.com has address 10.53.57.21" \
        ns-exec -t "$t23" host -t A localdc.samba.example.com 10.53.57.21
    br-attach --vxlan 5357 --delete
    ns-unshare --stop "$t23" "$hub_b" "$under_a" "$under_b"
    echo "TESTENV22_NETNS $(readlink "/proc/$ns22/ns/net")"
    grep '^PROBE_NETNS ' "$work/from22.out" || echo "PROBE_NETNS none"
    ns-ls --topology -p "$selftest" | sed 's/^/TOPOLOGY /'
    echo "LINKS $(links)"
    echo "NETNS21 $(readlink "/proc/$ns21/ns/net")"
    echo "READY $ns21 $ns22 $selftest"
    read -r _ <&3 || :

    # Teardown, as selftest does it: close each daemon's stdin.
    exec 7>&-
    wait "$ns21" && echo "EXIT21 0" || echo "EXIT21 $?"
    echo "LINKS $(links)"
    exec 8>&-
    wait "$ns22" && echo "EXIT22 0" || echo "EXIT22 $?"
    echo "LINKS $(links)"
    echo "DONE"
}

case ${1:-} in
    provision) provision "$2" ;;
    selftest) selftest "$2" "$3" ;;
    *)
        echo "usage: samba-e2e.sh provision DIR | selftest WORK SCRIPTS" >&2
        exit 2
        ;;
esac
