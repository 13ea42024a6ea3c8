//! veth-pair, run for real in fresh namespaces and checked with `ip -j`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::time::Duration;

use nstools_tests::{addrs, find, sandbox, wait_until};

#[test]
fn pair_into_a_testenv_with_addresses_up_and_nodad() {
    let mut sb = sandbox!("pair_into_a_testenv_with_addresses_up_and_nodad");
    let env = sb.spawn_netns();
    let json = sb
        .run(
            "veth-pair",
            &[
                "veth21",
                "--netns",
                &env.to_string(),
                "--addr",
                "10.53.57.21/24",
                "--addr",
                "fd00::5357:5f15/112",
                "--json",
            ],
        )
        .ok()
        .to_owned();

    // The testenv end: addresses (IPv6 without DAD), up, loopback up.
    let inside = sb.ip_in(env, "addr show");
    let veth = find(&inside, "veth21");
    let a = addrs(veth);
    assert!(a.contains(&"10.53.57.21/24".to_owned()), "{a:?}");
    assert!(a.contains(&"fd00::5357:5f15/112 nodad".to_owned()), "{a:?}");
    assert!(veth["flags"].as_array().unwrap().contains(&"UP".into()), "{veth}");
    // The operational state follows the carrier asynchronously (the kernel's linkwatch).
    assert!(wait_until(Duration::from_secs(3), || find(&sb.ip_in(env, "link show"), "veth21")["operstate"] == "UP"));
    assert!(find(&inside, "lo")["flags"].as_array().unwrap().contains(&"UP".into()));

    // The peer: in the caller's namespace, up, with no address, and really veth21's peer.
    let here = sb.ip("-d link show");
    let peer = find(&here, "veth21-br");
    assert!(peer["flags"].as_array().unwrap().contains(&"UP".into()), "{peer}");
    assert_eq!(peer["linkinfo"]["info_kind"], "veth");
    let inside_link = find(&sb.ip_in(env, "link show"), "veth21").clone();
    assert_eq!(inside_link["link_index"], peer["ifindex"], "veth21's peer is veth21-br");
    assert_eq!(peer["link_index"], inside_link["ifindex"]);
    assert!(peer["link_netnsid"].is_number(), "the peer lives in another namespace: {peer}");
    assert_eq!(sb.links(), ["lo", "veth21-br"]);

    // --json reports the same.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["name"], "veth21");
    assert_eq!(v["ifindex"], inside_link["ifindex"]);
    assert_eq!(v["peer"]["name"], "veth21-br");
    assert_eq!(v["peer"]["ifindex"], peer["ifindex"]);
    assert_eq!(v["addresses"], serde_json::json!(["10.53.57.21/24", "fd00::5357:5f15/112"]));
    let netns = std::fs::read_link(format!("/proc/{env}/ns/net")).unwrap();
    assert_eq!(format!("net:[{}]", v["netns"]), netns.to_string_lossy());
}

#[test]
fn start_in_ns_form_peer_goes_to_the_parent() {
    // As start_in_ns.sh runs it: inside the testenv, the peer to the parent's namespace by PID.
    let mut sb = sandbox!("start_in_ns_form_peer_goes_to_the_parent");
    let parent = sb.anchor();
    let env = sb.spawn_netns();
    let vp = nstools_tests::bin("veth-pair");
    sb.must(&format!(
        "nsenter -t {env} --net {} veth21 --peer-netns {parent} --addr 10.53.57.21/24 --addr fd00:0000:0000:0000:0000:0000:5357:5f15/112",
        vp.display()
    ));
    assert_eq!(sb.links_in(env), ["lo", "veth21"]);
    assert_eq!(sb.links(), ["lo", "veth21-br"]);
    let a = addrs(find(&sb.ip_in(env, "addr show"), "veth21"));
    assert_eq!(a, ["10.53.57.21/24", "fd00::5357:5f15/112 nodad"]);
}

