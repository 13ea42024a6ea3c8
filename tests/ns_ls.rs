//! ns-ls: listing, JSON, topology, speed, rootless.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nstools_tests::{netns_of, sandbox, signal, wait_exit};

/// A bridge with two testenvs held by ns-unshare: (anchor pid, [holders]).
fn two_testenvs(sb: &mut nstools_tests::Sandbox) -> (u32, [u32; 2]) {
    let anchor = sb.anchor();
    sb.run("br-attach", &["--create", "--addr", "10.53.57.11/24", "--addr", "fd00::5357:5f0b/112"]).ok();
    let mut pids = [0; 2];
    for (i, (n, label)) in [(21, "ad_dc"), (22, "vampire_dc")].into_iter().enumerate() {
        pids[i] = sb.run("ns-unshare", &["--name", label]).ok().trim().parse().unwrap();
        let (v4, v6) = (format!("10.53.57.{n}/24"), format!("fd00::5357:5f{n:02x}/112"));
        sb.run("veth-pair", &[&format!("veth{n}"), "--netns", &pids[i].to_string(), "--addr", &v4, "--addr", &v6]).ok();
        sb.run("br-attach", &[&format!("veth{n}-br")]).ok();
    }
    (anchor, pids)
}

fn stop(pids: &[u32]) {
    for &p in pids {
        signal(p, Signal::SIGTERM);
        assert!(wait_exit(p, Duration::from_secs(2)));
    }
}

#[test]
fn json_lists_holders_with_labels_interfaces_and_veth_peers() {
    let mut sb = sandbox!("json_lists_holders_with_labels_interfaces_and_veth_peers");
    let (anchor, pids) = two_testenvs(&mut sb);
    let v: serde_json::Value = serde_json::from_str(sb.run("ns-ls", &["--json"]).ok()).unwrap();
    let here = netns_of(anchor);
    for (pid, label, n) in [(pids[0], "ad_dc", 21), (pids[1], "vampire_dc", 22)] {
        let ns = v["namespaces"].as_array().unwrap().iter().find(|ns| ns["holder"] == pid).expect("holder listed");
        assert_eq!(ns["label"], label);
        assert_eq!(ns["inode"], netns_of(pid));
        assert_eq!(ns["nprocs"], 1);
        let veth = ns["interfaces"].as_array().unwrap().iter().find(|i| i["name"] == format!("veth{n}")).unwrap();
        assert_eq!(veth["kind"], "veth");
        assert_eq!(veth["state"], "UP");
        let addrs: Vec<&str> =
            veth["addresses"].as_array().unwrap().iter().map(|a| a["cidr"].as_str().unwrap()).collect();
        assert!(addrs.contains(&format!("10.53.57.{n}/24").as_str()), "{addrs:?}");
        let v6 = veth["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["cidr"] == format!("fd00::5357:5f{n:02x}/112"))
            .unwrap();
        assert_eq!(v6["nodad"], true);
        assert_eq!(veth["peer"]["name"], format!("veth{n}-br"));
        assert_eq!(veth["peer"]["netns"], here, "the peer is resolved to the selftest namespace");
    }
    // The selftest side: ports with master and peers back into the testenvs.
    let me = v["namespaces"].as_array().unwrap().iter().find(|ns| ns["inode"] == here).unwrap();
    let port = me["interfaces"].as_array().unwrap().iter().find(|i| i["name"] == "veth21-br").unwrap();
    assert_eq!(port["master"], "selftest0");
    assert_eq!(port["peer"]["pid"], pids[0]);
    assert_eq!(port["peer"]["label"], "ad_dc");
    let bridge = v["bridges"].as_array().unwrap().iter().find(|b| b["netns"] == here).unwrap();
    assert_eq!(bridge["ports"].as_array().unwrap().len(), 2);
    stop(&pids);
}

#[test]
fn topology_shows_the_bridge_with_two_testenvs() {
    let mut sb = sandbox!("topology_shows_the_bridge_with_two_testenvs");
    let (anchor, pids) = two_testenvs(&mut sb);
    let out = sb.run("ns-ls", &["--topology", "-p", &anchor.to_string()]).ok().to_owned();
    let expected = [
        format!(
            "selftest0 10.53.57.11/24 fd00::5357:5f0b/112 ── veth21-br ⇄ veth21  pid {} ad_dc  10.53.57.21/24 fd00::5357:5f15/112",
            pids[0]
        ),
        format!(
            "selftest0 10.53.57.11/24 fd00::5357:5f0b/112 ── veth22-br ⇄ veth22  pid {} vampire_dc  10.53.57.22/24 fd00::5357:5f16/112",
            pids[1]
        ),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
    // Unfiltered, the same lines are there (with the namespace, since other tests have bridges too).
    let all = sb.run("ns-ls", &["--topology"]).ok().to_owned();
    assert!(all.lines().any(|l| l.starts_with(&expected[0])), "{all}");
    stop(&pids);
}

#[test]
fn filters_columns_and_types() {
    let mut sb = sandbox!("filters_columns_and_types");
    let pid: u32 = sb.run("ns-unshare", &["--name", "cols", "--user"]).ok().trim().parse().unwrap();
    let out = sb
        .run("ns-ls", &["-p", &pid.to_string(), "-o", "NS,PID,HOLDER,LABEL,IFACES", "--no-interfaces"])
        .ok()
        .to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["NS", "PID", "HOLDER", "LABEL", "IFACES"]);
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [netns_of(pid).to_string(), pid.to_string(), pid.to_string(), "cols".into(), "1".into()]
    );
    let owned = sb.run("ns-ls", &["--owned", "-n", "-o", "HOLDER", "--no-interfaces"]).ok().to_owned();
    assert!(owned.lines().any(|l| l.trim() == pid.to_string()));
    let anchor = sb.anchor();
    assert!(!owned.lines().any(|l| l.trim() == anchor.to_string()));
    let users = sb.run("ns-ls", &["-t", "user", "-p", &pid.to_string(), "--json"]).ok().to_owned();
    let v: serde_json::Value = serde_json::from_str(&users).unwrap();
    assert_eq!(v["type"], "user");
    assert_eq!(v["namespaces"][0]["holder"], pid);
    sb.run("ns-ls", &["-o", "NS,BOGUS"]).fails(2, "unknown column 'BOGUS'");
    sb.run("ns-ls", &["-t", "bogus"]).fails(2, "invalid value 'bogus'");
    sb.run("ns-ls", &["-p", "2147483646"]).fails(1, "no process with PID 2147483646");
    stop(&[pid]);
}

