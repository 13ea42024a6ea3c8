//! Impairments (delay, jitter, loss, rate) through the library, in fresh network namespaces:
//!
//! - the requests nstools sends are the ones iproute2's `tc` sends for the same values, byte
//!   for byte (both captured with strace; sequence number and port id masked), for netem,
//!   tbf and the delete - this works on a kernel without netem, which still receives (and
//!   refuses) the request;
//! - tbf is set on a real veth, changed, read back (library and `tc -j`) and cleared;
//! - a kernel without netem gets one line naming `sch_netem`, and nothing changes;
//! - the same rootless, inside `unshare --user --map-root-user --net`;
//! - with netem in the kernel: the delay shows in the RTT, 100% loss drops everything, clearing
//!   restores the link (skipped, by the kernel's own answer, where netem is missing);
//! - the rate tbf delivers to a TCP transfer.
//!
//! Rootless and "what nstools really sends" run this test binary again as a helper
//! ([`helper`]), in the namespace or under the strace that the test prepares.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_debug_implementations)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nstools::Netlink;
use nstools::impair::{Impairment, QdiscKind};
use nstools::netlink::link::LinkId;
use nstools::netlink::qdisc::{Psched, delete_request, replace_request, tbf_burst, tbf_latency};
use nstools_tests::{Sandbox, plain_user, sandbox, skip, skip_kernel_lacks, wait_until};
use serde_json::Value;

/// The environment variable that turns this binary into the helper.
const HELPER_ENV: &str = "NSTOOLS_IMPAIR_HELPER";
/// RTM_NEWQDISC, RTM_DELQDISC.
const RTM_NEWQDISC: u8 = 36;
const RTM_DELQDISC: u8 = 37;
/// NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE (`tc qdisc add`), and with
/// NLM_F_REPLACE instead of NLM_F_EXCL (`tc qdisc replace`).
const ADD_FLAGS: u16 = 0x0605;
const REPLACE_FLAGS: u16 = 0x0505;
/// What the library says when the kernel has no netem.
const NO_NETEM: &str = "the kernel has no netem qdisc (sch_netem, CONFIG_NET_SCH_NETEM) (ENOENT); load it as root: \
                        'modprobe sch_netem' (a user namespace cannot load modules: rootless use needs it loaded \
                        already)";

/// Netem value sets: delay, jitter, loss, rate, as given to both `tc` and nstools.
type Values = (Option<&'static str>, Option<&'static str>, Option<&'static str>, Option<&'static str>);
const NETEM_CASES: &[Values] = &[
    (Some("100ms"), None, None, None),
    (Some("100ms"), Some("10ms"), None, None),
    (None, None, Some("1%"), None),
    (Some("100ms"), Some("10ms"), Some("1%"), Some("10mbit")),
    (Some("1.5s"), Some("250us"), Some("0.5%"), Some("8.8kbit")),
    (Some("10ms"), None, None, Some("40gbit")),
    (None, None, Some("100%"), Some("1gibit")),
    (Some("1us"), Some("1us"), Some("33.3333%"), Some("125kbps")),
    (Some("60s"), Some("59.999999s"), Some("0.0001%"), Some("100gbit")),
    (Some("7msec"), Some("3USEC"), Some("2"), Some("3MBps")),
];
/// tbf rates.
const TBF_RATES: &[&str] =
    &["8mbit", "1mbit", "256kbit", "64kbit", "8kbit", "1.5mbit", "12345kbit", "3mibit", "1gbit", "40gbit", "100gbit"];

fn flags(values: &Values) -> Impairment {
    Impairment::from_flags(values.0, values.1, values.2, values.3).unwrap()
}

/// `tc` arguments for netem values: `delay D [J] loss L rate R`.
fn netem_args(values: &Values) -> Vec<&'static str> {
    let mut args = Vec::new();
    if let Some(d) = values.0 {
        args.extend(["delay", d]);
        args.extend(values.1);
    }
    if let Some(l) = values.2 {
        args.extend(["loss", l]);
    }
    if let Some(r) = values.3 {
        args.extend(["rate", r]);
    }
    args
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sequence number and port id zeroed.
fn masked(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[8..16].fill(0);
    m
}