#[test]
fn traffic_flows_across_the_bridge_ipv4_and_ipv6() {
    let mut sb = sandbox!("traffic_flows_across_the_bridge_ipv4_and_ipv6");
    sb.run("br-attach", &["--create", "--addr", "10.53.57.11/24", "--addr", "fd00::5357:5f0b/112"]).ok();
    let a = sb.spawn_netns();
    let b = sb.spawn_netns();
    for (pid, n) in [(a, 21), (b, 22)] {
        let (v4, v6) = (format!("10.53.57.{n}/24"), format!("fd00::5357:5f{n:02x}/112"));
        sb.run("veth-pair", &[&format!("veth{n}"), "--netns", &pid.to_string(), "--addr", &v4, "--addr", &v6]).ok();
        sb.run("br-attach", &[&format!("veth{n}-br")]).ok();
    }
    let bridge = find(&sb.ip("link show"), "selftest0")["ifindex"].clone();
    for port in ["veth21-br", "veth22-br"] {
        assert_eq!(find(&sb.ip("link show"), port)["master"], "selftest0");
        let _ = &bridge;
    }
    // testenv to testenv, and testenv to the bridge, both families.
    for target in ["10.53.57.22", "fd00::5357:5f16", "10.53.57.11", "fd00::5357:5f0b"] {
        sb.must(&format!("nsenter -t {a} --net ping -c 1 -W 5 {target}"));
    }
    sb.must(&format!("nsenter -t {b} --net ping -c 1 -W 5 10.53.57.21"));
    sb.must("ping -c 1 -W 5 10.53.57.22");
}

#[test]
fn options_mtu_mac_peer_addr_no_up_and_dad() {
    let mut sb = sandbox!("options_mtu_mac_peer_addr_no_up_and_dad");
    let env = sb.spawn_netns();
    sb.run(
        "veth-pair",
        &[
            "v0",
            "--netns",
            &env.to_string(),
            "--peer-name",
            "v1",
            "--mtu",
            "1400",
            "--mac",
            "02:00:00:00:00:15",
            "--peer-mac",
            "02:00:00:00:00:16",
            "--peer-addr",
            "192.0.2.2/24",
            "--addr",
            "192.0.2.1/24",
            "--no-up",
        ],
    )
    .ok();
    let end = find(&sb.ip_in(env, "addr show"), "v0").clone();
    let peer = find(&sb.ip("addr show"), "v1").clone();
    assert_eq!(end["mtu"], 1400);
    assert_eq!(peer["mtu"], 1400);
    assert_eq!(end["address"], "02:00:00:00:00:15");
    assert_eq!(peer["address"], "02:00:00:00:00:16");
    assert_eq!(addrs(&peer), ["192.0.2.2/24"]);
    assert!(!end["flags"].as_array().unwrap().contains(&"UP".into()), "--no-up: {end}");
    assert!(!peer["flags"].as_array().unwrap().contains(&"UP".into()), "--no-up: {peer}");

    // --dad keeps duplicate address detection: no nodad flag.
    sb.run("veth-pair", &["v2", "--addr", "fd00::2/64", "--dad"]).ok();
    assert_eq!(
        addrs(find(&sb.ip("addr show"), "v2")).iter().filter(|a| a.starts_with("fd00::2")).collect::<Vec<_>>(),
        ["fd00::2/64"]
    );
}

#[test]
fn bad_names_and_addresses_are_refused_before_anything_is_touched() {
    let sb = sandbox!("bad_names_and_addresses_are_refused_before_anything_is_touched");
    let before = sb.links();
    let cases: &[(&[&str], &str)] = &[
        (&["abcdefghijklmnop"], "16 bytes long; the kernel's limit is 15"),
        (&[""], "must not be empty"),
        (&["a/b"], "must not contain '/'"),
        (&["a b"], "space"),
        (&["a:b"], "must not contain ':'"),
        (&["."], "reserved"),
        (&["vé"], "non-ASCII"),
        (&["abcdefghijklm"], "--peer-name"),
        (&["v0", "--peer-name", "x/y"], "must not contain '/'"),
        (&["v0", "--addr", "10.0.0/24"], "is not an IPv4 or IPv6 address"),
        (&["v0", "--addr", "10.0.0.1/33"], "/33 is out of range for IPv4"),
        (&["v0", "--addr", "fd00::1/129"], "/129 is out of range for IPv6"),
        (&["v0", "--addr", "10.0.0.0/24"], "network address"),
        (&["v0", "--peer-addr", "::ffff:10.0.0.1/120"], "IPv4-mapped"),
        (&["v0", "--mac", "01:00:00:00:00:00"], "multicast"),
        (&["v0", "--mtu", "10"], "--mtu"),
        (&["v0", "--netns", "0"], "not a valid PID"),
        (&["v0", "--netns", "1:x"], "INODE"),
        (&["v0", "--bogus"], "unexpected argument '--bogus'"),
        (&[], "required"),
        (&["v0", "--peer-name", "v0"], "same name"),
    ];
    for (args, needle) in cases {
        sb.run("veth-pair", args).fails(2, needle);
    }
    assert_eq!(sb.links(), before, "nothing created");
}