#[test]
fn lists_a_thousand_namespaces_in_well_under_a_second() {
    let sb = sandbox!("lists_a_thousand_namespaces_in_well_under_a_second");
    let n: usize = std::env::var("NSTOOLS_LS_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let out = sb.must(&format!("for i in $(seq {n}); do ns-unshare --name scale$i --no-lo; done"));
    let pids: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), n);
    let start = Instant::now();
    let json = sb.run("ns-ls", &["--json"]).ok().to_owned();
    let took = start.elapsed();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ours = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ns| ns["label"].as_str().is_some_and(|l| l.starts_with("scale")))
        .count();
    assert_eq!(ours, n);
    assert!(took < Duration::from_millis(700), "ns-ls took {took:?} for {n}+ namespaces");
    eprintln!("ns-ls --json listed {} namespaces in {took:?}", v["namespaces"].as_array().unwrap().len());
    for p in &pids {
        signal(*p, Signal::SIGTERM);
    }
    for p in &pids {
        assert!(wait_exit(*p, Duration::from_secs(5)));
    }
}

#[test]
fn rootless_lists_what_it_can_and_says_what_it_could_not() {
    let sb = sandbox!("rootless_lists_what_it_can_and_says_what_it_could_not");
    let Some(user) = nstools_tests::plain_user(sb.name()) else { return };
    let b = nstools_tests::bin_dir();
    let r = sb.sh_as(user, &format!("{}/ns-ls --no-interfaces", b.display()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("could not be inspected: permission denied"), "{}", r.stdout);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // Inside its own user namespace it sees and reads its testenv.
    let r = sb.sh_as(
        user,
        &format!(
            "unshare --user --map-root-user --net sh -c 'p=$({b}/ns-unshare --name mine); {b}/ns-ls -p $p --json; kill $p'",
            b = b.display()
        ),
    );
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(v["namespaces"][0]["label"], "mine");
    assert!(v["namespaces"][0]["interfaces"].as_array().unwrap().iter().any(|i| i["name"] == "lo"));
}

#[test]
fn a_namespace_without_holder_shows_its_oldest_process() {
    // After PIDs wrap, the lowest PID in a namespace can be a late helper: ns-ls must name the
    // process that made it. Forced here with ns_last_pid in a PID namespace of the test's own.
    let sb = sandbox!("a_namespace_without_holder_shows_its_oldest_process");
    let out = sb.must(
        "exec unshare --pid --fork --mount --mount-proc sh -c '
            echo 500 > /proc/sys/kernel/ns_last_pid
            unshare --net sleep infinity & first=$!
            while [ \"$(readlink /proc/$first/ns/net)\" = \"$(readlink /proc/self/ns/net)\" ]; do sleep 0.01; done
            sleep 0.05 # start times count in clock ticks (10 ms): the later one starts a tick later
            echo 100 > /proc/sys/kernel/ns_last_pid
            nsenter -t $first --net sleep infinity & later=$!
            while [ \"$(readlink /proc/$later/exe)\" != \"$(readlink -f /bin/sleep)\" ]; do sleep 0.01; done
            echo \"$first $later $(ns-ls -p $first -n -o PID,NPROCS --no-interfaces)\"
            kill $first $later'",
    );
    let f: Vec<&str> = out.split_whitespace().collect();
    assert!(f[1].parse::<u32>().unwrap() < f[0].parse::<u32>().unwrap(), "the later process has the lower PID: {out}");
    assert_eq!(f[2], f[0], "the oldest process, not the lowest PID: {out}");
    assert_eq!(f[3], "2");
}

#[test]
fn bridge_filter_finds_the_namespace_that_holds_it() {
    let mut sb = sandbox!("bridge_filter_finds_the_namespace_that_holds_it");
    let (hub, envs) = two_testenvs(&mut sb);
    let found = sb.run("ns-ls", &["--bridge", "selftest0", "-n", "-o", "PID", "--no-interfaces"]).ok().to_owned();
    // Other tests' bridges may be up too; ours is among them, testenvs are not.
    let pids: Vec<&str> = found.lines().collect();
    assert!(pids.contains(&hub.to_string().as_str()), "{found}");
    assert!(!pids.contains(&envs[0].to_string().as_str()), "{found}");
    let topo = sb.run("ns-ls", &["--bridge", "selftest0", "--topology", "-p", &hub.to_string()]).ok().to_owned();
    assert_eq!(topo.lines().count(), 2, "{topo}");
    let none = sb.run("ns-ls", &["--bridge", "nosuchbr0", "-n", "--no-interfaces"]).ok().to_owned();
    assert_eq!(none, "");
    stop(&envs);
}

#[test]
fn topology_as_dot_renders_with_graphviz() {
    let mut sb = sandbox!("topology_as_dot_renders_with_graphviz");
    if !std::process::Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success()) {
        nstools_tests::skip(sb.name(), "graphviz (dot) is not installed");
        return;
    }
    let (anchor, pids) = two_testenvs(&mut sb);
    // Impairments on both ends of one veth, and a label that needs DOT's escaping.
    sb.run("veth-pair", &["--shape", "veth21", "--netns", &pids[0].to_string(), "--rate", "8mbit"]).ok();
    sb.run("veth-pair", &["--shape", "veth21-br", "--rate", "100mbit"]).ok();
    let odd = sb.run("ns-unshare", &["--name", "odd\"lab\\el \\"]).ok().trim().to_owned();
    sb.run("veth-pair", &["veth23", "--netns", &odd, "--addr", "10.53.57.23/24"]).ok();
    sb.run("br-attach", &["veth23-br"]).ok();
    let dot = sb.run("ns-ls", &["--topology", "--dot", "-p", &anchor.to_string()]).ok().to_owned();
    assert!(dot.contains("graph topology {"), "{dot}");
    assert!(dot.contains("[penwidth=2, label=\"veth21-br: rate 100Mbit\\nveth21: rate 8Mbit\"]"), "{dot}");
    assert!(dot.contains(r#"label="odd\"lab\\el \\\npid "#), "escaped: {dot}");
    // Graphviz reads it: an SVG with every namespace, interface and impairment in it.
    let out = sb
        .command("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(dot.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let svg = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && out.stderr.is_empty(), "dot: {}", String::from_utf8_lossy(&out.stderr));
    for text in [
        "ad_dc",
        "vampire_dc",
        "odd&quot;lab\\el \\",
        "selftest0",
        "veth21&#45;br: rate 100Mbit",
        "veth21: rate 8Mbit",
        "10.53.57.23/24",
    ] {
        assert!(svg.contains(text), "{text} not in the SVG: {svg}");
    }
    stop(&pids);
    stop(&[odd.parse().unwrap()]);
}

/// Qdiscs are dumped only when the output shows impairments (issue 20): a look-up such as
/// testenv's (`-n -o PID,UPLINKS --no-interfaces`) sends no `RTM_GETQDISC`; the table with its
/// interface lines, `--topology` and `--json` do (counted with strace).
#[test]
fn qdiscs_are_dumped_only_when_impairments_are_shown() {
    let mut sb = sandbox!("qdiscs_are_dumped_only_when_impairments_are_shown");
    if sb.sh("strace -V").is_err() {
        return nstools_tests::skip(sb.name(), "strace is not installed (it counts the requests)");
    }
    let (_, pids) = two_testenvs(&mut sb);
    let trace = sb.workdir("strace").join("trace");
    let dumps = |args: &str| {
        sb.must(&format!(
            "strace -f -qq -e trace=sendto,sendmsg -o '{}' '{}' {args} > /dev/null",
            trace.display(),
            nstools_tests::bin("ns-ls").display()
        ));
        std::fs::read_to_string(&trace).unwrap().matches("RTM_GETQDISC").count()
    };
    for args in [
        "-n -o PID,UPLINKS --no-interfaces",
        "--bridge selftest0 -n -o PID --no-interfaces",
        "-o NS,IFACES --no-interfaces",
    ] {
        assert_eq!(dumps(args), 0, "ns-ls {args} dumps no qdiscs");
    }
    for args in ["", "--topology", "--json"] {
        assert!(dumps(args) > 0, "ns-ls {args} reads the impairments it shows");
    }
    stop(&pids);
}