/// The netlink requests in an `strace -e write=all` log, one per sendmsg (its buffers joined)
/// or sendto (tc uses the one, neli the other).
fn parse_strace(log: &str) -> Vec<Vec<u8>> {
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    for line in log.lines() {
        if line.contains("sendmsg(") || line.contains("sendto(") {
            msgs.push(Vec::new());
            continue;
        }
        // " | 00000  24 00 00 00 26 00 01 03  e8 14 0f 6b 00 00 00 00  $...&......k.... |"
        let Some(dump) = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start().strip_prefix("| ") else {
            continue;
        };
        let Some(cur) = msgs.last_mut() else { continue };
        let hex_part = dump.get(7..55).unwrap_or_else(|| dump.get(7..).unwrap_or(""));
        cur.extend(hex_part.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()));
    }
    msgs
}

/// Tell a test to skip loudly if strace is missing.
fn have_strace(test: &str) -> bool {
    let ok = Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        skip(test, "strace is not installed (apt-get install strace)");
    }
    ok
}

static TRACES: AtomicUsize = AtomicUsize::new(0);

/// Run `cmd` (with `env`) in the sandbox under strace; the qdisc requests it sent.
fn qdisc_requests_of(sb: &Sandbox, cmd: &[&str], env: &[(&str, &str)]) -> Vec<Vec<u8>> {
    let n = TRACES.fetch_add(1, Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!("{}-strace{n}", sb.tag));
    let out = sb
        .command("strace")
        .args(["-f", "-xx", "-e", "trace=sendmsg,sendto", "-e", "write=all", "-o"])
        .arg(&log)
        .args(cmd)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("no strace log for {cmd:?} ({e}): {out:?}"));
    let _ = std::fs::remove_file(&log);
    parse_strace(&text).into_iter().filter(|m| m.len() >= 36 && [RTM_NEWQDISC, RTM_DELQDISC].contains(&m[4])).collect()
}

/// The one qdisc request of `tc ARGS`.
fn tc_request(sb: &Sandbox, args: &[&str]) -> Vec<u8> {
    let mut cmd = vec!["tc"];
    cmd.extend(args);
    let mut msgs = qdisc_requests_of(sb, &cmd, &[]);
    assert_eq!(msgs.len(), 1, "{cmd:?} sent {} qdisc requests", msgs.len());
    msgs.pop().unwrap()
}

/// The message without its TCA_OPTIONS attribute.
fn without_options(msg: &[u8]) -> Vec<u8> {
    let mut out = msg[..36].to_vec();
    let mut at = 36;
    while at + 4 <= msg.len() {
        let len = usize::from(u16::from_ne_bytes([msg[at], msg[at + 1]]));
        let ty = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]);
        let end = (at + len.div_ceil(4) * 4).min(msg.len());
        if ty != 2 {
            out.extend_from_slice(&msg[at..end]);
        }
        at = end.max(at + 4);
    }
    let n = out.len() as u32;
    out[..4].copy_from_slice(&n.to_ne_bytes());
    out
}

/// A veth pair imp0/imp1 in the sandbox, both up; imp0's index and MTU.
fn pair(sb: &Sandbox) -> (u32, u32) {
    sb.must("ip link add imp0 type veth peer name imp1 && ip link set imp0 up && ip link set imp1 up");
    link(sb, "imp0")
}

fn link(_sb: &Sandbox, name: &str) -> (u32, u32) {
    let l = Netlink::open().unwrap().get_link(LinkId::Name(name)).unwrap().unwrap();
    (l.index, l.mtu.unwrap())
}

/// `tc -j qdisc show dev DEV`: the root qdisc.
fn tc_root(sb: &Sandbox, dev: &str) -> Value {
    let v: Value = serde_json::from_str(&sb.must(&format!("tc -j qdisc show dev {dev}"))).unwrap();
    v.as_array().unwrap().iter().find(|q| q["root"] == true).cloned().unwrap_or_else(|| panic!("no root qdisc: {v}"))
}

