//! Impairments through the tools (issue 14): `veth-pair NAME ... --delay/--jitter/--loss/--rate`
//! in the same run as the pair, `veth-pair --shape NAME [...|--clear]`, `testenv shape`, and
//! `ns-ls` showing them; each checked with `tc -j` and by what the traffic does:
//!
//! - the pair and its impairment are made together, or neither is (a failure after the
//!   impairment, such as an unreachable gateway, removes everything; a kernel without netem
//!   gets one line naming `sch_netem` and nothing is left);
//! - `--shape` replaces, `--clear` removes, errors are one line with the right exit code;
//! - rootless, inside `unshare --user --map-root-user` as a plain user;
//! - measured, not assumed: `testenv shape NAME --rate 8mbit` caps a 1 MB TCP transfer between
//!   two testenvs to within 15% of 8 Mbit/s, as root and rootless; with netem, `--delay 100ms`
//!   puts the RTT between 100 and 130 ms, `--loss 100%` drops everything, `--clear` restores
//!   the link (these three say SKIPPED, naming the missing qdisc, on a kernel without netem).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_debug_implementations)]

use std::process::Command;

use nstools_tests::{Run, Sandbox, bin_dir, plain_user, sandbox, skip, skip_kernel_lacks, workspace};
use serde_json::Value;

/// What veth-pair says (after `veth-pair: cannot set ... on NAME: `) when the kernel has no netem.
const NO_NETEM: &str = "the kernel has no netem qdisc (sch_netem, CONFIG_NET_SCH_NETEM) (ENOENT)";

/// The root qdisc of `dev` in `pid`'s namespace, as `tc -j` reports it.
fn tc_root(sb: &Sandbox, pid: Option<u32>, dev: &str) -> Value {
    let enter = pid.map(|p| format!("nsenter -t {p} --net ")).unwrap_or_default();
    let v: Value = serde_json::from_str(&sb.must(&format!("{enter}tc -j qdisc show dev {dev}"))).unwrap();
    v.as_array().unwrap().iter().find(|q| q["root"] == true).cloned().unwrap_or_else(|| panic!("no root qdisc: {v}"))
}

/// The interface `name` in `ns-ls --json`'s namespace of `pid`.
fn listed(sb: &Sandbox, pid: u32, name: &str) -> Value {
    let v: Value = serde_json::from_str(sb.run("ns-ls", &["-p", &pid.to_string(), "--json"]).ok()).unwrap();
    let ifs = v["namespaces"][0]["interfaces"].as_array().unwrap();
    ifs.iter().find(|i| i["name"] == name).cloned().unwrap_or_else(|| panic!("{name} not listed: {v}"))
}

#[test]
fn veth_pair_sets_the_impairment_in_the_same_run_and_ns_ls_shows_it() {
    let mut sb = sandbox!("veth_pair_sets_the_impairment_in_the_same_run_and_ns_ls_shows_it");
    let env = sb.spawn_netns();
    let anchor = sb.anchor();
    sb.run("br-attach", &["--create", "--addr", "10.53.57.11/24"]).ok();
    let e = env.to_string();
    let out = sb.run("veth-pair", &["veth21", "--netns", &e, "--addr", "10.53.57.21/24", "--rate", "8mbit", "--json"]);
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    // --json: the end's new field, null on the peer.
    assert_eq!(
        v["impairment"],
        serde_json::json!({"qdisc": "tbf", "delay_us": null, "jitter_us": null, "loss_percent": null, "rate_bits_per_sec": 8_000_000})
    );
    assert_eq!(v["peer"]["impairment"], Value::Null);
    assert_eq!(v["gateways"], serde_json::json!([]));
    // In the kernel: a tbf on veth21 (what the testenv sends), nothing on the peer.
    let root = tc_root(&sb, Some(env), "veth21");
    assert_eq!((root["kind"].as_str(), root["options"]["rate"].as_u64()), (Some("tbf"), Some(1_000_000)), "{root}");
    assert_eq!(tc_root(&sb, None, "veth21-br")["kind"], "noqueue");
    sb.run("br-attach", &["veth21-br"]).ok();

    // ns-ls: the JSON field (null where none), the table line, the topology line.
    assert_eq!(listed(&sb, env, "veth21")["impairment"]["rate_bits_per_sec"], 8_000_000);
    assert_eq!(listed(&sb, env, "lo")["impairment"], Value::Null);
    let table = sb.run("ns-ls", &["-p", &e]).ok().to_owned();
    let line = table.lines().find(|l| l.trim_start().starts_with("veth21 ")).unwrap();
    assert!(line.ends_with(&format!("⇄ veth21-br  pid {anchor} [rate 8Mbit]")), "{table}");
    assert!(table.lines().any(|l| l.trim_start().starts_with("lo ") && !l.contains('[')), "{table}");
    let topology = sb.run("ns-ls", &["--topology", "-p", &anchor.to_string()]).ok().to_owned();
    assert_eq!(
        topology.trim_end(),
        format!("selftest0 10.53.57.11/24 ── veth21-br ⇄ veth21  pid {env}  10.53.57.21/24  [veth21: rate 8Mbit]")
    );

    // The port shaped too: both ends, port first; the JSON of the bridge's port says so.
    sb.run("veth-pair", &["--shape", "veth21-br", "--rate", "100mbit"]).ok();
    let topology = sb.run("ns-ls", &["--topology", "-p", &anchor.to_string()]).ok().to_owned();
    assert!(topology.trim_end().ends_with("  [veth21-br: rate 100Mbit] [veth21: rate 8Mbit]"), "{topology}");
    let v: Value = serde_json::from_str(sb.run("ns-ls", &["-p", &anchor.to_string(), "--json"]).ok()).unwrap();
    let port = &v["bridges"][0]["ports"][0];
    assert_eq!(port["impairment"]["rate_bits_per_sec"], 100_000_000, "{port}");
    assert_eq!(port["peer_impairment"]["rate_bits_per_sec"], 8_000_000, "{port}");
}

