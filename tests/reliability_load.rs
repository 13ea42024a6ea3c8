//! Load and concurrency: 60 testenvs set up concurrently (16 at a time) through the drop-in
//! scripts, and 1,000 create/destroy cycles without growth in processes, descriptors,
//! interfaces or memory.

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nstools_tests::{Run, Sandbox, names, sandbox, signal, wait_until};

use crate::reliability_faults::start_testenv;
use crate::{Cmd, Group, Rng, Snapshot, Tag, Watch, assert_unchanged, count_runs, note, verdict};

pub const GROUPS: &[Group] = &[("load/60-testenvs", sixty_testenvs), ("load/1000-cycles", thousand_cycles)];

const TESTENVS: u32 = 60;
const AT_ONCE: usize = 16;
const CYCLES: usize = 1000;

fn sixty_testenvs() {
    let g = "load/60-testenvs";
    let mut sb = sandbox!(g);
    let parent = sb.anchor();
    let dir = sb.workdir("load");
    let w = Watch::default();
    let baseline = Snapshot::take(&sb, &w);
    let monitor = dir.join("monitor");
    sb.spawn(&["sh", "-c", &format!("exec ip -o monitor link > {}", monitor.display())], "ip");
    let mut stats = String::new();
    verdict(g, "60 testenvs, 16 at a time, through the drop-in scripts", || {
        let next = AtomicUsize::new(0);
        let started: Mutex<Vec<(u32, Child, ChildStdin)>> = Mutex::new(Vec::new());
        let bridge_errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let start = Instant::now();
        // Each starter runs create_bridge.sh (concurrently: idempotent --create), then
        // start_in_ns.sh in a fresh namespace and add_bridge_iface.sh, as Samba's selftest does.
        let tag = Tag::of(&sb);
        std::thread::scope(|s| {
            for _ in 0..AT_ONCE {
                s.spawn(|| {
                    let sb = &tag;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as u32;
                        if i >= TESTENVS {
                            break;
                        }
                        let n = 12 + i;
                        let r = Cmd::new("create_bridge.sh", &["selftest0", "10.53.57.11", "fd00::5357:5f0b"])
                            .run_tagged(sb);
                        if r.code != 0 || !r.stderr.is_empty() {
                            bridge_errors.lock().unwrap().push(format!("{n}: exit {}: {}", r.code, r.stderr.trim()));
                        }
                        let (child, stdin) = start_testenv(sb, &dir, n, parent);
                        started.lock().unwrap().push((n, child, stdin));
                    }
                });
            }
        });
        let setup = start.elapsed();
        let mut envs = started.into_inner().unwrap();
        assert!(bridge_errors.lock().unwrap().is_empty(), "create_bridge.sh: {:?}", bridge_errors.lock().unwrap());
        assert_eq!(envs.len(), TESTENVS as usize, "testenvs lost");
        let ports = names(&sb.ip("link show master selftest0"));
        assert_eq!(ports.len(), TESTENVS as usize, "bridge ports: {ports:?}");
        let bridges: Vec<String> = sb
            .ip("-d link show type bridge")
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(bridges, ["selftest0"]);
        let events = std::fs::read_to_string(&monitor).unwrap();
        assert!(
            !events.lines().any(|l| l.starts_with("Deleted") && l.contains("selftest0")),
            "the bridge was deleted (and created again) during set-up: {events}"
        );
        // All reachable: the last, a few random ones, IPv4 and IPv6, and testenv to testenv.
        let last = 12 + TESTENVS - 1;
        let mut rng = Rng::new(21);
        let mut probe = vec![last];
        probe.extend((0..4).map(|_| 12 + rng.below(u64::from(TESTENVS)) as u32));
        for n in &probe {
            sb.must(&format!("ping -c1 -W5 10.53.57.{n} >/dev/null && ping -c1 -W5 fd00::5357:5f{n:02x} >/dev/null"));
        }
        count_runs(probe.len() * 2);
        let first = envs.iter().find(|e| e.0 == 12).unwrap().1.id();
        Cmd::new("ns-exec", &["-t", &first.to_string(), "ping", "-c1", "-W5", &format!("10.53.57.{last}")])
            .run(&sb)
            .ok();
        // This selftest namespace's bridge only: other tests may run bridges of their own.
        let topo = Cmd::new("ns-ls", &["--topology", "-p", &parent.to_string()]).run(&sb).ok().to_owned();
        assert_eq!(topo.lines().filter(|l| l.contains(" ⇄ veth")).count(), TESTENVS as usize, "{topo}");
        // Tear down as selftest does: close every daemon's stdin.
        let down = Instant::now();
        let mut children = Vec::new();
        for (n, child, stdin) in envs.drain(..) {
            drop(stdin);
            children.push((n, child));
        }
        for (n, mut child) in children {
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(0), "testenv {n} ended with {status:?}");
        }
        assert!(
            wait_until(Duration::from_secs(20), || sb.ip("link show master selftest0").as_array().unwrap().is_empty()),
            "bridge ports left after every testenv ended"
        );
        let teardown = down.elapsed();
        sb.must("ip link del selftest0");
        assert_unchanged(&sb, &w, &baseline, Duration::from_secs(5));
        stats = format!(
            "set up in {:.1} s, all {} ports on one bridge (never deleted), pinged {} (v4+v6), torn down in {:.1} s, nothing left",
            setup.as_secs_f64(),
            TESTENVS,
            probe.len(),
            teardown.as_secs_f64()
        );
        stats.clone()
    });
    note(format!("load: {TESTENVS} testenvs {AT_ONCE} at a time: {stats}"));
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Gauges {
    processes: usize,
    threads: u64,
    fds_self: usize,
    fds_hub: usize,
    fds_observer: usize,
    links_hub: Vec<String>,
    links_here: Vec<String>,
}