fn is_no_netem(e: &nstools::Error) -> bool {
    e.errno() == Some(Errno::ENOENT) && e.to_string().contains("the kernel has no netem qdisc")
}

#[test]
fn netem_requests_are_tcs_byte_for_byte() {
    let sb = sandbox!("netem_requests_are_tcs_byte_for_byte");
    if !have_strace(sb.name()) {
        return;
    }
    let (index, mtu) = pair(&sb);
    for values in NETEM_CASES {
        let imp = flags(values);
        assert_eq!(imp.qdisc(), Some(QdiscKind::Netem));
        let ours = replace_request(index, &imp, mtu, &Psched::read()).unwrap();
        let mut args = vec!["qdisc", "replace", "dev", "imp0", "root", "netem"];
        args.extend(netem_args(values));
        let tc = tc_request(&sb, &args);
        assert_eq!(hex(&masked(&ours)), hex(&masked(&tc)), "tc {}", args.join(" "));
        // `tc qdisc add` sends the same but for NLM_F_EXCL in place of NLM_F_REPLACE.
        args[1] = "add";
        let mut add = tc_request(&sb, &args);
        assert_eq!(u16::from_ne_bytes([add[6], add[7]]), ADD_FLAGS);
        add[6..8].copy_from_slice(&REPLACE_FLAGS.to_ne_bytes());
        assert_eq!(hex(&masked(&ours)), hex(&masked(&add)), "tc {}", args.join(" "));
    }
}

#[test]
fn tbf_requests_are_tcs_byte_for_byte() {
    let sb = sandbox!("tbf_requests_are_tcs_byte_for_byte");
    if !have_strace(sb.name()) {
        return;
    }
    let (index, _) = pair(&sb);
    for mtu in ["1500", "9000", "68"] {
        sb.must(&format!("ip link set imp0 mtu {mtu}"));
        let (_, mtu) = link(&sb, "imp0");
        for rate in TBF_RATES {
            let imp = Impairment::from_flags(None, None, None, Some(rate)).unwrap();
            assert_eq!(imp.qdisc(), Some(QdiscKind::Tbf));
            let ours = replace_request(index, &imp, mtu, &Psched::read()).unwrap();
            let burst = tbf_burst(imp.rate.unwrap(), mtu).to_string();
            // In whole milliseconds, which is what tbf_latency returns ("18.028s" would go
            // through floating point in tc and lose a microsecond).
            let latency = format!("{}ms", tbf_latency(imp.rate.unwrap(), mtu).as_millis());
            let args =
                ["qdisc", "replace", "dev", "imp0", "root", "tbf", "rate", rate, "burst", &burst, "latency", &latency];
            let tc = tc_request(&sb, &args);
            assert_eq!(hex(&masked(&ours)), hex(&masked(&tc)), "tc {}", args.join(" "));
        }
    }
}

#[test]
fn delete_requests_are_tcs_byte_for_byte() {
    let sb = sandbox!("delete_requests_are_tcs_byte_for_byte");
    if !have_strace(sb.name()) {
        return;
    }
    let (index, _) = pair(&sb);
    // tc parses a kind's options even on delete, so it sends TCA_OPTIONS too (which the kernel
    // ignores); nstools sends the kind alone. Everything else is the same.
    let netem = tc_request(&sb, &["qdisc", "del", "dev", "imp0", "root", "netem"]);
    assert_eq!(netem[4], RTM_DELQDISC);
    assert_eq!(hex(&masked(&delete_request(index, QdiscKind::Netem))), hex(&masked(&without_options(&netem))));
    let tbf = tc_request(
        &sb,
        &["qdisc", "del", "dev", "imp0", "root", "tbf", "rate", "8mbit", "burst", "10000", "latency", "50ms"],
    );
    assert_eq!(hex(&masked(&delete_request(index, QdiscKind::Tbf))), hex(&masked(&without_options(&tbf))));
    // And without the kind, it is `tc qdisc del dev DEV root`.
    let bare = tc_request(&sb, &["qdisc", "del", "dev", "imp0", "root"]);
    assert_eq!(hex(&masked(&without_options(&bare))), hex(&masked(&bare)));
    assert_eq!(hex(&masked(&bare)[4..36]), hex(&masked(&delete_request(index, QdiscKind::Tbf))[4..36]));
}