#[test]
fn netem_on_a_kernel_without_it_is_one_line_and_leaves_nothing() {
    let mut sb = sandbox!("netem_on_a_kernel_without_it_is_one_line_and_leaves_nothing");
    let env = sb.spawn_netns();
    let r = sb.run(
        "veth-pair",
        &["veth21", "--netns", &env.to_string(), "--delay", "100ms", "--jitter", "10ms", "--loss", "1%"],
    );
    if r.code == 0 {
        // A kernel with netem: it is there, with every value.
        let root = tc_root(&sb, Some(env), "veth21");
        assert_eq!(root["kind"], "netem", "{root}");
        assert_eq!(listed(&sb, env, "veth21")["impairment"]["delay_us"], 100_000);
        return;
    }
    r.fails(1, &format!("veth-pair: cannot set delay 100ms jitter 10ms loss 1% on veth21: {NO_NETEM}; load it as root: 'modprobe sch_netem'"));
    assert_eq!(sb.links(), ["lo"], "the peer is gone");
    assert_eq!(sb.links_in(env), ["lo"], "the end is gone");
}

#[test]
fn a_failure_after_the_impairment_removes_the_pair() {
    // The peer has no address in NAME's subnet: its default route via NAME is refused after the
    // rate was set; everything goes.
    let mut sb = sandbox!("a_failure_after_the_impairment_removes_the_pair");
    let env = sb.spawn_netns();
    let r = sb.run(
        "veth-pair",
        &["v0", "--peer-netns", &env.to_string(), "--addr", "10.98.0.1/24", "--rate", "8mbit", "--peer-default-route"],
    );
    r.fails(1, "veth-pair: cannot add a default route via 10.98.0.1 in the peer's namespace: ");
    assert!(r.stderr.contains("give the peer an address in its subnet (--peer-addr)"), "{}", r.stderr);
    assert_eq!(sb.links(), ["lo"]);
    assert_eq!(sb.links_in(env), ["lo"]);
}