fn gauges(sb: &Sandbox, hub: u32, observer: u32) -> (Gauges, [u64; 3]) {
    let me = std::process::id();
    (
        Gauges {
            processes: sb.tagged_processes().len(),
            threads: status_kb(me, "Threads:"),
            fds_self: fd_count(me),
            fds_hub: fd_count(hub),
            fds_observer: fd_count(observer),
            links_hub: sb.links_in(hub),
            links_here: sb.links(),
        },
        [status_kb(me, "VmRSS:"), status_kb(hub, "VmRSS:"), status_kb(observer, "VmRSS:")],
    )
}

fn tool(sb: &Sandbox, name: &str, args: &[&str]) -> String {
    let out = sb.tool(name).args(args).stdin(Stdio::null()).output().unwrap();
    Run::of(out, format!("{name} {}", args.join(" "))).ok().to_owned()
}

fn thousand_cycles() {
    let g = "load/1000-cycles";
    let sb = sandbox!(g);
    let w = Watch::default();
    let baseline = Snapshot::take(&sb, &w);
    let mut line = String::new();
    verdict(g, "1,000 create/destroy cycles: no growth in processes, descriptors, interfaces or memory", || {
        let hub: u32 = tool(&sb, "ns-unshare", &["--name", "cycles-hub"]).trim().parse().unwrap();
        let h = hub.to_string();
        tool(&sb, "br-attach", &["--netns", &h, "--create", "--addr", "10.53.57.11/24"]);
        // A long-lived observer: br-attach waiting in the hub for an interface that never
        // comes, seeing every link notification of the cycles.
        let mut observer: Command = sb.tool("br-attach");
        observer.args(["--netns", &h, "--timeout", "600", "never0"]).stdin(Stdio::null()).stderr(Stdio::piped());
        let observer = observer.spawn().unwrap();
        let obs = observer.id();
        let cycle = |i: usize| {
            let t = tool(&sb, "ns-unshare", &[]).trim().to_owned();
            tool(&sb, "veth-pair", &["vc", "--netns", &t, "--peer-netns", &h, "--addr", "10.53.57.21/24"]);
            tool(&sb, "br-attach", &["--netns", &h, "--timeout", "0", "vc-br"]);
            tool(&sb, "ns-unshare", &["--stop", &t]);
            count_runs(4);
            if i % 100 == 99 {
                assert_eq!(sb.links_in(hub), ["lo", "selftest0"], "cycle {i}: the hub's links");
            }
        };
        for i in 0..20 {
            cycle(i);
        }
        let (before, rss_before) = gauges(&sb, hub, obs);
        let start = Instant::now();
        for i in 20..CYCLES {
            cycle(i);
        }
        let took = start.elapsed();
        let (after, rss_after) = gauges(&sb, hub, obs);
        assert_eq!(before, after, "growth over {} cycles", CYCLES - 20);
        let growth = |i: usize| rss_after[i].saturating_sub(rss_before[i]);
        // Bounds: the test process allocates for each of the 4,000 processes it starts (the
        // allocator keeps some); the holder and the observer should not grow at all, give or
        // take a page or two of stack and allocator slack.
        assert!(growth(0) <= 2048, "this process's RSS grew by {} kB", growth(0));
        assert!(growth(1) <= 16, "the hub holder's RSS grew by {} kB", growth(1));
        assert!(growth(2) <= 64, "the observer's RSS grew by {} kB", growth(2));
        // The observer is still waiting; SIGTERM undoes nothing (it attached nothing).
        signal(obs, Signal::SIGTERM);
        let out = observer.wait_with_output().unwrap();
        let r = Run::of(out, "br-attach (observer)".into());
        assert_eq!(r.code, -1, "the observer dies of SIGTERM: {r:?}");
        assert!(r.stderr.starts_with("br-attach: interrupted by SIGTERM"), "{:?}", r.stderr);
        tool(&sb, "ns-unshare", &["--stop", &h]);
        assert_unchanged(&sb, &w, &baseline, Duration::from_secs(2));
        line = format!(
            "{} cycles (ns-unshare, veth-pair, br-attach, ns-unshare --stop) in {:.1} s after 20 warm-up; \
             unchanged: {} processes, {} threads, fds {} (test) / {} (hub) / {} (observer), links {:?} (hub); \
             RSS growth {} kB (test, bound 2048), {} kB (hub, bound 16), {} kB (observer, bound 64)",
            CYCLES,
            took.as_secs_f64(),
            after.processes,
            after.threads,
            after.fds_self,
            after.fds_hub,
            after.fds_observer,
            after.links_hub,
            growth(0),
            growth(1),
            growth(2)
        );
        line.clone()
    });
    note(format!("load: {line}"));
}