/// Run this binary's [`helper`] with `command` (plus `env`) and return its answer lines.
fn helper_argv() -> Vec<String> {
    let exe = std::env::current_exe().unwrap().display().to_string();
    ["--ignored", "--exact", "helper", "--nocapture", "--test-threads=1", "-q"].into_iter().fold(
        vec![exe],
        |mut v, a| {
            v.push(a.into());
            v
        },
    )
}

fn helper_answers(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.find("HELPER ").map(|at| l[at + 7..].to_owned())).collect()
}

#[test]
fn the_library_sends_exactly_these_requests() {
    // What replace_request/delete_request return is what set/clear_impairment send: the
    // library's own requests, captured with strace from the helper.
    let sb = sandbox!("the_library_sends_exactly_these_requests");
    if !have_strace(sb.name()) {
        return;
    }
    let (index, mtu) = pair(&sb);
    let argv = helper_argv();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let clock = Psched::read();
    let tbf = Impairment::from_flags(None, None, None, Some("8mbit")).unwrap();
    let sent = qdisc_requests_of(&sb, &argv, &[(HELPER_ENV, "set imp0 - - - 8mbit")]);
    assert_eq!(sent.len(), 1);
    assert_eq!(hex(&masked(&sent[0])), hex(&masked(&replace_request(index, &tbf, mtu, &clock).unwrap())));
    let netem = flags(&NETEM_CASES[3]);
    let sent = qdisc_requests_of(&sb, &argv, &[(HELPER_ENV, "set imp0 100ms 10ms 1% 10mbit")]);
    assert_eq!(sent.len(), 1);
    assert_eq!(hex(&masked(&sent[0])), hex(&masked(&replace_request(index, &netem, mtu, &clock).unwrap())));
    let root = Netlink::open().unwrap().get_impairment(LinkId::Index(index)).unwrap().unwrap().qdisc().unwrap();
    let sent = qdisc_requests_of(&sb, &argv, &[(HELPER_ENV, "clear imp0")]);
    assert_eq!(sent.len(), 1);
    assert_eq!(hex(&masked(&sent[0])), hex(&masked(&delete_request(index, root))));
    assert_eq!(tc_root(&sb, "imp0")["kind"], "noqueue");
}