#[test]
fn shape_replaces_and_clear_removes_an_existing_interfaces_impairments() {
    let mut sb = sandbox!("shape_replaces_and_clear_removes_an_existing_interfaces_impairments");
    let env = sb.spawn_netns();
    let e = env.to_string();
    sb.run("veth-pair", &["veth21", "--netns", &e]).ok();
    sb.run("veth-pair", &["--shape", "veth21", "--netns", &e, "--rate", "8mbit"]).ok();
    let root = tc_root(&sb, Some(env), "veth21");
    assert_eq!((root["kind"].as_str(), root["options"]["rate"].as_u64()), (Some("tbf"), Some(1_000_000)));
    // Replaced in place: exactly what is given.
    sb.run("veth-pair", &["--shape", "veth21", "--netns", &e, "--rate", "16mbit"]).ok();
    let again = tc_root(&sb, Some(env), "veth21");
    assert_eq!((again["options"]["rate"].as_u64(), &again["handle"]), (Some(2_000_000), &root["handle"]));
    // Any kind of interface (a bridge here), in the caller's namespace without --netns.
    sb.run("br-attach", &["--create"]).ok();
    sb.run("veth-pair", &["--shape", "selftest0", "--rate", "1gbit"]).ok();
    assert_eq!(tc_root(&sb, None, "selftest0")["kind"], "tbf");

    // Netem where there is none: one line, and the tbf stays as it was.
    let r = sb.run("veth-pair", &["--shape", "veth21", "--netns", &e, "--delay", "10ms"]);
    if r.code != 0 {
        r.fails(1, &format!("veth-pair: cannot set delay 10ms on veth21: {NO_NETEM}"));
        assert_eq!(tc_root(&sb, Some(env), "veth21"), again);
    } else {
        // A kernel with netem: the netem replaced the tbf; the rate again for what follows.
        assert_eq!(tc_root(&sb, Some(env), "veth21")["kind"], "netem");
        sb.run("veth-pair", &["--shape", "veth21", "--netns", &e, "--rate", "16mbit"]).ok();
    }

    // Errors: one line, exit 2 for arguments (nothing touched), 1 for the kernel's refusals.
    for (args, code, needle) in [
        (&["--shape", "veth21"][..], 2, "veth-pair: --shape needs --delay, --jitter, --loss or --rate, or --clear"),
        (&["--shape", "veth21", "--rate", "8"], 2, "veth-pair: invalid --rate '8': the unit is missing"),
        (&["--shape", "veth21", "--delay", "5ms", "--jitter", "10ms"], 2, "--jitter 10ms is larger than --delay 5ms"),
        (&["--shape", "veth21", "--loss", "200%"], 2, "invalid --loss '200%'"),
        (&["--shape", "veth21", "--clear", "--rate", "8mbit"], 2, "'--clear' cannot be used with '--rate <RATE>'"),
        (&["--shape", "veth21", "--addr", "10.0.0.1/24", "--rate", "8mbit"], 2, "'--shape' cannot be used with"),
        (&["--delete", "veth21", "--rate", "8mbit"], 2, "'--delete' cannot be used with '--rate <RATE>'"),
        (&["veth21", "--clear"], 2, "required arguments were not provided: --shape"),
        (
            &["--shape", "nosuch0", "--rate", "8mbit"],
            1,
            "veth-pair: cannot set rate 8Mbit on nosuch0: no such interface (ENODEV)",
        ),
        (
            &["--shape", "nosuch0", "--clear"],
            1,
            "veth-pair: cannot clear the impairments of nosuch0: no such interface (ENODEV)",
        ),
    ] {
        sb.run("veth-pair", args).fails(code, needle);
    }
    assert_eq!(tc_root(&sb, Some(env), "veth21")["options"]["rate"], 2_000_000, "nothing touched");

    // --clear: the kernel's default again; clearing again is no error.
    sb.run("veth-pair", &["--shape", "veth21", "--netns", &e, "--clear"]).ok();
    assert_eq!(tc_root(&sb, Some(env), "veth21")["kind"], "noqueue");
    sb.run("veth-pair", &["--shape", "veth21", "--netns", &e, "--clear"]).ok();
    assert_eq!(listed(&sb, env, "veth21")["impairment"], Value::Null);
}

/// Rootless: the plain user, root in its own user namespace, owns its network namespaces' qdiscs.
const ROOTLESS: &str = r#"
set -eu
E=$(ns-unshare --name shaped)
veth-pair veth21 --netns "$E" --rate 8mbit --json
echo "TC $(ns-exec -t "$E" tc -j qdisc show dev veth21)"
veth-pair --shape veth21 --netns "$E" --rate 16mbit
echo "LS $(ns-ls -p "$E" | grep veth21)"
veth-pair --shape veth21 --netns "$E" --clear
echo "TC $(ns-exec -t "$E" tc -j qdisc show dev veth21)"
ns-unshare --stop "$E"
"#;