#[test]
fn existing_name_is_eexist_and_the_existing_link_is_untouched() {
    let sb = sandbox!("existing_name_is_eexist_and_the_existing_link_is_untouched");
    sb.must("ip link add veth21 type bridge && ip addr add 192.0.2.9/24 dev veth21");
    let before = find(&sb.ip("addr show"), "veth21").clone();
    sb.run("veth-pair", &["veth21", "--addr", "10.53.57.21/24"])
        .fails(1, "veth-pair: cannot create veth21: File exists (EEXIST)");
    // The peer name taken:
    sb.run("veth-pair", &["v5", "--peer-name", "veth21"]).fails(1, "its peer veth21 already exists (EEXIST)");
    let after = find(&sb.ip("addr show"), "veth21").clone();
    assert_eq!(before, after, "the existing veth21 is untouched");
    assert_eq!(sb.links(), ["lo", "veth21"]);
}

#[test]
fn bad_targets_are_refused() {
    let mut sb = sandbox!("bad_targets_are_refused");
    let env = sb.spawn_netns();
    let inode = std::fs::read_link(format!("/proc/{env}/ns/net"))
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("net:[")
        .trim_end_matches(']')
        .to_owned();
    let before = sb.links();
    sb.run("veth-pair", &["v0", "--netns", "2147483646"]).fails(1, "no process with PID 2147483646");
    sb.run("veth-pair", &["v0", "--netns", &format!("{env}:{}", inode.parse::<u64>().unwrap() + 1)])
        .fails(1, "is no longer in network namespace");
    sb.run("veth-pair", &["v0", "--peer-netns", "/proc/self/status"]).fails(1, "is not a namespace file");
    sb.run("veth-pair", &["v0", "--netns", "/etc"]).fails(1, "is not a namespace file");
    sb.run("veth-pair", &["v0", "--netns", "/proc/self/ns/uts"]).fails(1, "not a network namespace");
    sb.run("veth-pair", &["v0", "--netns", "no-such-netns"]).fails(1, "no network namespace named 'no-such-netns'");
    // The right PID:INODE works.
    sb.run("veth-pair", &["v0", "--netns", &format!("{env}:{inode}")]).ok();
    assert_eq!(sb.links_in(env), ["lo", "v0"]);
    assert_eq!(before.len() + 1, sb.links().len());
}

#[test]
fn failure_after_creation_removes_the_pair() {
    let mut sb = sandbox!("failure_after_creation_removes_the_pair");
    let env = sb.spawn_netns();
    // The kernel refuses the second copy of an address: the pair must go again.
    let r =
        sb.run("veth-pair", &["veth21", "--netns", &env.to_string(), "--addr", "10.0.0.1/24", "--addr", "10.0.0.1/24"]);
    r.fails(1, "cannot add address 10.0.0.1/24 to veth21");
    assert!(r.stderr.contains("(EEXIST)"), "{}", r.stderr);
    assert_eq!(sb.links_in(env), ["lo"], "no veth left in the testenv");
    assert_eq!(sb.links(), ["lo"], "no veth left here");
    // A refused peer address, likewise.
    sb.run(
        "veth-pair",
        &["veth21", "--netns", &env.to_string(), "--peer-addr", "10.0.0.2/24", "--peer-addr", "10.0.0.2/24"],
    )
    .fails(1, "cannot add address 10.0.0.2/24 to veth21-br");
    assert_eq!(sb.links_in(env), ["lo"]);
    assert_eq!(sb.links(), ["lo"]);
    // IPv6 disabled in the testenv: the kernel's own words reach the user.
    sb.must(&format!("nsenter -t {env} --net sh -c 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'"));
    let r = sb.run("veth-pair", &["veth21", "--netns", &env.to_string(), "--addr", "fd00::1/64"]);
    r.fails(1, "cannot add address fd00::1/64 to veth21");
    assert_eq!(sb.links_in(env), ["lo"]);
}