#[test]
fn tbf_is_set_read_back_changed_and_cleared() {
    let sb = sandbox!("tbf_is_set_read_back_changed_and_cleared");
    let (index, _) = pair(&sb);
    let mut nl = Netlink::open().unwrap();
    let imp0 = LinkId::Name("imp0");
    let rate = |r| Impairment::from_flags(None, None, None, Some(r)).unwrap();
    assert_eq!(nl.get_impairment(imp0).unwrap(), None);
    assert_eq!(nl.dump_impairments().unwrap(), BTreeMap::new());

    nl.set_impairment(imp0, &rate("8mbit")).unwrap();
    assert_eq!(nl.dump_impairments().unwrap(), BTreeMap::from([(index, rate("8mbit"))]));
    assert_eq!(nl.get_impairment(LinkId::Index(index)).unwrap(), Some(rate("8mbit")));
    assert_eq!(nl.get_impairment(LinkId::Name("imp1")).unwrap(), None);
    assert_eq!(rate("8mbit").to_string(), "rate 8Mbit");
    let root = tc_root(&sb, "imp0");
    assert_eq!(root["kind"], "tbf", "{root}");
    assert_eq!(root["options"]["rate"], 1_000_000, "tc -j gives bytes per second: {root}");
    assert_eq!(root["options"]["burst"], 10_000, "{root}");
    assert_eq!(root["options"]["lat"], 50_000, "{root}");
    let handle = root["handle"].clone();

    // Changed in place (same qdisc), then read back.
    nl.set_impairment(imp0, &rate("16mbit")).unwrap();
    let root = tc_root(&sb, "imp0");
    assert_eq!((root["options"]["rate"].clone(), root["handle"].clone()), (2_000_000.into(), handle));
    assert_eq!(nl.dump_impairments().unwrap(), BTreeMap::from([(index, rate("16mbit"))]));
    // A rate above 2^32-1 bytes per second (TCA_TBF_RATE64) reads back too.
    nl.set_impairment(imp0, &rate("40gbit")).unwrap();
    assert_eq!(nl.get_impairment(imp0).unwrap(), Some(rate("40gbit")));
    assert_eq!(tc_root(&sb, "imp0")["options"]["rate"], 5_000_000_000u64);

    // Cleared: the default comes back; clearing again is no error.
    assert!(nl.clear_impairment(imp0).unwrap());
    assert_eq!(tc_root(&sb, "imp0")["kind"], "noqueue");
    assert!(!nl.clear_impairment(imp0).unwrap());
    // An empty impairment clears too.
    nl.set_impairment(imp0, &rate("8mbit")).unwrap();
    nl.set_impairment(imp0, &Impairment::default()).unwrap();
    assert_eq!(tc_root(&sb, "imp0")["kind"], "noqueue");

    // A root qdisc that is not ours is left alone by clear, and replaced by set.
    sb.must("tc qdisc replace dev imp0 root htb default 1");
    assert!(!nl.clear_impairment(imp0).unwrap());
    assert_eq!(tc_root(&sb, "imp0")["kind"], "htb");
    assert_eq!(nl.get_impairment(imp0).unwrap(), None);
    assert_eq!(nl.dump_impairments().unwrap(), BTreeMap::new());
    nl.set_impairment(imp0, &rate("8mbit")).unwrap();
    assert_eq!(tc_root(&sb, "imp0")["kind"], "tbf");

    // On a link that is down, too.
    sb.must("ip link set imp1 down");
    nl.set_impairment(LinkId::Name("imp1"), &rate("1mbit")).unwrap();
    assert_eq!(nl.get_impairment(LinkId::Name("imp1")).unwrap(), Some(rate("1mbit")));
    assert_eq!(nl.dump_impairments().unwrap().len(), 2);
}

#[test]
fn a_missing_interface_is_one_clear_line() {
    let _sb = sandbox!("a_missing_interface_is_one_clear_line");
    let mut nl = Netlink::open().unwrap();
    let imp = Impairment::from_flags(None, None, None, Some("8mbit")).unwrap();
    let e = nl.set_impairment(LinkId::Name("nosuch0"), &imp).unwrap_err();
    assert_eq!(e.to_string(), "cannot set rate 8Mbit on nosuch0: no such interface (ENODEV)");
    assert_eq!(e.exit_code(), 1);
    let e = nl.clear_impairment(LinkId::Name("nosuch0")).unwrap_err();
    assert_eq!(e.to_string(), "cannot clear the impairments of nosuch0: no such interface (ENODEV)");
    let e = nl.get_impairment(LinkId::Index(9999)).unwrap_err();
    assert_eq!(e.to_string(), "cannot read the impairments of interface #9999: no such interface (ENODEV)");
    // Bad values never reach the kernel: exit code 2, naming the flag.
    let e = Impairment::from_flags(Some("100"), None, None, None).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        "invalid --delay '100': the unit is missing: expected a number and a unit, s, ms or us, e.g. 100ms"
    );
}

