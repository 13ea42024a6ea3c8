//! Faults: SIGTERM and SIGINT at random points (fully done or fully undone), SIGKILL at random
//! points (what can remain, seen by ns-ls and removed by testenv down), a testenv daemon or
//! holder that crashes, and a selftest run that dies.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nstools_tests::{Run, Sandbox, alive, netns_alive, netns_of, sandbox, signal, wait_exit, wait_until};

use crate::{
    Cmd, Group, Rng, Snapshot, Tag, Watch, assert_unchanged, compare, count_runs, note, program_path, spawn, verdict,
};

pub const GROUPS: &[Group] = &[
    ("faults/signals-ns-unshare", signals_ns_unshare),
    ("faults/signals-veth-pair", signals_veth_pair),
    ("faults/signals-br-attach", signals_br_attach),
    ("faults/signals-ns-exec-ns-ls", signals_ns_exec_ns_ls),
    ("faults/sigkill-tools", sigkill_tools),
    ("faults/sigkill-testenv", sigkill_testenv),
    ("faults/sigkill-pipe-idiom", sigkill_pipe_idiom),
    ("faults/daemon-crash", daemon_crash),
    ("faults/holder-crash", holder_crash),
    ("faults/selftest-dies", selftest_dies),
];

/// What one interrupted run did.
struct Interrupted {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// Start `program args`, wait `delay`, send `sig`, collect the outcome.
fn interrupt(sb: &Sandbox, program: &str, args: &[String], delay: Duration, sig: Signal) -> Interrupted {
    let child = spawn(sb, program, args);
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    signal(child.id(), sig);
    let out = child.wait_with_output().unwrap();
    Interrupted {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// All sweeps together: runs, completed, killed before starting, interrupted and undone.
pub static SIGNAL_RUNS: [std::sync::atomic::AtomicUsize; 4] = [const { std::sync::atomic::AtomicUsize::new(0) }; 4];

/// The line for the report's figures, once sweeps ran.
pub fn signal_summary() -> Option<String> {
    use std::sync::atomic::Ordering::Relaxed;
    let [runs, done, before, undone] = &SIGNAL_RUNS;
    (runs.load(Relaxed) > 0).then(|| {
        format!(
            "SIGTERM/SIGINT at random points: {} runs: {} fully done, {} killed before starting, {} interrupted and fully undone, 0 in between",
            runs.load(Relaxed),
            done.load(Relaxed),
            before.load(Relaxed),
            undone.load(Relaxed)
        )
    })
}

/// Counts of a sweep.
#[derive(Default)]
struct Tally {
    done: usize,
    before: usize,
    undone: usize,
}

/// How long an uninterrupted run takes (the median of three), to spread the signals over.
fn calibrate(sb: &Sandbox, program: &str, args: &[String], after: &mut dyn FnMut(&Sandbox, &str)) -> Duration {
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let out = spawn(sb, program, args).wait_with_output().unwrap();
        times.push(start.elapsed());
        let r = Run::of(out, format!("{program} (calibration)"));
        after(sb, r.ok());
    }
    times.sort();
    times[1]
}

/// `runs` runs of `program`, each sent SIGTERM or SIGINT (alternately) after a random delay in
/// 0..`spread`: each must end fully done (exit 0; `done` checks the result, then restores the
/// baseline) or fully undone (death by the signal, or 128+N, with one `interrupted` line or
/// nothing on stderr), and the snapshot must equal the baseline afterwards.
#[allow(clippy::too_many_arguments)]
fn sweep(
    sb: &Sandbox,
    watch: &Watch,
    group: &str,
    what: &str,
    program: &str,
    runs: usize,
    salt: u64,
    args: &dyn Fn(usize) -> Vec<String>,
    spread: Option<Duration>,
    done: &mut dyn FnMut(&Sandbox, &str),
    settle: Duration,
) -> Tally {
    let mut tally = Tally::default();
    let case = format!("{program}: {what}: {runs} runs, SIGTERM/SIGINT at random points");
    verdict(group, &case, || {
        let baseline = Snapshot::take(sb, watch);
        let spread = spread.unwrap_or_else(|| calibrate(sb, program, &args(0), done).mul_f64(1.4));
        assert_unchanged(sb, watch, &baseline, settle);
        let mut rng = Rng::new(salt);
        let mut max_delay = Duration::ZERO;
        for i in 0..runs {
            let sig = if i % 2 == 0 { Signal::SIGTERM } else { Signal::SIGINT };
            let delay = Duration::from_micros(rng.below(spread.as_micros() as u64 + 1));
            max_delay = max_delay.max(delay);
            let argv = args(i);
            let r = interrupt(sb, program, &argv, delay, sig);
            let ctx = format!("run {i} ({program} {}, {sig} after {delay:?})", argv.join(" "));
            let by_signal = r.status.signal() == Some(sig as i32) || r.status.code() == Some(128 + sig as i32);
            if r.status.success() {
                tally.done += 1;
                done(sb, &r.stdout);
            } else if by_signal {
                let lines: Vec<&str> = r.stderr.lines().collect();
                if lines.is_empty() {
                    tally.before += 1;
                } else {
                    assert_eq!(lines.len(), 1, "{ctx}: one line on stderr: {:?}", r.stderr);
                    let tool = program.rsplit('/').next().unwrap();
                    assert!(
                        lines[0].starts_with(&format!("{tool}: interrupted by {}", sig.as_str())),
                        "{ctx}: {:?}",
                        r.stderr
                    );
                    tally.undone += 1;
                }
                // ns-exec's output is its command's: a command that printed and was then ended by
                // the signal passed on to it (ns-exec ends as it did, saying nothing) printed it.
                let commands_output = program.ends_with("ns-exec") && lines.is_empty();
                assert!(
                    r.stdout.is_empty() || commands_output,
                    "{ctx}: printed {:?} but was undone ({:?}, stderr {:?})",
                    r.stdout,
                    r.status,
                    r.stderr
                );
            } else {
                panic!("{ctx}: neither done nor undone by the signal: {:?}, stderr {:?}", r.status, r.stderr);
            }
            if let Err(diff) = compare(sb, watch, &baseline, settle) {
                panic!("{ctx} (exit {:?}, stderr {:?}) did not leave things as they were: {diff}", r.status, r.stderr);
            }
        }
        format!(
            "{} completed, {} killed before starting, {} interrupted and undone; delays 0-{:.2} ms",
            tally.done,
            tally.before,
            tally.undone,
            max_delay.as_secs_f64() * 1000.0
        )
    });
    note(format!(
        "signals, {program} ({what}): {runs} runs: {} done, {} killed before starting, {} undone",
        tally.done, tally.before, tally.undone
    ));
    for (counter, n) in
        SIGNAL_RUNS.iter().zip([tally.done + tally.before + tally.undone, tally.done, tally.before, tally.undone])
    {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    tally
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn signals_ns_unshare() {
    let g = "faults/signals-ns-unshare";
    let mut sb = sandbox!(g);
    let anchor = sb.anchor().to_string();
    let w = Watch::default();
    let variants: Vec<Vec<String>> = vec![
        strings(&[]),
        strings(&["--map-root-user", "--name", "rootless"]),
        strings(&["--pid", "--mount", "--uts", "--hostname", "h1"]),
        strings(&["--ipc", "--exit-with", &anchor, "--json"]),
    ];
    let args = |i: usize| variants[i % variants.len()].clone();
    let mut done = |sb: &Sandbox, stdout: &str| {
        let line = stdout.trim();
        let pid: u32 = if line.starts_with('{') {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["pid"].as_u64().unwrap() as u32
        } else {
            line.parse().unwrap_or_else(|_| panic!("completed but printed {stdout:?}"))
        };
        assert!(alive(pid), "completed, but holder {pid} is not alive");
        assert_ne!(netns_of(pid), netns_of(std::process::id()), "holder {pid} has no network namespace of its own");
        Cmd::new("ns-unshare", &["--stop", &pid.to_string()]).run(sb).ok();
    };
    sweep(&sb, &w, g, "holders", "ns-unshare", 40, 1, &args, None, &mut done, Duration::from_secs(2));
}

fn signals_veth_pair() {
    let g = "faults/signals-veth-pair";
    let mut sb = sandbox!(g);
    let env = sb.spawn_netns();
    let w = Watch::default().ns("env", env);
    let e = env.to_string();
    let args = |_: usize| {
        strings(&["v0", "--netns", &e, "--addr", "10.1.0.1/24", "--addr", "fd01::1/64", "--peer-addr", "10.1.0.2/24"])
    };
    let mut done = |sb: &Sandbox, _: &str| {
        let inside = Snapshot::take(sb, &Watch::default().ns("env", env));
        for l in [
            "link env: v0 kind=veth master=- up",
            "addr env: v0 10.1.0.1/24",
            "addr env: v0 fd01::1/64",
            "link here: v0-br kind=veth master=- up",
            "addr here: v0-br 10.1.0.2/24",
        ] {
            assert!(inside.lines().contains(l), "completed but {l:?} is missing: {:?}", inside.lines());
        }
        sb.must("ip link del v0-br");
    };
    sweep(&sb, &w, g, "a pair into a testenv", "veth-pair", 40, 2, &args, None, &mut done, Duration::from_secs(2));
}

fn signals_br_attach() {
    let g = "faults/signals-br-attach";
    let sb = sandbox!(g);
    sb.must("ip link add p1 type veth peer name p1x && ip link add p2 type veth peer name p2x");
    let w = Watch::default();
    let attached = |sb: &Sandbox, addrs: &[&str]| {
        let s = Snapshot::take(sb, &Watch::default());
        for l in ["link here: p1 kind=veth master=selftest0 up", "link here: p2 kind=veth master=selftest0 up"] {
            assert!(s.lines().contains(l), "completed but {l:?} is missing: {:?}", s.lines());
        }
        for a in addrs {
            let l = format!("addr here: selftest0 {a}");
            assert!(s.lines().contains(&l), "completed but {l:?} is missing: {:?}", s.lines());
        }
    };
    // The bridge is created by the run.
    let args = |_: usize| strings(&["--create", "--addr", "10.2.0.1/24", "--addr", "fd02::1/64", "p1", "p2"]);
    let mut done = |sb: &Sandbox, _: &str| {
        attached(sb, &["10.2.0.1/24", "fd02::1/64"]);
        sb.must("ip link del selftest0 && ip link set p1 down && ip link set p2 down");
    };
    sweep(&sb, &w, g, "create the bridge, attach two", "br-attach", 40, 3, &args, None, &mut done, Duration::ZERO);
    // The bridge exists already (as when many testenvs start): attach and add an address.
    sb.must("ip link add selftest0 type bridge && ip link set selftest0 up");
    let args = |_: usize| strings(&["--create", "--addr", "10.3.0.1/24", "p1", "p2"]);
    let mut done = |sb: &Sandbox, _: &str| {
        attached(sb, &["10.3.0.1/24"]);
        sb.must(
            "ip link set p1 nomaster && ip link set p2 nomaster && ip link set p1 down && ip link set p2 down && ip addr del 10.3.0.1/24 dev selftest0",
        );
    };
    sweep(&sb, &w, g, "existing bridge, attach two", "br-attach", 20, 4, &args, None, &mut done, Duration::ZERO);
    sb.must("ip link del selftest0");
    // Waiting for an interface that never comes: always interrupted, always undone.
    let args = |_: usize| strings(&["--create", "--bridge", "br-wait", "--timeout", "30", "p1", "never0"]);
    let mut never = |_: &Sandbox, out: &str| panic!("br-attach completed without never0: {out:?}");
    let t = sweep(
        &sb,
        &w,
        g,
        "waiting, bridge created, one attached",
        "br-attach",
        20,
        5,
        &args,
        Some(Duration::from_millis(30)),
        &mut never,
        Duration::ZERO,
    );
    verdict(g, "br-attach: interrupted while waiting, its bridge and attachment undone", || {
        assert!(t.undone >= 10, "only {} of 20 runs were interrupted after starting", t.undone);
        format!("{} of 20 runs interrupted while working or waiting, all undone", t.undone)
    });
}

fn signals_ns_exec_ns_ls() {
    let g = "faults/signals-ns-exec-ns-ls";
    let mut sb = sandbox!(g);
    let env = sb.spawn_netns();
    let h = Cmd::new("ns-unshare", &["--name", "sig-holder"]).run(&sb).ok().trim().parse::<u32>().unwrap();
    let w = Watch::default().ns("env", env).ns("holder", h).fds(h);
    let hs = h.to_string();
    let args = |i: usize| {
        if i % 2 == 1 {
            strings(&["-t", &env.to_string(), "--", "ip", "-br", "link"])
        } else {
            strings(&["-t", &hs, "true"])
        }
    };
    let mut done = |_: &Sandbox, _: &str| {};
    sweep(&sb, &w, g, "enter and run", "ns-exec", 20, 6, &args, None, &mut done, Duration::from_secs(1));
    let args = |i: usize| if i % 2 == 1 { strings(&["--topology"]) } else { strings(&["--json"]) };
    let mut done = |_: &Sandbox, out: &str| {
        assert!(!out.is_empty());
    };
    sweep(&sb, &w, g, "list", "ns-ls", 20, 7, &args, None, &mut done, Duration::ZERO);
    Cmd::new("ns-unshare", &["--stop", &hs]).run(&sb).ok();
}

// ---------------------------------------------------------------------------------------------
// SIGKILL.

/// The test's processes once every one left is a committed holder: an ns-unshare holder that
/// still has a pipe open (its commit pipe) has not been committed, and exits by itself once it
/// sees the pipe closed (it may still be creating its namespaces, which can take a while when
/// the machine is busy).
fn settled_processes(sb: &Sandbox) -> Vec<u32> {
    let committed_holder = |p: &u32| {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        let pipes = std::fs::read_dir(format!("/proc/{p}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("pipe:")));
        comm.trim() == "ns-unshare" && !pipes
    };
    wait_until(Duration::from_secs(10), || sb.tagged_processes().iter().all(committed_holder));
    sb.tagged_processes()
}

fn comm_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim_end().to_owned()
}

/// A pipe whose buffer is full (a blocking write end): whoever writes to it blocks.
fn full_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (r, w) = nix::unistd::pipe().unwrap();
    fcntl(&w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let chunk = [b'x'; 4096];
    while nix::unistd::write(&w, &chunk).is_ok() {}
    fcntl(&w, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    (r, w)
}

/// The holders (PID, label) and the bridges ns-ls reports, and the namespaces it lists by bind mount.
fn ns_ls(sb: &Sandbox) -> serde_json::Value {
    serde_json::from_str(Cmd::new("ns-ls", &["--json"]).run(sb).ok()).unwrap()
}

fn sigkill_tools() {
    let g = "faults/sigkill-tools";
    let mut sb = sandbox!(g);
    let env = sb.spawn_netns();
    sb.must("ip link add p1 type veth peer name p1x && ip link add p2 type veth peer name p2x && ip link set p1 up && ip link set p2 up");
    let w = Watch::default().ns("env", env);
    let baseline = Snapshot::take(&sb, &w);
    let mut rng = Rng::new(11);
    let dir = sb.workdir("kill");

    // ns-unshare: a holder whose ns-unshare dies before committing exits by itself.
    // Committed before the kill, pairs left, bridges left, uncommitted holders, bind mounts left.
    let mut left = [0usize; 5];
    verdict(g, "ns-unshare: SIGKILL at random points leaves no holder", || {
        let variants = [strings(&[]), strings(&["--map-root-user"]), strings(&["--pid", "--mount"])];
        let (mut printed_gone, mut orphaned) = (0, 0usize);
        for i in 0..30 {
            let delay = Duration::from_micros(rng.below(6000));
            let r = interrupt(&sb, "ns-unshare", &variants[i % 3], delay, Signal::SIGKILL);
            let printed: Option<u32> = r.stdout.trim().parse().ok();
            // Holders alive right after the kill, and not reported: they must go by themselves.
            if sb.tagged_processes().iter().any(|p| Some(*p) != printed) {
                orphaned += 1;
            }
            let procs = settled_processes(&sb);
            match printed {
                Some(p) if procs == [p] => {
                    left[0] += 1; // committed just before the kill: a complete result
                    Cmd::new("ns-unshare", &["--stop", &p.to_string()]).run(&sb).ok();
                }
                Some(_) if procs.is_empty() => printed_gone += 1,
                _ => assert!(
                    procs.is_empty(),
                    "run {i} (after {delay:?}): holders left: {procs:?} (printed {printed:?})"
                ),
            }
            assert_unchanged(&sb, &w, &baseline, Duration::from_secs(2));
        }
        left[3] = orphaned;
        format!(
            "30 runs: {} committed before the kill (complete), {orphaned} killed with an uncommitted holder (which exited by itself), {printed_gone} printed a PID whose holder then exited; none left a holder",
            left[0]
        )
    });

    // Deterministic: ns-unshare blocked printing the PID (its stdout a full pipe), so its
    // holder exists but is not committed; SIGKILL it there.
    verdict(g, "ns-unshare: SIGKILL between holder and commit: the holder exits by itself", || {
        let mut times = Vec::new();
        for args in [strings(&[]), strings(&["--map-root-user"]), strings(&["--pid", "--mount"])] {
            let (read_end, write_end) = full_pipe();
            let mut child = sb.tool("ns-unshare").args(&args).stdin(Stdio::null()).stdout(write_end).spawn().unwrap();
            count_runs(1);
            let tool = child.id();
            // The holder: a tagged ns-unshare other than the tool (with --pid, once the
            // intermediate process that forked it has gone).
            let holder = || sb.tagged_processes().into_iter().find(|p| *p != tool && comm_of(*p) == "ns-unshare");
            let appeared = wait_until(Duration::from_secs(10), || holder().is_some());
            std::thread::sleep(Duration::from_millis(100));
            let h = holder();
            let blocked = child.try_wait().unwrap().is_none();
            signal(tool, Signal::SIGKILL);
            let killed = Instant::now();
            child.wait().unwrap();
            assert!(appeared && blocked, "ns-unshare {args:?} did not block printing its holder's PID");
            let h = h.unwrap_or_else(|| panic!("no holder ({args:?})"));
            assert!(wait_exit(h, Duration::from_secs(2)), "holder {h} outlived ns-unshare {args:?}");
            times.push(format!("{:.1} ms", killed.elapsed().as_secs_f64() * 1000.0));
            drop(read_end);
            assert_unchanged(&sb, &w, &baseline, Duration::from_secs(2));
        }
        format!("plain, --map-root-user, --pid: holders exited {} after the kill", times.join(", "))
    });

    // ns-unshare --bind (real root): the bind mount can remain; ns-ls shows it.
    if nstools_tests::real_root() {
        verdict(g, "ns-unshare --bind: SIGKILL can leave the bind mount, which ns-ls lists", || {
            let mut mounts = 0;
            for i in 0..10 {
                let path = dir.join(format!("bind{i}"));
                let delay = Duration::from_micros(rng.below(8000));
                let args = strings(&["--bind", &path.display().to_string()]);
                let r = interrupt(&sb, "ns-unshare", &args, delay, Signal::SIGKILL);
                let printed: Option<u32> = r.stdout.trim().parse().ok();
                let procs = settled_processes(&sb);
                if let Some(p) = printed.filter(|p| procs == [*p]) {
                    Cmd::new("ns-unshare", &["--stop", &p.to_string()]).run(&sb).ok();
                } else {
                    assert!(procs.is_empty(), "holders left: {procs:?}");
                }
                let shown = path.display().to_string();
                let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&shown);
                if mounted {
                    mounts += 1;
                    let listed = ns_ls(&sb)["namespaces"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n["binds"].as_array().unwrap().iter().any(|b| b == shown.as_str()));
                    assert!(listed, "{shown} is mounted but ns-ls does not list it");
                }
                nstools::holder::undo_bind(&path);
            }
            left[4] = mounts;
            format!("10 runs: {mounts} left the bind mount (listed by ns-ls, removed with umount + rm)")
        });
    } else {
        nstools_tests::skip("faults/sigkill-tools --bind", "needs real root for bind mounts");
    }

    // veth-pair: a pair, created in one request: both ends or neither, perhaps without all addresses.
    verdict(g, "veth-pair: SIGKILL can leave the pair, which ns-ls lists", || {
        let e = env.to_string();
        let args = strings(&[
            "v0",
            "--netns",
            &e,
            "--addr",
            "10.1.0.1/24",
            "--addr",
            "fd01::1/64",
            "--peer-addr",
            "10.1.0.2/24",
        ]);
        let (mut pairs, mut partial) = (0, 0);
        for i in 0..30 {
            let delay = Duration::from_micros(rng.below(8000));
            interrupt(&sb, "veth-pair", &args, delay, Signal::SIGKILL);
            let s = Snapshot::take(&sb, &w);
            let end = s.lines().iter().any(|l| l.starts_with("link env: v0 "));
            let peer = s.lines().iter().any(|l| l.starts_with("link here: v0-br "));
            assert_eq!(end, peer, "run {i}: half a pair: {:?}", s.lines());
            if end {
                pairs += 1;
                let addrs = s
                    .lines()
                    .iter()
                    .filter(|l| l.starts_with("addr env: v0 ") || l.starts_with("addr here: v0-br "))
                    .count();
                if addrs < 3 {
                    partial += 1;
                }
                let listed = ns_ls(&sb)["namespaces"].as_array().unwrap().iter().any(|n| {
                    n["pid"] == env && n["interfaces"].as_array().is_some_and(|i| i.iter().any(|i| i["name"] == "v0"))
                });
                assert!(listed, "run {i}: ns-ls does not list v0");
                Cmd::new("veth-pair", &["--delete", "v0-br", "--missing-ok"]).run(&sb).ok();
            }
            assert_unchanged(&sb, &w, &baseline, Duration::from_secs(1));
        }
        left[1] = pairs;
        format!(
            "30 runs: {pairs} left the pair ({partial} without all its addresses), listed by ns-ls, removed by veth-pair --delete"
        )
    });

    // br-attach --create: the bridge it made, with or without its addresses and ports.
    verdict(g, "br-attach: SIGKILL can leave the bridge it created, which ns-ls lists", || {
        let args = strings(&["--create", "--addr", "10.2.0.1/24", "p1", "p2"]);
        let mut bridges = 0;
        for i in 0..30 {
            let delay = Duration::from_micros(rng.below(8000));
            interrupt(&sb, "br-attach", &args, delay, Signal::SIGKILL);
            if sb.links().contains(&"selftest0".to_owned()) {
                bridges += 1;
                let listed = ns_ls(&sb)["bridges"].as_array().unwrap().iter().any(|b| b["name"] == "selftest0");
                assert!(listed, "run {i}: ns-ls does not list the bridge");
                sb.must("ip link del selftest0");
            }
            assert_unchanged(&sb, &w, &baseline, Duration::ZERO);
        }
        left[2] = bridges;
        format!("30 runs: {bridges} left the bridge (listed by ns-ls, removed with ip link del)")
    });

    // ns-exec and ns-ls change nothing.
    verdict(g, "ns-exec, ns-ls: SIGKILL leaves nothing", || {
        for i in 0..20 {
            let delay = Duration::from_micros(rng.below(4000));
            let (tool, args) = if i % 2 == 0 {
                ("ns-exec", strings(&["-t", &env.to_string(), "true"]))
            } else {
                ("ns-ls", strings(&["--json"]))
            };
            interrupt(&sb, tool, &args, delay, Signal::SIGKILL);
            assert_unchanged(&sb, &w, &baseline, Duration::from_secs(1));
        }
        "20 runs, nothing left".to_owned()
    });
    note(format!(
        "SIGKILL, tools: ns-unshare 33 runs: no holder left ({} killed with an uncommitted holder, which exited by itself), --bind 10 runs: {} left the bind mount; veth-pair 30 runs: {} left the pair; br-attach 30 runs: {} left the bridge; ns-exec and ns-ls 20 runs: nothing; all listed by ns-ls",
        left[3] + 3,
        left[4],
        left[1],
        left[2]
    ));
}

/// The pipe idiom `ns-unshare | ns-exec CMD`, with SIGKILL at random points to ns-unshare, to
/// ns-exec (or CMD, which it becomes), or to both: once CMD has run and ended, nothing may be
/// left. The one window that can leave a holder is ns-exec killed after ns-unshare printed and
/// before ns-exec read it (nobody learnt of the holder then, as when ns-unshare itself is killed
/// after it printed): that holder is listed by ns-ls, and `ns-unshare --stop` ends it.
fn sigkill_pipe_idiom() {
    let g = "faults/sigkill-pipe-idiom";
    let mut sb = sandbox!(g);
    let w = Watch::default();
    let baseline = Snapshot::take(&sb, &w);
    let mut rng = Rng::new(23);
    let dir = sb.workdir("pipe");
    verdict(g, "ns-unshare | ns-exec CMD: SIGKILL at random points; nothing left once CMD has run", || {
        let variants = [("", ""), ("--map-root-user", ""), ("--pid --mount", "--all"), ("--json --uts", "")];
        let (mut ran, mut unread, mut whole) = (0, 0, 0);
        for i in 0..40 {
            let (flags, exec_flags) = variants[i % variants.len()];
            let marker = dir.join(format!("ran{i}"));
            let mut pipeline = sb
                .command("sh")
                .arg("-c")
                .arg(format!(
                    "ns-unshare {flags} | ns-exec {exec_flags} sh -c 'touch {m}; sleep 0.02'",
                    m = marker.display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            count_runs(2);
            std::thread::sleep(Duration::from_micros(rng.below(15000)));
            // The pipeline's processes: ns-unshare (and its holder), ns-exec or its command.
            let victims: Vec<u32> = sb.tagged_processes().into_iter().filter(|p| *p != pipeline.id()).collect();
            let kind = rng.below(3);
            for p in &victims {
                let is_unshare = comm_of(*p) == "ns-unshare" && nstools_tests::zombie_child_of(*p).is_none();
                let parent_is_sh = std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(')').map(|(_, r)| r.split_whitespace().nth(1) == Some(&pipeline.id().to_string()))
                    })
                    .unwrap_or(false);
                if !parent_is_sh {
                    continue; // a holder: never killed here
                }
                if kind == 2 || (kind == 0) == is_unshare {
                    signal(*p, Signal::SIGKILL);
                }
            }
            pipeline.wait().unwrap();
            if marker.exists() {
                ran += 1;
                // CMD ran, and has ended with the pipeline: nothing may be left.
                assert_unchanged(&sb, &w, &baseline, Duration::from_secs(3));
            } else {
                let left = settled_processes(&sb);
                let listing = ns_ls(&sb);
                // A holder that was claimed just before the kill exits by itself meanwhile.
                let left: Vec<u32> = left.into_iter().filter(|p| alive(*p)).collect();
                if left.is_empty() {
                    whole += 1;
                } else {
                    unread += 1;
                    let listed = listing["namespaces"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|n| left.iter().any(|p| n["holder"] == *p))
                        .count();
                    assert_eq!(
                        listed,
                        left.len(),
                        "run {i} ({flags}): the holders left are listed by ns-ls: {left:?} {:?}",
                        left.iter().map(|p| (comm_of(*p), nstools_tests::open_fds(*p))).collect::<Vec<_>>()
                    );
                    for p in left {
                        // A holder whose claim was already on its socket when ns-exec was killed
                        // takes it and exits by itself: it may be gone by now (ESRCH).
                        let stop = Cmd::new("ns-unshare", &["--stop", &p.to_string()]).run(&sb);
                        if stop.code != 0 && alive(p) {
                            stop.ok();
                        }
                    }
                }
                assert_unchanged(&sb, &w, &baseline, Duration::from_secs(3));
            }
        }
        note(format!(
            "SIGKILL, pipe idiom: 40 runs: {ran} ran CMD, nothing left; {whole} killed before CMD, nothing left; {unread} killed between print and read, holder left and listed"
        ));
        format!(
            "40 runs: {ran} ran CMD (nothing left after it), {whole} killed before CMD with nothing left, {unread} left an unread holder (listed by ns-ls, stopped)"
        )
    });
}

/// SIGKILL to `testenv up` (the whole process group) at random points: what remains is
/// holders that ns-ls lists with their labels, and `testenv down` removes everything.
fn sigkill_testenv() {
    let g = "faults/sigkill-testenv";
    let sb = sandbox!(g);
    let hub = format!("{}-hub", sb.tag);
    let w = Watch::default();
    let baseline = Snapshot::take(&sb, &w);
    let testenv = program_path("testenv");
    let run = |args: &[&str]| {
        count_runs(1);
        let out = sb.command(&testenv).args(args).env("NSTOOLS_SELFTEST_LABEL", &hub).output().unwrap();
        Run::of(out, format!("testenv {}", args.join(" ")))
    };
    let mut leftovers = 0;
    let mut holders_left = 0;
    verdict(g, "testenv up: SIGKILL at random points; ns-ls sees what is left, testenv down removes it", || {
        let start = Instant::now();
        run(&["up", "ka:21", "kb:22"]).ok();
        let full = start.elapsed();
        run(&["down"]).ok();
        assert_unchanged(&sb, &w, &baseline, Duration::from_secs(2));
        let mut rng = Rng::new(12);
        for i in 0..12 {
            let delay = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
            let mut cmd = sb.command(&testenv);
            cmd.args(["up", "ka:21", "kb:22"]).env("NSTOOLS_SELFTEST_LABEL", &hub).process_group(0);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            count_runs(1);
            let mut child = cmd.spawn().unwrap();
            std::thread::sleep(delay);
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            child.wait().unwrap();
            let procs = settled_processes(&sb);
            if !procs.is_empty() {
                leftovers += 1;
                holders_left += procs.len();
            }
            let listing = ns_ls(&sb);
            for p in &procs {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                assert_eq!(
                    comm.trim(),
                    "ns-unshare",
                    "run {i} (after {delay:?}): a process other than a holder is left: {p}"
                );
                let ns = listing["namespaces"].as_array().unwrap().iter().find(|n| n["holder"] == *p);
                let label = ns.and_then(|n| n["label"].as_str()).unwrap_or_default().to_owned();
                assert!(
                    label == hub || label == "ka" || label == "kb",
                    "run {i}: holder {p} is not listed by ns-ls with its label ({label:?})"
                );
            }
            run(&["down"]).ok();
            assert_unchanged(&sb, &w, &baseline, Duration::from_secs(2));
        }
        format!(
            "12 runs over 0-{:.0} ms: {leftovers} left holders ({holders_left} in all), each listed by ns-ls with its label; testenv down removed everything",
            full.as_secs_f64() * 1000.0
        )
    });
    note(format!("SIGKILL, testenv up: 12 runs: {leftovers} left labelled holders, all removed by testenv down"));
}

// ---------------------------------------------------------------------------------------------
// Crashes.

fn exports(dir: &std::path::Path, n: u32) -> String {
    let d = dir.join(format!("env{n}"));
    std::fs::create_dir_all(&d).unwrap();
    let file = d.join("exports.sh");
    std::fs::write(
        &file,
        format!("NETBIOSNAME=LOCALDC{n}\nSERVER_IP=10.53.57.{n}\nSERVER_IPV6=fd00::5357:5f{n:02x}\n"),
    )
    .unwrap();
    file.display().to_string()
}

/// Start a testenv the way Samba's selftest does: `unshare --net start_in_ns.sh ...` with a
/// daemon that runs until its stdin closes, then add_bridge_iface.sh.
pub fn start_testenv(sb: &Tag, dir: &std::path::Path, n: u32, parent: u32) -> (Child, ChildStdin) {
    let exports = exports(dir, n);
    let pidfile = dir.join(format!("env{n}/daemon.pid"));
    let mut child = sb
        .command("unshare")
        .arg("--net")
        .arg(program_path("start_in_ns.sh"))
        .env("ENVNAME", format!("env{n}.samba"))
        .args([format!("veth{n}"), exports, parent.to_string()])
        .args(["sh", "-c", &format!("echo $$ > {}; exec cat > /dev/null", pidfile.display())])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    count_runs(2);
    let r = Cmd::new("add_bridge_iface.sh", &[&format!("veth{n}-br"), "selftest0"]).run_tagged(sb);
    if r.code != 0 {
        let mut err = String::new();
        let _ = child.kill();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        panic!("testenv {n}: add_bridge_iface.sh failed: {}; start_in_ns.sh: {err}", r.stderr);
    }
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

fn ports(sb: &Sandbox) -> Vec<String> {
    nstools_tests::names(&sb.ip("link show master selftest0"))
}

fn daemon_crash() {
    let g = "faults/daemon-crash";
    let mut sb = sandbox!(g);
    let parent = sb.anchor();
    let dir = sb.workdir("crash");
    Cmd::new("create_bridge.sh", &["selftest0", "10.53.57.11", "fd00::5357:5f0b"]).run(&sb).ok();
    let w = Watch::default();
    let baseline = Snapshot::take(&sb, &w);
    verdict(g, "a testenv daemon crashes: its namespace, veth and bridge port go; the others keep working", || {
        let mut envs: Vec<(u32, Child, Option<ChildStdin>)> = Vec::new();
        for n in [21, 22, 23] {
            let (child, stdin) = start_testenv(&Tag::of(&sb), &dir, n, parent);
            envs.push((n, child, Some(stdin)));
        }
        let pidfile = dir.join("env22/daemon.pid");
        assert!(
            wait_until(Duration::from_secs(5), || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n')))
        );
        let daemon: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let ns22 = netns_of(daemon);
        sb.must("ping -c1 -W5 10.53.57.22 >/dev/null");
        signal(daemon, Signal::SIGKILL);
        let crashed = Instant::now();
        let status = envs[1].1.wait().unwrap();
        assert_eq!(status.code(), Some(137), "start_in_ns.sh exits with the daemon's status (128+9)");
        assert!(
            wait_until(Duration::from_secs(5), || !sb.links().contains(&"veth22-br".to_owned())),
            "veth22-br stayed"
        );
        let gone = crashed.elapsed();
        assert!(wait_until(Duration::from_secs(5), || !netns_alive(ns22)), "the namespace stayed");
        assert_eq!(ports(&sb), ["veth21-br", "veth23-br"]);
        sb.must("ping -c1 -W5 10.53.57.21 >/dev/null && ping -c1 -W5 fd00::5357:5f17 >/dev/null");
        let p21 = envs[0].1.id();
        Cmd::new("ns-exec", &["-t", &p21.to_string(), "ping", "-c1", "-W5", "10.53.57.23"]).run(&sb).ok();
        let topo = Cmd::new("ns-ls", &["--topology", "-p", &parent.to_string()]).run(&sb).ok().to_owned();
        assert!(topo.contains("veth21-br") && topo.contains("veth23-br") && !topo.contains("veth22"), "{topo}");
        // start_in_ns.sh of 23 is SIGKILLed: its daemon runs on, still reachable; closing its
        // stdin (selftest's teardown) still ends it, and its veth goes.
        let daemon23: u32 = std::fs::read_to_string(dir.join("env23/daemon.pid")).unwrap().trim().parse().unwrap();
        signal(envs[2].1.id(), Signal::SIGKILL);
        envs[2].1.wait().unwrap();
        assert!(alive(daemon23), "the daemon died with start_in_ns.sh");
        sb.must("ping -c1 -W5 10.53.57.23 >/dev/null");
        drop(envs[2].2.take());
        assert!(wait_exit(daemon23, Duration::from_secs(5)), "the daemon ignored its stdin closing");
        assert!(
            wait_until(Duration::from_secs(5), || !ports(&sb).contains(&"veth23-br".to_owned())),
            "veth23-br stayed"
        );
        // The last ends as selftest ends them: stdin closed.
        drop(envs[0].2.take());
        assert_eq!(envs[0].1.wait().unwrap().code(), Some(0));
        assert_unchanged(&sb, &w, &baseline, Duration::from_secs(5));
        format!(
            "veth22-br left the bridge {:.0} ms after the crash; 21 and 23 still talk; start_in_ns.sh 23 SIGKILLed: its daemon ran on until its stdin closed",
            gone.as_secs_f64() * 1000.0
        )
    });
}

fn holder_crash() {
    let g = "faults/holder-crash";
    let mut sb = sandbox!(g);
    let hub = format!("{}-hub", sb.tag);
    let tag = Tag::of(&sb);
    let h2 = hub.clone();
    // Whatever happens, the testenvs go at the end.
    sb.on_drop(move || {
        let _ = tag.command(program_path("testenv")).arg("down").env("NSTOOLS_SELFTEST_LABEL", &h2).output();
    });
    let testenv = program_path("testenv");
    let run = |args: &[&str]| {
        count_runs(1);
        Run::of(
            sb.command(&testenv).args(args).env("NSTOOLS_SELFTEST_LABEL", &hub).output().unwrap(),
            format!("testenv {}", args.join(" ")),
        )
    };
    let w = Watch::default();
    let baseline = Snapshot::take(&sb, &w);
    verdict(g, "a testenv holder is SIGKILLed: its veth and port go; the others keep working", || {
        run(&["up", "hca:21", "hcb:22", "hcc:23"]).ok();
        let label_pid = |label: &str| -> u32 {
            Cmd::new("ns-ls", &["--label", label, "-n", "-o", "PID", "--no-interfaces"])
                .run(&sb)
                .ok()
                .trim()
                .parse()
                .unwrap()
        };
        let (hub_pid, b) = (label_pid(&hub), label_pid("hcb"));
        let ns_b = netns_of(b);
        signal(b, Signal::SIGKILL);
        let t = Instant::now();
        assert!(wait_exit(b, Duration::from_secs(2)));
        let ports_of_hub = || nstools_tests::names(&sb.ip_in(hub_pid, "link show master selftest0"));
        assert!(
            wait_until(Duration::from_secs(5), || !ports_of_hub().contains(&"veth22-br".to_owned())),
            "veth22-br stayed"
        );
        let gone = t.elapsed();
        assert!(wait_until(Duration::from_secs(5), || !netns_alive(ns_b)));
        assert_eq!(ports_of_hub(), ["veth21-br", "veth23-br"]);
        run(&["exec", "hca", "--", "ping", "-c1", "-W5", "10.53.57.23"]).ok();
        let ls = run(&["ls"]).ok().to_owned();
        assert!(!ls.contains("veth22"), "{ls}");
        run(&["down"]).ok();
        assert_unchanged(&sb, &w, &baseline, Duration::from_secs(2));
        format!(
            "veth22-br left the bridge {:.0} ms after the kill; the other two still talk; testenv down cleans up",
            gone.as_secs_f64() * 1000.0
        )
    });
}

/// The selftest run dies: every namespace tied to it with --exit-with is gone within a second.
fn selftest_dies() {
    let g = "faults/selftest-dies";
    let mut sb = sandbox!(g);
    let w = Watch::default();
    let baseline = Snapshot::take(&sb, &w);
    let selftest = sb.spawn(&["sleep", "infinity"], "sleep");
    let st = selftest.to_string();
    verdict(g, "selftest dies: every namespace tied to it with --exit-with is gone within a second", || {
        let hub: u32 = Cmd::new("ns-unshare", &["--map-root-user", "--exit-with", &st, "--name", "hub"])
            .run(&sb)
            .ok()
            .trim()
            .parse()
            .unwrap();
        let h = hub.to_string();
        Cmd::new("ns-exec", &["-t", &h, "br-attach", "--create", "--addr", "10.53.57.11/24"]).run(&sb).ok();
        let mut holders = vec![hub];
        for n in 21..29u32 {
            let pid = Cmd::new("ns-exec", &["-t", &h, "ns-unshare", "--exit-with", &st, "--name", &format!("env{n}")])
                .run(&sb)
                .ok()
                .trim()
                .to_owned();
            let script =
                format!("veth-pair veth{n} --netns {pid} --addr 10.53.57.{n}/24 && br-attach --timeout 0 veth{n}-br");
            Cmd::new("ns-exec", &["-t", &h, "sh", "-c", &script]).run(&sb).ok();
            holders.push(pid.parse().unwrap());
        }
        let inodes: Vec<u64> = holders.iter().map(|p| netns_of(*p)).collect();
        signal(selftest, Signal::SIGKILL);
        let start = Instant::now();
        for p in &holders {
            let left = Duration::from_secs(1).saturating_sub(start.elapsed());
            assert!(wait_exit(*p, left), "holder {p} outlived the selftest run by over a second");
        }
        let exited = start.elapsed();
        assert!(
            wait_until(Duration::from_secs(1).saturating_sub(start.elapsed()), || inodes
                .iter()
                .all(|i| !netns_alive(*i))),
            "namespaces still alive a second later"
        );
        let gone = start.elapsed();
        assert!(gone < Duration::from_secs(1));
        assert_unchanged(&sb, &w, &baseline, Duration::from_secs(1));
        format!(
            "{} holders (the rootless hub and 8 testenvs) exited {:.1} ms after the run died; namespaces gone after {:.1} ms",
            holders.len(),
            exited.as_secs_f64() * 1000.0,
            gone.as_secs_f64() * 1000.0
        )
    });
}
