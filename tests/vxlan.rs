//! VXLAN tunnels between hosts (issue 21): `br-attach --vxlan`, `testenv join-remote`, with two
//! simulated hosts, each a network namespace with its own testenvs and `selftest0`, joined only
//! by an underlay veth with documentation addresses (198.51.100.0/24). The two-host scenarios
//! are `tests/vxlan-two-hosts.sh`, run as root and rootless (the whole scenario inside one
//! `unshare --user --map-root-user --net`); this file checks what they print, the way a user
//! would: pings, a TCP transfer, captures, `testenv ls`, and that nothing is left.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::process::Stdio;

use nstools_tests::{Run, Sandbox, plain_user, sandbox, skip, workspace};

/// Run the scenario PHASE (as `user` inside a user namespace, or as the caller); its output.
fn scenario(sb: &mut Sandbox, phase: &str, user: Option<&str>) -> String {
    for tool in ["tshark", "python3", "bridge"] {
        if sb.sh(&format!("command -v {tool}")).is_err() {
            skip(sb.name(), &format!("{tool} is not installed"));
            return String::new();
        }
    }
    let work = sb.workdir("vxlan");
    let script = workspace().join("tests/vxlan-two-hosts.sh");
    let scripts = workspace().join("scripts");
    let line = format!("sh {} {phase} {} {}", script.display(), work.display(), scripts.display());
    let out = match user {
        None => Run::of(sb.command("sh").arg("-c").arg(&line).stdin(Stdio::null()).output().unwrap(), line),
        Some(user) => sb.sh_as(user, &format!("unshare --user --map-root-user --net {line}")),
    };
    out.ok().to_owned()
}

/// The text after `key` on the line that starts with it.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no line starting with {key:?} in:\n{out}"))
        .trim()
}

fn two_hosts(sb: &mut Sandbox, user: Option<&str>) {
    let out = scenario(sb, "main", user);
    if out.is_empty() {
        return;
    }
    // The tunnel: its socket in the host's namespace, the device next to the bridge.
    assert_eq!(
        field(&out, "JOIN a:"),
        "vx5357 vni 5357 local 198.51.100.1 remote 198.51.100.2 dstport 4789 mtu 1500 master selftest0"
    );
    assert!(out.contains("JOIN a:   testenv join-remote 198.51.100.1 --vni 5357"), "{out}");
    assert!(
        out.contains("JOIN a:   ip link add vx5357 mtu 1500 type vxlan id 5357 remote 198.51.100.1 dstport 4789"),
        "{out}"
    );
    let details = field(&out, "DETAILS a:");
    assert!(details.contains("link-netnsid"), "the UDP socket stays in the underlay namespace: {details}");
    assert!(details.contains("vxlan id 5357") && details.contains("dstport 4789"), "{details}");
    assert!(details.contains("master selftest0") && details.contains("mtu 1500"), "{details}");
    assert!(field(&out, "FDB a:").contains("00:00:00:00:00:00 dst 198.51.100.2"), "{out}");
    // Both ways, both families; a 1400-byte don't-fragment ping; what does not fit in one
    // underlay packet is answered (DF) or fragmented (no DF).
    for line in ["a->b ipv4", "b->a ipv4", "a->b ipv6", "b->a ipv6", "a->b 1400 DF", "a->b 3000 fragmented"] {
        assert!(out.contains(&format!("PING {line} ok")), "PING {line}: {out}");
    }
    assert_eq!(field(&out, "PING a->b 1472 DF:"), "mtu = 1450");
    let transfer: Vec<&str> = field(&out, "TRANSFER").split_whitespace().collect();
    assert_eq!(transfer[0], "10000000", "10 MB crossed: {out}");
    // Each bridge sees the testenvs' packets; the underlay sees them inside VXLAN.
    assert_eq!(field(&out, "CAPTURE bridge-a:"), "3 requests, 3 replies, 0 vxlan");
    assert_eq!(field(&out, "CAPTURE bridge-b:"), "3 requests, 3 replies, 0 vxlan");
    let underlay = field(&out, "CAPTURE underlay-a:");
    let vxlan: u32 = underlay.trim_start_matches("3 requests, 3 replies, ").trim_end_matches(" vxlan").parse().unwrap();
    assert!(vxlan >= 6, "each ping crossed the underlay inside VXLAN (ARP may too): {underlay}");
    // testenv ls (ns-ls --topology), its JSON and its graph show the tunnel and what it learned.
    let ls: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("LS a: ")).collect();
    let tunnel = ls.iter().find(|l| l.contains("── vx5357")).unwrap_or_else(|| panic!("{ls:?}"));
    assert!(tunnel.contains("── vx5357 ⇄ VXLAN 5357 to 198.51.100.2 (UDP 4789, "), "{tunnel}");
    assert!(tunnel.ends_with("remote MACs learned)") && !tunnel.contains("no remote"), "{tunnel}");
    let json: serde_json::Value = serde_json::from_str(field(&out, "JSON a:")).unwrap();
    let port = json["bridges"][0]["ports"].as_array().unwrap().iter().find(|p| p["name"] == "vx5357").unwrap();
    let vxlan = &port["vxlan"];
    assert_eq!(
        (&vxlan["vni"], &vxlan["remotes"], &vxlan["port"]),
        (&5357.into(), &serde_json::json!(["198.51.100.2"]), &4789.into())
    );
    let learned = vxlan["learned"].as_array().unwrap();
    assert!(!learned.is_empty() && learned.iter().all(|e| e["dst"] == "198.51.100.2"), "{vxlan}");
    let dot: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("DOT a: ")).collect();
    assert!(
        dot.iter().any(|l| l.ends_with("-- \"?/host 198.51.100.2\" [penwidth=2, label=\"VXLAN 5357, UDP 4789\"];")),
        "{dot:?}"
    );
    // Nothing is left: the tunnel went with --delete on a, with the selftest namespace on b.
    assert_eq!(field(&out, "DELETE a:"), "vx5357: removed");
    assert_eq!(field(&out, "LEFT host-a"), "lo ua");
    assert_eq!(field(&out, "LEFT host-b"), "lo ub");
    assert_eq!(field(&out, "LEFT hub-a"), "lo selftest0 veth21-br");
    assert_eq!(field(&out, "LEFT hub-b"), "none");
    // Ending a side (testenv down) leaves nothing there either.
    assert_eq!(field(&out, "ENDED host-a"), "lo ua");
    assert_eq!(field(&out, "ENDED hub-a"), "none");
    assert_eq!(field(&out, "ENDED hub-b"), "none");
}