#[test]
fn rootless_inside_a_user_namespace() {
    let mut sb = sandbox!("rootless_inside_a_user_namespace");
    let Some(user) = plain_user(sb.name()) else { return };
    let work = sb.workdir("rootless-shape");
    std::fs::write(work.join("rootless.sh"), ROOTLESS).unwrap();
    let script = format!(
        "export PATH={}:$PATH; unshare --user --map-root-user --net sh {}/rootless.sh",
        bin_dir().display(),
        work.display()
    );
    let r = sb.sh_as(user, &script);
    let out = r.ok().to_owned();
    let lines: Vec<&str> = out.lines().collect();
    let created: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(created["impairment"]["rate_bits_per_sec"], 8_000_000, "{out}");
    let tc: Vec<Value> =
        lines.iter().filter_map(|l| l.strip_prefix("TC ")).map(|j| serde_json::from_str(j).unwrap()).collect();
    assert_eq!(
        (tc[0][0]["kind"].as_str(), tc[0][0]["options"]["rate"].as_u64()),
        (Some("tbf"), Some(1_000_000)),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.starts_with("LS ") && l.ends_with("[rate 16Mbit]")), "{out}");
    assert_eq!(tc[1][0]["kind"], "noqueue", "{out}");
}

// ---------------------------------------------------------------------------------------------
// Measured: the rate tbf gives a TCP transfer between two testenvs, through `testenv shape`.

/// Two testenvs, `src` shaped to 8mbit with `testenv shape`, 1 MB from `src` to `dst`.
const TRANSFER: &str = r#"
set -eu
T=$TESTENV
W=$WORK
$T up src:21 dst:22 > /dev/null
$T shape src --rate 8mbit
$T ls
$T exec dst -- python3 -c "$SERVER" > "$W/server.out" 2>&1 &
i=0
until grep -q ready "$W/server.out" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 400 ] || { echo "the server did not start: $(cat "$W/server.out")" >&2; exit 1; }
    sleep 0.025
done
$T exec src -- python3 -c "$CLIENT" 1000000
wait
$T shape src --clear
$T down > /dev/null
"#;

/// Run [`TRANSFER`] (as `user` inside `unshare --user --map-root-user`, or as root): the
/// payload rate in Mbit/s.
fn transfer(sb: &mut Sandbox, user: Option<&str>) -> Option<f64> {
    if !Command::new("python3").arg("-V").output().is_ok_and(|o| o.status.success()) {
        skip(sb.name(), "python3 is not installed");
        return None;
    }
    let work = sb.workdir("transfer");
    std::fs::write(work.join("transfer.sh"), TRANSFER).unwrap();
    let hub = format!("{}-hub", sb.tag);
    for (k, v) in [
        ("TESTENV", workspace().join("scripts/testenv").display().to_string()),
        ("WORK", work.display().to_string()),
        ("SERVER", nstools_tests::tcp_sink_py("10.53.57.22")),
        ("CLIENT", nstools_tests::tcp_send_py("10.53.57.22")),
        ("NSTOOLS_SELFTEST_LABEL", hub),
    ] {
        sb.set_env(k, &v);
    }
    let script = work.join("transfer.sh").display().to_string();
    let r = match user {
        Some(u) => sb.sh_as(u, &format!("unshare --user --map-root-user --net sh {script}")),
        None => Run::of(sb.command("sh").arg(&script).output().unwrap(), "testenv transfer".into()),
    };
    let out = r.ok().to_owned();
    assert!(out.contains("src: veth21: --rate 8mbit"), "{out}");
    assert!(out.contains("[veth21: rate 8Mbit]"), "testenv ls shows it: {out}");
    let line = out.lines().find_map(|l| l.strip_prefix("TRANSFER ")).unwrap_or_else(|| panic!("{out}"));
    let (n, secs): (u64, f64) = {
        let mut w = line.split_whitespace();
        (w.next().unwrap().parse().unwrap(), w.next().unwrap().parse().unwrap())
    };
    assert_eq!(n, 1_000_000);
    Some(n as f64 * 8.0 / secs / 1e6)
}

fn assert_rate(who: &str, mbit: f64) {
    println!("testenv shape --rate 8mbit ({who}): 1 MB over TCP between two testenvs at {mbit:.2} Mbit/s of payload");
    assert!((6.8..=9.2).contains(&mbit), "{who}: {mbit:.2} Mbit/s is not within 15% of 8");
}