#[test]
fn then_becomes_the_command_once_the_pair_is_made() {
    let mut sb = sandbox!("then_becomes_the_command_once_the_pair_is_made");
    let env = sb.spawn_netns();
    let env_s = env.to_string();
    // CMD sees the pair made (address, up), runs as veth-pair's own process (exec: its parent
    // is the shell that started veth-pair, which waits for it by its PID) with termination
    // signals no longer blocked, no descriptor of its own left open, and its status is the one seen.
    let script = format!(
        "veth-pair veth21 --netns {env} --addr 10.53.57.21/24 -- sh -c '\
             nsenter -t {env} --net ip -br addr show veth21; \
             echo \"ppid $PPID\"; grep SigBlk /proc/$$/status; \
             echo \"sockets $(ls -l /proc/$$/fd | grep -c -e socket: -e signalfd)\"; exit 7' & \
         echo \"shell $$\"; wait $!; echo \"status $?\""
    );
    let out = sb.sh(&script).unwrap();
    assert!(out.contains("veth21@") && out.contains("UP") && out.contains("10.53.57.21/24"), "{out}");
    let shell = out.lines().find_map(|l| l.strip_prefix("shell ")).unwrap();
    assert!(out.contains(&format!("ppid {shell}")), "CMD is veth-pair's process, a child of the shell: {out}");
    assert!(out.contains("SigBlk:\t0000000000000000"), "no signal blocked in CMD: {out}");
    assert!(out.contains("sockets 0"), "no netlink socket or signalfd of veth-pair left open in CMD: {out}");
    assert!(out.contains("status 7"), "CMD's status is veth-pair's: {out}");
    assert_eq!(sb.links(), ["lo", "veth21-br"]);

    // CMD cannot be run: the pair goes again, 127 (not found) or 126 (not executable).
    sb.run("veth-pair", &["veth22", "--netns", &env_s, "--", "no-such-command-here"])
        .fails(127, "no-such-command-here");
    sb.run("veth-pair", &["veth22", "--netns", &env_s, "--", "/dev/null"]).fails(126, "/dev/null");
    assert_eq!(sb.links_in(env), ["lo", "veth21"]);
    assert_eq!(sb.links(), ["lo", "veth21-br"]);
    // Nothing to become with --delete or --shape.
    sb.run("veth-pair", &["--delete", "veth21", "--netns", &env_s, "--", "true"]).fails(2, "--delete");
    assert_eq!(sb.links(), ["lo", "veth21-br"]);
}

/// The default route of `family` (`-4`, `-6`) in `pid`'s namespace: its gateway, if any.
fn default_gateway(sb: &nstools_tests::Sandbox, pid: u32, family: &str) -> Option<String> {
    let routes = sb.ip_in(pid, &format!("{family} route show default"));
    routes.as_array().unwrap().first().and_then(|r| r["gateway"].as_str()).map(str::to_owned)
}

#[test]
fn peer_default_route_via_name_ipv4_and_ipv6() {
    let mut sb = sandbox!("peer_default_route_via_name_ipv4_and_ipv6");
    let env = sb.spawn_netns();
    let e = env.to_string();
    // An address here outside the pair's subnets: reachable from the peer only by its default route.
    sb.must("ip addr add 192.0.2.1/32 dev lo && ip -6 addr add 2001:db8::1/128 dev lo");
    let json = sb
        .run(
            "veth-pair",
            &[
                "v0",
                "--peer-netns",
                &e,
                "--addr",
                "10.98.0.1/24",
                "--addr",
                "fd00:98::1/64",
                "--addr",
                "10.98.0.3/24",
                "--peer-addr",
                "10.98.0.2/24",
                "--peer-addr",
                "fd00:98::2/64",
                "--peer-default-route",
                "--json",
            ],
        )
        .ok()
        .to_owned();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["peer"]["gateways"], serde_json::json!(["10.98.0.1", "fd00:98::1"]), "the first of each family");
    assert_eq!(v["gateways"], serde_json::json!([]));
    assert_eq!(default_gateway(&sb, env, "-4").as_deref(), Some("10.98.0.1"));
    assert_eq!(default_gateway(&sb, env, "-6").as_deref(), Some("fd00:98::1"));
    for target in ["192.0.2.1", "2001:db8::1"] {
        sb.must(&format!("nsenter -t {env} --net ping -c 1 -W 5 {target}"));
    }
    // No default route here (NAME's side): only the peer's namespace gets one.
    assert_eq!(sb.ip("route show default"), serde_json::json!([]));
}