#[test]
fn two_hosts_as_root() {
    let mut sb = sandbox!("two_hosts_as_root");
    two_hosts(&mut sb, None);
}

#[test]
fn two_hosts_rootless() {
    let mut sb = sandbox!("two_hosts_rootless");
    let Some(user) = plain_user(sb.name()) else { return };
    two_hosts(&mut sb, Some(user));
}

/// VXLAN has no handshake: a wrong VNI or port is silence, seen as no remote MAC learned.
fn wrong(phase: &str) {
    let mut sb = sandbox!(&format!("wrong_{phase}"));
    let out = scenario(&mut sb, phase, None);
    if out.is_empty() {
        return;
    }
    assert_eq!(field(&out, "PING a->b"), "failed");
    assert_eq!(field(&out, "LEARNED a:"), "0");
    let ls =
        out.lines().find(|l| l.starts_with("LS a: ") && l.contains("── vx5357")).unwrap_or_else(|| panic!("{out}"));
    assert!(ls.ends_with("(UDP 4789, no remote MAC learned)"), "{ls}");
    let json: serde_json::Value = serde_json::from_str(field(&out, "JSON a:")).unwrap();
    let port = json["bridges"][0]["ports"].as_array().unwrap().iter().find(|p| p["name"] == "vx5357").unwrap();
    assert_eq!(port["vxlan"]["learned"], serde_json::json!([]));
}

#[test]
fn wrong_vni_is_silence_with_no_mac_learned() {
    wrong("wrong-vni");
}

#[test]
fn wrong_port_is_silence_with_no_mac_learned() {
    wrong("wrong-port");
}

