//! br-attach, run for real in fresh namespaces and checked with `ip -j`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use nstools_tests::{Run, addrs, find, sandbox};

fn flags(link: &serde_json::Value) -> Vec<String> {
    link["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect()
}

#[test]
fn create_is_idempotent_and_replaces_create_bridge_sh() {
    let sb = sandbox!("create_is_idempotent_and_replaces_create_bridge_sh");
    sb.must("ip link set lo down");
    for _ in 0..2 {
        sb.run("br-attach", &["--create", "--addr", "10.53.57.11/24", "--addr", "fd00::5357:5f0b/112"]).ok();
    }
    let all = sb.ip("-d addr show");
    let br = find(&all, "selftest0");
    assert_eq!(br["linkinfo"]["info_kind"], "bridge");
    assert!(flags(br).contains(&"UP".into()));
    let a = addrs(br);
    assert_eq!(
        a.iter().filter(|a| !a.starts_with("fe80")).collect::<Vec<_>>(),
        ["10.53.57.11/24", "fd00::5357:5f0b/112 nodad"]
    );
    assert!(flags(find(&all, "lo")).contains(&"UP".into()), "lo is brought up");
    assert_eq!(sb.links(), ["lo", "selftest0"]);
}

#[test]
fn attaches_existing_interfaces_and_already_attached_is_success() {
    let sb = sandbox!("attaches_existing_interfaces_and_already_attached_is_success");
    sb.run("br-attach", &["--create", "--bridge", "br9"]).ok();
    sb.must("ip link add p1 type veth peer name p1x && ip link add p2 type veth peer name p2x");
    sb.run("br-attach", &["-b", "br9", "p1", "p2"]).ok();
    sb.run("br-attach", &["-b", "br9", "p1"]).ok(); // again: success, no change
    let links = sb.ip("link show");
    for p in ["p1", "p2"] {
        assert_eq!(find(&links, p)["master"], "br9");
        assert!(flags(find(&links, p)).contains(&"UP".into()));
    }
}

#[test]
fn waits_by_notification_and_returns_promptly() {
    let sb = sandbox!("waits_by_notification_and_returns_promptly");
    sb.run("br-attach", &["--create"]).ok();
    let child = sb.tool("br-attach").args(["--timeout", "10", "veth21-br"]).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sb.must("ip link add veth21-br type veth peer name veth21");
    let created = Instant::now();
    let out = child.wait_with_output().unwrap();
    let returned = created.elapsed();
    Run::of(out, "br-attach --timeout 10 veth21-br".into()).ok();
    assert!(returned < Duration::from_millis(50), "br-attach returned {returned:?} after the interface appeared");
    let link = find(&sb.ip("link show"), "veth21-br").clone();
    assert_eq!(link["master"], "selftest0");
    assert!(flags(&link).contains(&"UP".into()));
}

#[test]
fn timeout_fails_after_the_timeout_with_exit_124_and_undoes() {
    let sb = sandbox!("timeout_fails_after_the_timeout_with_exit_124_and_undoes");
    sb.run("br-attach", &["--create"]).ok();
    sb.must("ip link add p1 type veth peer name p1x");
    let start = Instant::now();
    let r = sb.run("br-attach", &["--timeout", "1", "p1", "veth99-br"]);
    let took = start.elapsed();
    r.fails(124, "veth99-br did not appear within 1 s");
    assert!(took >= Duration::from_millis(950) && took < Duration::from_millis(1500), "took {took:?}");
    // Fully undone: p1, attached on the way, is detached again.
    assert!(find(&sb.ip("link show"), "p1").get("master").is_none());
    // --timeout 0 does not wait at all.
    let start = Instant::now();
    sb.run("br-attach", &["--timeout", "0", "veth99-br"]).fails(1, "veth99-br does not exist");
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn bridge_problems_have_clear_errors() {
    let sb = sandbox!("bridge_problems_have_clear_errors");
    sb.must("ip link add p1 type veth peer name p1x && ip link add other type bridge && ip link add q1 type veth peer name q1x");
    sb.run("br-attach", &["p1"])
        .fails(1, "bridge selftest0 does not exist: No such device (ENODEV); create it with 'br-attach --create");
    sb.run("br-attach", &["-b", "p1x", "q1"]).fails(1, "p1x is not a bridge: it is a veth device");
    sb.run("br-attach", &["--create", "-b", "p1x"]).fails(1, "p1x is not a bridge");
    sb.must("ip link set p1 master other");
    sb.run("br-attach", &["--create", "p1"])
        .fails(1, "cannot attach p1 to selftest0: it is already attached to other (EBUSY)");
    // The failed --create run removed the bridge it had made.
    assert_eq!(sb.links(), ["lo", "other", "p1", "p1x", "q1", "q1x"]);
    sb.run("br-attach", &[]).fails(2, "nothing to do");
    sb.run("br-attach", &["--addr", "10.0.0.1/24"]).fails(2, "--create");
    sb.run("br-attach", &["--timeout", "x", "p1"]).fails(2, "not a number of seconds");
    sb.run("br-attach", &["--timeout=-1", "p1"]).fails(2, "from 0 up");
    sb.run("br-attach", &["bad/name"]).fails(2, "must not contain '/'");
}

#[test]
fn failed_create_removes_the_bridge_it_made() {
    let sb = sandbox!("failed_create_removes_the_bridge_it_made");
    // IPv6 disabled: the kernel refuses the bridge's IPv6 address after the bridge exists.
    sb.must("echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6");
    sb.run("br-attach", &["--create", "--addr", "10.53.57.11/24", "--addr", "fd00::5357:5f0b/112"])
        .fails(1, "cannot add address fd00::5357:5f0b/112 to selftest0");
    assert_eq!(sb.links(), ["lo"], "the bridge made by the failed run is gone");
}

#[test]
fn sigterm_while_waiting_undoes_and_dies_of_the_signal() {
    let sb = sandbox!("sigterm_while_waiting_undoes_and_dies_of_the_signal");
    let child = sb
        .tool("br-attach")
        .args(["--create", "-b", "brx", "--timeout", "30", "nothere"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it made the bridge and is waiting.
    assert!(nstools_tests::wait_until(Duration::from_secs(5), || sb.links().contains(&"brx".to_owned())));
    std::thread::sleep(Duration::from_millis(50));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(15), "dies of SIGTERM: {:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted by SIGTERM"));
    assert_eq!(sb.links(), ["lo"], "the bridge it created is gone");
}