#[test]
fn a_refused_default_route_leaves_nothing() {
    let mut sb = sandbox!("a_refused_default_route_leaves_nothing");
    let env = sb.spawn_netns();
    // The peer's namespace has an IPv6 default route already: IPv4's is added, IPv6's refused,
    // and both the IPv4 route and the pair go again.
    sb.must(&format!(
        "nsenter -t {env} --net sh -c 'ip link add d0 type veth peer name d1 && ip link set d0 up && ip link set d1 up && \
         ip -6 addr add fd00:97::2/64 dev d0 nodad && ip -6 route add default via fd00:97::1'"
    ));
    let r = sb.run(
        "veth-pair",
        &[
            "v0",
            "--peer-netns",
            &env.to_string(),
            "--addr",
            "10.98.0.1/24",
            "--addr",
            "fd00:98::1/64",
            "--peer-addr",
            "10.98.0.2/24",
            "--peer-addr",
            "fd00:98::2/64",
            "--peer-default-route",
        ],
    );
    r.fails(
        1,
        "veth-pair: cannot add a default route via fd00:98::1 in the peer's namespace: it has a default route already (EEXIST)",
    );
    assert_eq!(default_gateway(&sb, env, "-4"), None, "the IPv4 route is removed again");
    assert_eq!(default_gateway(&sb, env, "-6").as_deref(), Some("fd00:97::1"), "the existing one is untouched");
    assert_eq!(sb.links(), ["lo"]);
    assert_eq!(sb.links_in(env), ["d0", "d1", "lo"]);

    // Refused before anything is touched: no address to route through, both ends here.
    sb.run("veth-pair", &["v0", "--peer-netns", &env.to_string(), "--peer-default-route"]).fails(
        2,
        "veth-pair: --peer-default-route needs an address on NAME to route through; give NAME one with --addr",
    );
    sb.run("veth-pair", &["v0", "--addr", "10.98.0.1/24", "--peer-default-route"])
        .fails(2, "veth-pair: --peer-default-route needs the peer in another network namespace");
    sb.run("veth-pair", &["--delete", "v0", "--peer-default-route"]).fails(2, "cannot be used with");
    assert_eq!(sb.links(), ["lo"]);
}

#[test]
fn delete_removes_the_peer_default_route_through_a_bridge() {
    let mut sb = sandbox!("delete_removes_the_peer_default_route_through_a_bridge");
    let env = sb.spawn_netns();
    let e = env.to_string();
    // As `testenv join-host`: the peer goes onto a bridge that has an address in NAME's subnet,
    // so the default route runs through the bridge, not through the pair.
    sb.must(&format!(
        "nsenter -t {env} --net sh -c 'ip link add br0 type bridge && ip link set br0 up && \
         ip addr add 10.98.0.254/24 dev br0 && ip -6 addr add fd00:98::fe/64 dev br0 nodad'"
    ));
    let join = |sb: &nstools_tests::Sandbox| {
        let args =
            ["v0", "--peer-netns", &e, "--addr", "10.98.0.1/24", "--addr", "fd00:98::1/64", "--peer-default-route"];
        sb.run("veth-pair", &args).ok();
        sb.must(&format!("nsenter -t {env} --net ip link set v0-br master br0"));
    };
    join(&sb);
    assert_eq!(default_gateway(&sb, env, "-4").as_deref(), Some("10.98.0.1"));
    assert_eq!(default_gateway(&sb, env, "-6").as_deref(), Some("fd00:98::1"));
    sb.run("veth-pair", &["--delete", "v0"]).ok();
    assert_eq!(default_gateway(&sb, env, "-4"), None, "the IPv4 default route via v0 is left");
    assert_eq!(default_gateway(&sb, env, "-6"), None, "the IPv6 default route via v0 is left");
    // So joining again works (it was refused: the namespace had a default route already).
    join(&sb);
    sb.run("veth-pair", &["--delete", "v0"]).ok();
    assert_eq!(default_gateway(&sb, env, "-4"), None);
    assert_eq!(sb.links_in(env), ["br0", "lo"]);
    // A default route there via another gateway is not the pair's: it stays.
    sb.must(&format!("nsenter -t {env} --net ip route add default via 10.98.0.9"));
    sb.run("veth-pair", &["v0", "--peer-netns", &e, "--addr", "10.98.0.1/24"]).ok();
    sb.run("veth-pair", &["--delete", "v0"]).ok();
    assert_eq!(default_gateway(&sb, env, "-4").as_deref(), Some("10.98.0.9"));
}