#[test]
fn errors_are_one_line_and_leave_nothing() {
    let mut sb = sandbox!("errors_are_one_line_and_leave_nothing");
    let other = sb.spawn_netns().to_string();
    sb.must("ip link add u0 type veth peer name u1 && ip addr add 198.51.100.1/24 dev u0 && ip link set u0 up");
    let vx = |extra: &[&str]| {
        let mut args = vec!["--create", "--vxlan", "42"];
        args.extend_from_slice(extra);
        sb.run("br-attach", &args)
    };
    vx(&["--remote", "203.0.113.9"])
        .fails(1, "cannot reach 203.0.113.9 from the underlay namespace: Network is unreachable (ENETUNREACH)");
    vx(&["--remote", "198.51.100.2", "--local", "2001:db8::1"]).fails(2, "are not of one family");
    vx(&["--remote", "239.1.2.3"]).fails(2, "239.1.2.3 is not a host's unicast address");
    vx(&[]).fails(2, "no --remote");
    sb.run("br-attach", &["--vxlan", "16777216", "--remote", "198.51.100.2"]).fails(2, "16777216");
    sb.run("br-attach", &["--vxlan", "42", "--delete"]).fails(1, "cannot delete tunnel vx42: there is no vx42");
    // Nothing of the failed runs is left (the bridge they created included).
    assert_eq!(sb.links(), ["lo", "u0", "u1"]);

    vx(&["--remote", "198.51.100.2", "--remote", "198.51.100.3"]).ok();
    // Again: idempotent; with another port: a clear error, and the tunnel is as it was.
    vx(&["--remote", "198.51.100.2"]).ok();
    vx(&["--remote", "198.51.100.4", "--dstport", "8472"])
        .fails(1, "vx42 exists and is not a tunnel with VNI 42 on port 8472");
    let fdb = sb.must("bridge fdb show dev vx42");
    assert_eq!(fdb.matches("00:00:00:00:00:00 dst").count(), 2, "{fdb}");
    // The same VNI and port twice in one underlay (the device elsewhere): the kernel's words.
    sb.run("br-attach", &["--netns", &other, "--create", "--vxlan", "42", "--remote", "198.51.100.5"])
        .fails(1, "cannot create tunnel vx42: A VXLAN device with the specified VNI already exists (EEXIST)");
    assert_eq!(sb.links_in(other.parse().unwrap()), ["lo"], "the bridge this run created went too");
    sb.run("br-attach", &["--vxlan", "42", "--delete"]).ok();
    assert_eq!(sb.links(), ["lo", "selftest0", "u0", "u1"]);
}

#[test]
fn ending_the_underlay_ends_the_tunnel() {
    let mut sb = sandbox!("ending_the_underlay_ends_the_tunnel");
    let underlay = sb.spawn_netns();
    let hub = sb.spawn_netns();
    sb.must(&format!(
        "nsenter -t {underlay} -n sh -c 'ip addr add 198.51.100.1/24 dev lo && br-attach --netns {hub} --create --vxlan 42 --remote 198.51.100.2'"
    ));
    let details = sb.must(&format!("nsenter -t {hub} -n ip -d -o link show vx42"));
    assert!(details.contains("link-netnsid 0") && details.contains("master selftest0"), "{details}");
    // The underlay namespace ends with its last process: the kernel removes the tunnel.
    nstools_tests::signal(underlay, nix::sys::signal::Signal::SIGKILL);
    let gone = nstools_tests::wait_until(std::time::Duration::from_secs(10), || {
        sb.sh(&format!("nsenter -t {hub} -n ip link show vx42")).is_err()
    });
    assert!(gone, "vx42 outlived its underlay namespace");
    assert_eq!(sb.links_in(hub), ["lo", "selftest0"]);
}

#[test]
fn a_plain_user_is_told_the_one_root_command() {
    let mut sb = sandbox!("a_plain_user_is_told_the_one_root_command");
    let Some(user) = plain_user(sb.name()) else { return };
    sb.set_env("NSTOOLS_SELFTEST_LABEL", &format!("{}-hub", sb.tag));
    let tenv = workspace().join("scripts/testenv").display().to_string();
    sb.sh_as(user, &format!("{tenv} up a:21")).ok();
    let hub = sb
        .sh_as(user, &format!("ns-ls --owned --label {}-hub -n -o PID --no-interfaces", sb.tag))
        .ok()
        .trim()
        .to_owned();
    let run = sb.sh_as(user, &format!("{tenv} join-remote 198.51.100.2"));
    run.fails(1, &format!("as root, once: br-attach --netns {hub} --vxlan 5357 --remote 198.51.100.2"));
    // That command, as root, gives the plain user's selftest namespace the tunnel.
    sb.must("ip link add u0 type veth peer name u1 && ip addr add 198.51.100.1/24 dev u0 && ip link set u0 up");
    sb.run("br-attach", &["--netns", &hub, "--vxlan", "5357", "--remote", "198.51.100.2"]).ok();
    let ls = sb.sh_as(user, &format!("{tenv} ls")).ok().to_owned();
    assert!(ls.contains("vx5357"), "{ls}");
    // The user removes it again without root, and the tunnel goes with the testenvs anyway.
    sb.sh_as(user, &format!("{tenv} join-remote --delete")).ok();
    sb.sh_as(user, &format!("{tenv} down")).ok();
    assert_eq!(sb.links(), ["lo", "u0", "u1"]);
}