#[test]
fn rate_8mbit_caps_a_tcp_transfer_between_two_testenvs_as_root() {
    let mut sb = sandbox!("rate_8mbit_caps_a_tcp_transfer_between_two_testenvs_as_root");
    if let Some(mbit) = transfer(&mut sb, None) {
        assert_rate("root", mbit);
    }
}

#[test]
fn rate_8mbit_caps_a_tcp_transfer_between_two_testenvs_rootless() {
    let mut sb = sandbox!("rate_8mbit_caps_a_tcp_transfer_between_two_testenvs_rootless");
    let Some(user) = plain_user(sb.name()) else { return };
    if let Some(mbit) = transfer(&mut sb, Some(user)) {
        assert_rate("rootless", mbit);
    }
}

// ---------------------------------------------------------------------------------------------
// Netem through the CLI, where the kernel has it.

/// A pair imp0 (here, 10.99.0.1) / imp1 (a new namespace, 10.99.0.2) made by veth-pair with
/// `impair` on imp0; `None` (after a skip that names the qdisc, allowed under CI) if the kernel
/// has no netem - once veth-pair said so in one line and left nothing.
fn netem_pair(sb: &mut Sandbox, impair: &[&str]) -> Option<u32> {
    let env = sb.spawn_netns();
    let mut args = vec!["imp0", "--peer-name", "imp1", "--peer-netns"];
    let e = env.to_string();
    args.extend([e.as_str(), "--addr", "10.99.0.1/24", "--peer-addr", "10.99.0.2/24"]);
    args.extend(impair);
    let r = sb.run("veth-pair", &args);
    if r.code != 0 {
        r.fails(1, NO_NETEM);
        assert_eq!((sb.links(), sb.links_in(env)), (vec!["lo".to_owned()], vec!["lo".to_owned()]), "nothing left");
        skip_kernel_lacks(sb.name(), "netem qdisc (sch_netem)");
        return None;
    }
    Some(env)
}

/// `ping` from here to 10.99.0.2: (received, min RTT ms, max RTT ms).
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
fn cli_delay_100ms_shows_in_the_rtt() {
    let mut sb = sandbox!("cli_delay_100ms_shows_in_the_rtt");
    let Some(_) = netem_pair(&mut sb, &["--delay", "100ms"]) else { return };
    // The first ping also waits for the neighbour's address, whose request netem delays too.
    ping(&sb, 1);
    let (received, min, max) = ping(&sb, 5);
    assert_eq!(received, 5);
    assert!((100.0..=130.0).contains(&min) && (100.0..=130.0).contains(&max), "RTT {min}-{max} ms");
}

#[test]
fn cli_loss_100_percent_drops_everything() {
    let mut sb = sandbox!("cli_loss_100_percent_drops_everything");
    let Some(_) = netem_pair(&mut sb, &["--loss", "100%"]) else { return };
    assert_eq!(ping(&sb, 5).0, 0);
}

#[test]
fn cli_clear_restores_the_link() {
    let mut sb = sandbox!("cli_clear_restores_the_link");
    let Some(env) = netem_pair(&mut sb, &["--delay", "100ms", "--loss", "100%"]) else { return };
    assert_eq!(ping(&sb, 3).0, 0);
    sb.run("veth-pair", &["--shape", "imp0", "--clear"]).ok();
    let (received, _, max) = ping(&sb, 5);
    assert_eq!(received, 5);
    assert!(max < 20.0, "RTT up to {max} ms after --clear");
    assert_eq!(tc_root(&sb, None, "imp0")["kind"], "noqueue");
    let _ = env;
}

#[test]
fn cli_shape_replaces_a_netem_rate_it_is_not_given() {
    // The kernel keeps a netem's rate when a change does not send one; --shape sets exactly
    // what it is given, so the rate goes.
    let mut sb = sandbox!("cli_shape_replaces_a_netem_rate_it_is_not_given");
    let Some(_) = netem_pair(&mut sb, &["--delay", "50ms", "--rate", "1mbit"]) else { return };
    assert!(!tc_root(&sb, None, "imp0")["options"]["rate"].is_null(), "a rate at first");
    sb.run("veth-pair", &["--shape", "imp0", "--delay", "10ms", "--loss", "1%"]).ok();
    let root = tc_root(&sb, None, "imp0");
    assert_eq!(root["kind"], "netem", "{root}");
    assert!(root["options"]["rate"].is_null(), "the old rate stayed: {root}");
}