#[test]
fn netem_on_a_kernel_without_it_names_sch_netem_and_changes_nothing() {
    let sb = sandbox!("netem_on_a_kernel_without_it_names_sch_netem_and_changes_nothing");
    let (index, _) = pair(&sb);
    let mut nl = Netlink::open().unwrap();
    let imp0 = LinkId::Name("imp0");
    let tbf = Impairment::from_flags(None, None, None, Some("8mbit")).unwrap();
    nl.set_impairment(imp0, &tbf).unwrap();
    let before = tc_root(&sb, "imp0");
    let netem = Impairment::from_flags(Some("100ms"), None, Some("1%"), None).unwrap();
    match nl.set_impairment(imp0, &netem) {
        Err(e) if is_no_netem(&e) => {
            assert_eq!(e.to_string(), format!("cannot set delay 100ms loss 1% on imp0: {NO_NETEM}"));
            assert_eq!(e.exit_code(), 1);
            // Nothing changed.
            assert_eq!(tc_root(&sb, "imp0"), before);
            assert_eq!(nl.dump_impairments().unwrap(), BTreeMap::from([(index, tbf)]));
            // And tc agrees that this kernel has no netem.
            let tc = sb.sh("tc qdisc replace dev imp1 root netem delay 10ms").unwrap_err();
            assert!(tc.contains("Specified qdisc kind is unknown"), "{tc}");
            println!("this kernel has no netem: {e}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(()) => {
            // A kernel with netem: it is there and reads back.
            assert_eq!(tc_root(&sb, "imp0")["kind"], "netem");
            assert_eq!(nl.get_impairment(imp0).unwrap(), Some(netem));
        }
    }
}

/// The helper script of the rootless test: runs inside `unshare --user --map-root-user --net`.
const ROOTLESS: &str = r#"
set -eu
h() { NSTOOLS_IMPAIR_HELPER="$*" "$@@" 2>&1 | grep 'HELPER ' || echo "HELPER missing"; }
ip link add imp0 type veth peer name imp1
ip link set imp0 up
ip link set imp1 up
echo "uid $(id -u) in $(readlink /proc/self/ns/user)"
h set imp0 - - - 8mbit
echo "TC $(tc -j qdisc show dev imp0)"
h dump
h set imp0 100ms 10ms 1% -
echo "TC $(tc -j qdisc show dev imp0)"
h clear imp0
echo "TC $(tc -j qdisc show dev imp0)"
"#;

#[test]
fn rootless_inside_a_user_namespace() {
    let mut sb = sandbox!("rootless_inside_a_user_namespace");
    let Some(user) = plain_user(sb.name()) else { return };
    let work = sb.workdir("rootless").display().to_string();
    let argv = helper_argv().join(" ");
    std::fs::write(format!("{work}/rootless.sh"), ROOTLESS.replace("\"$@@\"", &argv)).unwrap();
    let r = sb.sh_as(user, &format!("unshare --user --map-root-user --net sh {work}/rootless.sh"));
    let out = r.ok().to_owned();
    let lines: Vec<&str> = out.lines().collect();
    let tc: Vec<Value> =
        lines.iter().filter_map(|l| l.strip_prefix("TC ")).map(|j| serde_json::from_str(j).unwrap()).collect();
    let answers = helper_answers(&out);
    assert!(lines[0].starts_with("uid 0 in user:["), "{out}");
    assert_ne!(lines[0], format!("uid 0 in {}", std::fs::read_link("/proc/self/ns/user").unwrap().display()));
    assert_eq!(answers[0], "ok rate 8Mbit", "{out}");
    assert_eq!(tc[0][0]["kind"], "tbf", "{out}");
    assert_eq!(tc[0][0]["options"]["rate"], 1_000_000, "{out}");
    let dump: Value = serde_json::from_str(answers[1].strip_prefix("ok ").unwrap()).unwrap();
    let dumped: Vec<&Value> = dump.as_object().unwrap().values().collect();
    assert_eq!(
        dumped,
        [
            &serde_json::json!({"qdisc": "tbf", "delay_us": null, "jitter_us": null, "loss_percent": null, "rate_bits_per_sec": 8_000_000})
        ],
        "{out}"
    );
    if answers[2].starts_with("error") {
        assert_eq!(answers[2], format!("error 1 cannot set delay 100ms jitter 10ms loss 1% on imp0: {NO_NETEM}"));
        assert_eq!(tc[1], tc[0], "unchanged: {out}");
    } else {
        assert_eq!(answers[2], "ok delay 100ms jitter 10ms loss 1%", "{out}");
        assert_eq!(tc[1][0]["kind"], "netem", "{out}");
    }
    assert_eq!(answers[3], "ok true", "{out}");
    assert_eq!(tc[2][0]["kind"], "noqueue", "{out}");
}

/// Not a test: the other tests run this binary again with [`HELPER_ENV`] set, inside the
/// namespaces (or under the strace) they prepare. `set IF DELAY JITTER LOSS RATE` (`-` for
/// none), `clear IF`, `dump`; answers `HELPER ok ...` or `HELPER error CODE MESSAGE`.
#[test]
#[ignore = "not a test: the helper that other tests run in the namespaces they prepare"]
fn helper() {
    let Ok(command) = std::env::var(HELPER_ENV) else {
        println!("helper: nothing to do without {HELPER_ENV}");
        return;
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    let value = |i: usize| words.get(i).copied().filter(|w| *w != "-");
    let mut nl = Netlink::open().unwrap();
    let answer = match words[0] {
        "set" => Impairment::from_flags(value(2), value(3), value(4), value(5))
            .and_then(|imp| nl.set_impairment(LinkId::Name(words[1]), &imp).map(|()| imp.to_string())),
        "clear" => nl.clear_impairment(LinkId::Name(words[1])).map(|there| there.to_string()),
        "dump" => nl.dump_impairments().map(|all| serde_json::to_string(&all).unwrap()),
        other => panic!("helper: unknown command {other}"),
    };
    match answer {
        Ok(text) => println!("HELPER ok {text}"),
        Err(e) => println!("HELPER error {} {e}", e.exit_code()),
    }
}

/// A veth pair between the sandbox (imp0, 10.99.0.1) and a new namespace (imp1, 10.99.0.2).
fn two_namespaces(sb: &mut Sandbox) -> u32 {
    let env = sb.spawn_netns();
    sb.must(&format!(
        "ip link add imp0 type veth peer name imp1 netns {env} && ip addr add 10.99.0.1/24 dev imp0 && \
         ip link set imp0 up && nsenter -t {env} --net sh -c 'ip addr add 10.99.0.2/24 dev imp1 && ip link set imp1 up'"
    ));
    assert!(wait_until(Duration::from_secs(5), || sb.sh("ping -c 1 -W 1 10.99.0.2").is_ok()), "no link");
    env
}

/// Set `imp` (netem) on imp0; false (after a skip allowed under CI) if the kernel answered that
/// it has no netem.
fn netem_or_skip(test: &str, nl: &mut Netlink, imp: &Impairment) -> bool {
    match nl.set_impairment(LinkId::Name("imp0"), imp) {
        Ok(()) => true,
        Err(e) if is_no_netem(&e) => {
            skip_kernel_lacks(test, "netem qdisc (sch_netem)");
            false
        }
        Err(e) => panic!("{e}"),
    }
}

/// `ping` from the sandbox: (received, min RTT ms, max RTT ms).
fn ping(sb: &Sandbox, count: u32) -> (u32, f64, f64) {
    let out =
        sb.command("ping").args(["-c", &count.to_string(), "-i", "0.2", "-W", "2", "10.99.0.2"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let received = text
        .lines()
        .find_map(|l| l.split(", ").nth(1).and_then(|r| r.strip_suffix(" received")).map(|n| n.parse().unwrap()))
        .unwrap_or_else(|| panic!("{text}"));
    let rtt: Vec<f64> = text
        .lines()
        .find_map(|l| l.split(" = ").nth(1).filter(|_| l.starts_with("rtt")))
        .map(|v| v.trim_end_matches(" ms").split('/').map(|x| x.parse().unwrap()).collect())
        .unwrap_or_default();
    (received, rtt.first().copied().unwrap_or(f64::NAN), rtt.get(2).copied().unwrap_or(f64::NAN))
}

#[test]
fn netem_delay_100ms_shows_in_the_rtt() {
    let mut sb = sandbox!("netem_delay_100ms_shows_in_the_rtt");
    two_namespaces(&mut sb);
    let mut nl = Netlink::open().unwrap();
    let imp = Impairment::from_flags(Some("100ms"), None, None, None).unwrap();
    if !netem_or_skip(sb.name(), &mut nl, &imp) {
        return;
    }
    let (received, min, max) = ping(&sb, 5);
    assert_eq!(received, 5);
    assert!((100.0..=130.0).contains(&min) && (100.0..=130.0).contains(&max), "RTT {min}-{max} ms");
}

#[test]
fn netem_loss_100_percent_drops_everything() {
    let mut sb = sandbox!("netem_loss_100_percent_drops_everything");
    two_namespaces(&mut sb);
    let mut nl = Netlink::open().unwrap();
    let imp = Impairment::from_flags(None, None, Some("100%"), None).unwrap();
    if !netem_or_skip(sb.name(), &mut nl, &imp) {
        return;
    }
    assert_eq!(ping(&sb, 5).0, 0);
}

#[test]
fn clearing_netem_restores_the_link() {
    let mut sb = sandbox!("clearing_netem_restores_the_link");
    two_namespaces(&mut sb);
    let mut nl = Netlink::open().unwrap();
    let imp = Impairment::from_flags(Some("100ms"), None, Some("100%"), None).unwrap();
    if !netem_or_skip(sb.name(), &mut nl, &imp) {
        return;
    }
    assert_eq!(ping(&sb, 3).0, 0);
    assert!(nl.clear_impairment(LinkId::Name("imp0")).unwrap());
    let (received, _, max) = ping(&sb, 5);
    assert_eq!(received, 5);
    assert!(max < 20.0, "RTT up to {max} ms after clearing");
    assert_eq!(nl.get_impairment(LinkId::Name("imp0")).unwrap(), None);
}

/// Send `size` bytes over TCP from the sandbox to `env`: (bytes received, seconds).
fn tcp_transfer(sb: &Sandbox, env: u32, size: usize) -> (usize, f64) {
    let mut server = sb
        .command("nsenter")
        .args(["-t", &env.to_string(), "--net", "python3", "-c", &nstools_tests::tcp_sink_py("10.99.0.2")])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let out = sb
        .command("python3")
        .args(["-c", &nstools_tests::tcp_send_py("10.99.0.2"), &size.to_string()])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace().skip(1); // TRANSFER
    let n = words.next().and_then(|w| w.parse().ok());
    let t = words.next().and_then(|w| w.parse().ok());
    n.zip(t).unwrap_or_else(|| panic!("client: {text} {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn tbf_8mbit_delivers_8mbit_to_a_tcp_transfer() {
    let mut sb = sandbox!("tbf_8mbit_delivers_8mbit_to_a_tcp_transfer");
    if !Command::new("python3").arg("-V").output().is_ok_and(|o| o.status.success()) {
        skip(sb.name(), "python3 is not installed");
        return;
    }
    let env = two_namespaces(&mut sb);
    let mut nl = Netlink::open().unwrap();
    nl.set_impairment(LinkId::Name("imp0"), &Impairment::from_flags(None, None, None, Some("8mbit")).unwrap()).unwrap();
    let size = 1_000_000;
    let (n, secs) = tcp_transfer(&sb, env, size);
    assert_eq!(n, size);
    let mbit = n as f64 * 8.0 / secs / 1e6;
    println!("tbf 8mbit: 1 MB over TCP in {secs:.3} s = {mbit:.2} Mbit/s of payload");
    assert!((6.8..=9.2).contains(&mbit), "{mbit:.2} Mbit/s is not within 15% of 8");
}
