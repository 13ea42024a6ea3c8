//! BENCHMARKS.md: the machine, how to reproduce, tables of medians and ratios, the targets and
//! where the time goes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use crate::driver::{Counts, Ctx, Plan, Sample, Size, Variant};
use crate::overheads::Overheads;
use crate::stats::{kb, median, ms, ratio};

/// The machine the run happened on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub date: String,
    pub load: String,
    pub load_end: String,
    pub rootless: bool,
    pub versions: Vec<String>,
    pub commit: Option<String>,
}

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty())
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        let mut versions = Vec::new();
        versions.extend(first_line("ip", &["-V"]));
        versions.extend(first_line("unshare", &["--version"]));
        versions.extend(first_line("sh", &["-c", "readlink -f /bin/sh"]).map(|s| format!("/bin/sh is {s}")));
        let commit = first_line("git", &["-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty"]);
        Machine {
            cpu,
            cores,
            kernel,
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
            load: loadavg(),
            load_end: String::new(),
            rootless: std::env::var_os("NSTOOLS_BENCH_ROOTLESS").is_some(),
            versions,
            commit,
        }
    }
}

/// Everything measured.
#[derive(Debug)]
pub struct Results {
    pub plan: Plan,
    pub samples: BTreeMap<(usize, Variant), Vec<Sample>>,
    pub counts: BTreeMap<Variant, Counts>,
    pub counts_note: Option<String>,
    pub overheads: Option<Overheads>,
    pub machine: Machine,
    pub command: String,
    pub seconds: f64,
    /// Runs that failed and were repeated (their errors).
    pub retried: Vec<String>,
}

/// Medians of one (N, variant): per-testenv setup, teardown, CPU; base.
#[derive(Debug, Clone, Copy)]
struct Cell {
    setup: f64,
    teardown: f64,
    cpu: f64,
    base: f64,
    runs: usize,
    /// The fastest and the slowest run's teardown, per testenv.
    teardown_range: (f64, f64),
}

fn cells(results: &Results) -> BTreeMap<(usize, Variant), Cell> {
    results
        .samples
        .iter()
        .map(|(&(n, v), s)| {
            let per = |f: fn(&Sample) -> f64| median(&s.iter().map(|x| f(x) / n as f64).collect::<Vec<_>>());
            let cell = Cell {
                setup: per(|x| x.setup),
                teardown: per(|x| x.teardown),
                cpu: per(|x| x.cpu),
                base: median(&s.iter().map(|x| x.base).collect::<Vec<_>>()),
                runs: s.len(),
                teardown_range: s
                    .iter()
                    .map(|x| x.teardown / n as f64)
                    .fold((f64::INFINITY, 0.0), |(lo, hi), t| (lo.min(t), hi.max(t))),
            };
            ((n, v), cell)
        })
        .collect()
}

fn get(c: &BTreeMap<(usize, Variant), Cell>, n: usize, v: Variant) -> Option<Cell> {
    c.get(&(n, v)).copied()
}

fn check(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// One target and how it went.
struct Target {
    what: String,
    result: String,
    met: Option<bool>,
}

fn targets(results: &Results, c: &BTreeMap<(usize, Variant), Cell>) -> Vec<Target> {
    let sizes: Vec<usize> = results.plan.sizes.iter().map(|s| s.0).collect();
    let mut out = Vec::new();
    let mut ratio_target = |what: &str, num: Variant, den: Variant, ok: &dyn Fn(f64) -> bool| {
        for &n in &sizes {
            let (Some(a), Some(b)) = (get(c, n, num), get(c, n, den)) else { continue };
            let (rs, rt) = (a.setup / b.setup, a.teardown / b.teardown);
            out.push(Target {
                what: format!("{what}, N={n}"),
                result: format!("setup {}, teardown {}", ratio(rs), ratio(rt)),
                met: Some(ok(rs)),
            });
        }
    };
    ratio_target("C at least 20× faster than A (A/C ≥ 20)", Variant::A, Variant::C, &|r| r >= 20.0);
    ratio_target("C faster than B (B/C > 1)", Variant::B, Variant::C, &|r| r > 1.0);
    ratio_target("D within 2× of E (D/E ≤ 2)", Variant::D, Variant::E, &|r| r <= 2.0);
    ratio_target("captures cost at most 10% (Cp/C ≤ 1.1)", Variant::Cp, Variant::C, &|r| r <= 1.1);
    for &n in sizes.iter().filter(|&&n| n == 20 || n == 60) {
        let (Some(a), Some(b)) = (get(c, n, Variant::A), get(c, n, Variant::C)) else { continue };
        out.push(Target {
            what: format!("C's strict teardown no slower than A's (A/C ≥ 1, medians of {} runs), N={n}", b.runs),
            result: format!(
                "teardown {} (runs, ms per testenv: A {}-{}, C {}-{})",
                ratio(a.teardown / b.teardown),
                ms(a.teardown_range.0),
                ms(a.teardown_range.1),
                ms(b.teardown_range.0),
                ms(b.teardown_range.1)
            ),
            met: Some(a.teardown / b.teardown >= 1.0),
        });
    }
    if let (Some(&lo), Some(&hi)) = (sizes.iter().min(), sizes.iter().max())
        && hi > lo
    {
        for v in [Variant::C, Variant::D] {
            let (Some(a), Some(b)) = (get(c, lo, v), get(c, hi, v)) else { continue };
            let (rs, rt) = (b.setup / a.setup, b.teardown / a.teardown);
            out.push(Target {
                what: format!("{} scales linearly (per testenv, N={hi} over N={lo} ≤ 1.3)", v.letter()),
                result: format!("setup {}, teardown {}", ratio(rs), ratio(rt)),
                met: Some(rs <= 1.3 && rt <= 1.3),
            });
        }
    }
    out
}

fn timed<'a>(o: &'a Overheads, label: &str) -> Option<&'a crate::overheads::Timed> {
    o.starts.iter().find(|t| t.label == label)
}

/// The report's headline lines (also printed at the end of a run).
pub fn summary(results: &Results) -> String {
    let c = cells(results);
    let mut out = String::new();
    for &(n, _) in &results.plan.sizes {
        let r = |a: Variant, b: Variant| match (get(&c, n, a), get(&c, n, b)) {
            (Some(x), Some(y)) => format!("{} / {}", ratio(x.setup / y.setup), ratio(x.teardown / y.teardown)),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "N={n}: setup / teardown ratios: A/C {}, B/C {}, D/E {}, Cp/C {}, Ds/E {}",
            r(Variant::A, Variant::C),
            r(Variant::B, Variant::C),
            r(Variant::D, Variant::E),
            r(Variant::Cp, Variant::C),
            r(Variant::Ds, Variant::E)
        );
    }
    if let Some(o) = &results.overheads
        && let (Some(a), Some(b)) = (timed(o, "ns-exec -t PID true"), timed(o, "nsenter -t PID --net true"))
    {
        let _ = writeln!(out, "ns-exec -t PID true {} ms, nsenter {} ms", ms(a.median), ms(b.median));
    }
    out
}

const VARIANTS_TEXT: &str = "\
Each variant builds the same thing, in a selftest namespace of its own: `selftest0` with
`10.53.57.11/24` and `fd00::5357:5f0b/112`, and N testenv namespaces, testenv *n* with `vethn` at
`10.53.57.n/24` and `fd00::5357:5fNN/112` (no DAD, up), its peer `vethn-br` attached to the
bridge, and a long-lived process; then the last testenv must answer a ping; then everything is
torn down.

| | variant | per testenv |
|---|---|---|
| A | iproute2 + util-linux as Samba's `selftest/ns` scripts do it: our shell reimplementation of the documented steps (`bench/variants/A/`) | selftest runs `unshare --net start_in_ns.sh` in the background (banner, `mk_nsenter.sh`, `ip` creates the pair inside and moves one end out, addresses, up, then the daemon), then `add_bridge_iface.sh` (checks for the interface, `sleep 0.1`, checks again..., then two `ip`), then waits for the daemon to run |
| B | the same without polling, a well-tuned iproute2 peer (`bench/variants/B/`) | the same scripts, but the peer is created in place (`ip link add vethn up type veth peer name vethn-br netns PID`), selftest waits for the daemon to run (a blocking read: the testenv is configured by then) and `add_bridge_iface.sh` is one `ip link set ... master selftest0 up`; no sleep |
| C | our drop-in scripts (`scripts/`), called exactly as Samba calls them (`bench/variants/C/`) | `unshare --net start_in_ns.sh` in the background (banner, nsenter.sh, one `veth-pair`, then the daemon), then `add_bridge_iface.sh` (`br-attach`, waiting by netlink notification), then waits for the daemon to run |
| Cp | C with captures: `NSTOOLS_PCAP_DIR` set to a tmpfs folder (`bench/variants/Cp/`) | as C, but `start_in_ns.sh` becomes `ns-exec --end-netns --capture` at once, whose child (veth-pair) makes the pair and becomes the daemon; the testenv's traffic is recorded until the daemon has ended. Once per run, `create_bridge.sh` starts the bridge's capture in the background |
| D | our binaries composed directly from the selftest side (`bench/variants/D/`) | `pid=$(ns-unshare)`; `veth-pair vethn --netns $pid --addr ... --addr ...`; `br-attach --timeout 0 vethn-br`. The holder is the long-lived process |
| Ds | D with the tools linked statically, as `scripts/install` installs them (`target/bench-profiles/crt-static/`: `RUSTFLAGS=-Ctarget-feature=+crt-static`) | as D: the same script, the static tools first on `PATH`; no dynamic loader at each start |
| E | the floor: D's kernel requests from one process, no process started but the holders (`bench/src/floor.rs`) | fork a holder (`nstools::holder`), open its namespace, a netlink socket inside it (setns there and back), then the same ten requests D's tools make (holder: `lo` up; veth-pair: the pair, look up, up, `lo` up, two addresses; br-attach: look up the bridge and the port, master + up) |
| L | D's library functions from one process (`bench/src/floor.rs`) | `holder::start`, `veth::create`, `bridge::run` (what the three binaries call), so D − L is the cost of starting processes and L − E that of the library's conveniences |

In A, B and C the long-lived process of a testenv is the daemon `bench/variants/daemon.sh` (one
`sh`: it says it runs through a FIFO, then reads its stdin until EOF), under `start_in_ns.sh`;
their teardown closes the daemons' stdin (as selftest does) and waits for the processes. In A
and B the kernel then destroys the testenv namespaces, and with them the veth pairs,
asynchronously, after the scripts have exited; C's `start_in_ns.sh` (`ns-exec --end-netns`) exits
only once its `vethn-br` is gone: when the daemon has ended it moves to selftest's namespace, lets
go of the testenv's and waits for the kernel to remove the peer (the kernel's uevent, filtered
in the kernel; whatever the daemon left running would get SIGTERM and the pair deleted). Before
this (commit 12c4875, the report of 2026-11-30), C's script looked for leftovers with `find`
over `/proc` and ran `veth-pair --delete` after each daemon: teardown 3.4 ms per testenv at N =
60 against A's 1.1 (A/C 0.32×). In D and E the holder is the long-lived process;
teardown is `ns-unshare --stop` of all holders (E: SIGTERM and wait), and each holder deletes its
veth pair before it exits.

Timed, per run (the driver stamps each line the variant prints as it arrives):
**setup** from the bridge being ready to all N testenvs being ready, divided by N; **teardown**
from the go-ahead to the moment the variant's processes have exited *and* no veth is left in
the selftest namespace (waited for by netlink notification), divided by N; **CPU** is user +
system time of all the run's processes (getrusage of the reaped children), divided by N - work
done by kernel threads, such as the asynchronous destruction of namespaces, is not in it.
**base** (selftest namespace and bridge, once per run) is not in the per-testenv figures. The
ping and the topology checks in between are not timed. The variants run interleaved, one run
of each in turn, so that machine noise hits all alike; figures are medians over the runs.";

pub fn render(results: &Results, ctx: &Ctx) -> String {
    let m = &results.machine;
    let c = cells(results);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Generated by `{}` on {}, in {:.0} s{}.\n",
        results.command,
        m.date,
        results.seconds,
        m.commit.as_deref().map(|c| format!(" (commit {c})")).unwrap_or_default()
    );
    let _ = writeln!(
        w,
        "Machine: {}, **{} cores**, **Linux {}**; load average {} at the start, {} at the end \
         (other work on the machine adds noise; the ratios, taken within one interleaved run, \
         are steadier than the absolute times). {}. {}.\n",
        m.cpu,
        m.cores,
        m.kernel,
        m.load,
        m.load_end,
        if m.rootless { "Run rootless (in a user namespace)" } else { "Run as root" },
        m.versions.join("; ")
    );
    let _ = writeln!(
        w,
        "To reproduce: `bench/run` (about 4 minutes on 2 cores, plus building three other release profiles the first time; then writes this file). \
         `bench/run --size quick` (N = 10 and 60) and `bench/run --size smoke` (a few seconds, what \
         CI runs) write `target/bench/` instead; `bench/run --help` lists the options. Everything \
         runs inside fresh network, mount and PID namespaces (`unshare`): the machine's own \
         interfaces and `/run/netns` are never touched.\n"
    );

    // Headline.
    let sizes: Vec<usize> = results.plan.sizes.iter().map(|s| s.0).collect();
    let _ = writeln!(w, "## Summary\n");
    let _ = writeln!(
        w,
        "| N | A/C setup | A/C teardown | B/C setup | B/C teardown | D/E setup | D/E teardown | Cp/C setup | Cp/C teardown | Ds/E setup | Ds/E teardown |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &sizes {
        let r = |a: Variant, b: Variant, f: fn(&Cell) -> f64| match (get(&c, n, a), get(&c, n, b)) {
            (Some(x), Some(y)) => ratio(f(&x) / f(&y)),
            _ => "-".into(),
        };
        let _ = writeln!(
            w,
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r(Variant::A, Variant::C, |x| x.setup),
            r(Variant::A, Variant::C, |x| x.teardown),
            r(Variant::B, Variant::C, |x| x.setup),
            r(Variant::B, Variant::C, |x| x.teardown),
            r(Variant::D, Variant::E, |x| x.setup),
            r(Variant::D, Variant::E, |x| x.teardown),
            r(Variant::Cp, Variant::C, |x| x.setup),
            r(Variant::Cp, Variant::C, |x| x.teardown),
            r(Variant::Ds, Variant::E, |x| x.setup),
            r(Variant::Ds, Variant::E, |x| x.teardown),
        );
    }
    let _ = writeln!(w);
    let targets = targets(results, &c);
    if !targets.is_empty() {
        let _ = writeln!(w, "| target | result | |");
        let _ = writeln!(w, "|---|---|---|");
        for t in &targets {
            let _ = writeln!(w, "| {} | {} | {} |", t.what, t.result, t.met.map_or("-", check));
        }
        let _ = writeln!(
            w,
            "\nA ratio target is judged on setup (the ratio of per-testenv medians); teardown is shown alongside.\n"
        );
    }

    // Setup and teardown.
    let _ = writeln!(w, "## Testenv setup and teardown\n\n{VARIANTS_TEXT}\n");
    if !results.retried.is_empty() {
        let _ = writeln!(
            w,
            "{} run(s) failed and were repeated (the figures are from the repetitions):\n",
            results.retried.len()
        );
        for e in &results.retried {
            let _ = writeln!(w, "- `{}`", e.lines().next().unwrap_or_default());
        }
        let _ = writeln!(w);
    }
    for &(n, _) in &results.plan.sizes {
        let _ = writeln!(w, "### N = {n}\n");
        let _ = writeln!(w, "| variant | setup / testenv | teardown / testenv | CPU / testenv | base | runs |");
        let _ = writeln!(w, "|---|---|---|---|---|---|");
        for &v in &results.plan.variants {
            let Some(x) = get(&c, n, v) else { continue };
            let _ = writeln!(
                w,
                "| {} {} | {} ms | {} ms | {} ms | {} ms | {} |",
                v.letter(),
                v.title(),
                ms(x.setup),
                ms(x.teardown),
                ms(x.cpu),
                ms(x.base),
                x.runs
            );
        }
        let _ = writeln!(w);
    }
    teardown_spread(w, results);
    if let (Some(&lo), Some(&hi)) = (sizes.iter().min(), sizes.iter().max())
        && hi > lo
    {
        let _ = writeln!(w, "### Scaling: per-testenv cost at N={hi} over N={lo}\n");
        let _ = writeln!(w, "| variant | setup | teardown | CPU |");
        let _ = writeln!(w, "|---|---|---|---|");
        for &v in &results.plan.variants {
            let (Some(a), Some(b)) = (get(&c, lo, v), get(&c, hi, v)) else { continue };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                v.letter(),
                ratio(b.setup / a.setup),
                ratio(b.teardown / a.teardown),
                ratio(b.cpu / a.cpu)
            );
        }
        let _ = writeln!(w);
    }

    // Where the time goes.
    let _ = writeln!(w, "## Where the time goes\n");
    if let Some(note) = &results.counts_note {
        let _ = writeln!(w, "{note}.\n");
    }
    if !results.counts.is_empty() {
        let (n1, n2) = results.plan.counts.unwrap_or((0, 0));
        let _ = writeln!(
            w,
            "Processes started per testenv over a whole run, setup and teardown, from `strace -f` (the \
             difference between runs with N={n1} and N={n2}, so that the once-per-run work drops out):\n"
        );
        let _ = writeln!(w, "| variant | processes | threads | programs executed |");
        let _ = writeln!(w, "|---|---|---|---|");
        for (v, k) in &results.counts {
            let mut execs: Vec<(&String, &f64)> = k.execs.iter().collect();
            execs.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
            let total: f64 = execs.iter().map(|e| e.1).sum();
            let list: Vec<String> = execs.iter().map(|(name, n)| format!("{name} {}", count(**n))).collect();
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} ({}) |",
                v.letter(),
                count(k.processes),
                count(k.threads),
                count(total),
                list.join(", ")
            );
        }
        let _ = writeln!(w);
    }
    if let Some(o) = &results.overheads {
        let starts: Vec<String> =
            ["true", "sh -c :", "ip -V", "unshare --version", "veth-pair --version", "br-attach --version"]
                .iter()
                .filter_map(|l| timed(o, l).map(|t| format!("`{l}` {} ms", ms(t.median))))
                .collect();
        let _ = writeln!(w, "Starting a process and waiting for it costs, on this machine: {}.\n", starts.join(", "));
    }
    let _ = writeln!(w, "{}", analysis(results, &c));

    if let Some(o) = &results.overheads {
        render_overheads(w, o, results, ctx);
    }
    // Figures measured apart from this run (the netem accuracy of the kernel matrix), when
    // their file is there: included as written.
    if let Ok(text) = std::fs::read_to_string(ctx.root.join("bench/netem-accuracy.md")) {
        let _ = writeln!(w, "\n{}", text.trim_end());
    }
    out
}

/// Teardown run by run: A (Samba's scripts, not strict) against C (the drop-ins, strict), the
/// minimum, median and maximum per testenv over the runs, so one noisy run cannot decide a ratio.
fn teardown_spread(w: &mut String, results: &Results) {
    let spread = |n: usize, v: Variant| -> Option<(f64, f64, f64)> {
        let s = results.samples.get(&(n, v))?;
        let per: Vec<f64> = s.iter().map(|x| x.teardown / n as f64).collect();
        let min = per.iter().copied().fold(f64::INFINITY, f64::min);
        let max = per.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((min, median(&per), max))
    };
    // Medians over the runs of a variant of one part of the teardown, per testenv.
    let part = |n: usize, v: Variant, f: fn(&Sample) -> f64| -> Option<f64> {
        let s = results.samples.get(&(n, v))?;
        Some(median(&s.iter().map(|x| f(x) / n as f64).collect::<Vec<_>>()))
    };
    let rows: Vec<String> = results
        .plan
        .sizes
        .iter()
        .filter_map(|&(n, reps)| {
            let (a, c) = (spread(n, Variant::A)?, spread(n, Variant::C)?);
            let gone = |v| part(n, v, |x| x.peers_gone);
            // How long after its last peer went C's processes had exited, in the whole run.
            let lag = part(n, Variant::C, |x| x.exited - x.peers_gone)? * n as f64;
            Some(format!(
                "| {n} | {reps} | {} ({}-{}) ms | {} ({}-{}) ms | {} | {} ms | {} ms | {} ms |",
                ms(a.1),
                ms(a.0),
                ms(a.2),
                ms(c.1),
                ms(c.0),
                ms(c.2),
                ratio(a.1 / c.1),
                ms(gone(Variant::A)?),
                ms(gone(Variant::C)?),
                ms(lag)
            ))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "### Teardown run by run: A (Samba's scripts) against C (the drop-ins)\n\n\
         Per testenv, median (minimum-maximum) over the runs, from the daemons' stdin closing until \
         every `vethN-br` is gone from the bridge and every process has exited. C is strict (its \
         `start_in_ns.sh` exits once its `vethN-br` is gone); A's scripts exit before the kernel \
         has destroyed the namespace, and the run waits for that too. *Peers gone* is when the \
         last `vethN-br` went (per testenv, median): the kernel's work, in both; *C exits after* \
         is how long after that C's last process had exited (the whole run, median): what \
         strictness costs on top.\n"
    );
    let _ = writeln!(
        w,
        "| N | runs | A teardown | C teardown | A/C (medians) | A peers gone | C peers gone | C exits after |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(w, "{r}");
    }
    let _ = writeln!(w);
}

fn count(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 { format!("{}", x.round() as i64) } else { format!("{x:.1}") }
}

/// Notes on the targets, computed from the figures.
fn analysis(results: &Results, c: &BTreeMap<(usize, Variant), Cell>) -> String {
    let mut out = String::new();
    let sizes: Vec<usize> = results.plan.sizes.iter().map(|s| s.0).collect();
    let Some(&n) = sizes.iter().find(|&&n| n == 60).or(sizes.iter().max()) else { return out };
    let execs = |v: Variant| results.counts.get(&v).map(|k| k.execs.values().sum::<f64>());
    let start = results.overheads.as_ref().and_then(|o| timed(o, "true")).map(|t| t.median);
    let starts = |k: f64| {
        start.map_or(String::new(), |t| format!(" (~{} ms at the {} ms of starting `true` here)", ms(k * t), ms(t)))
    };
    if let (Some(a), Some(cc)) = (get(c, n, Variant::A), get(c, n, Variant::C)) {
        let sleeps = results.counts.get(&Variant::A).and_then(|k| k.execs.get("sleep")).copied();
        let _ = writeln!(
            out,
            "- **A against C** (N={n}): A/C = {}. A spends {} ms per testenv: its attach step looks for the \
             interface before the testenv's script has made it, sleeps 0.1 s{}, and looks again; the \
             rest is its chain of {} programs. C's `br-attach` wakes on the kernel's notification \
             instead. C's scripts start {} programs per testenv over a run, 7 of them to set it up, five \
             one after the other (`unshare` → `start_in_ns.sh` → `chmod` of nsenter.sh → `veth-pair` → \
             the daemon; `add_bridge_iface.sh` and `br-attach` run meanwhile){}. For A/C ≥ 20, C \
             would have to set up a testenv in {} ms{}.",
            ratio(a.setup / cc.setup),
            ms(a.setup),
            sleeps.map_or(String::new(), |s| format!(" ({} `sleep` per testenv here)", count(s))),
            execs(Variant::A).map_or("several".into(), count),
            execs(Variant::C).map_or("several".into(), count),
            starts(5.0),
            ms(a.setup / 20.0),
            match (start, get(c, n, Variant::E)) {
                (Some(t), Some(e)) if 5.0 * t + e.setup >= a.setup / 20.0 => format!(
                    "; those five starts plus the kernel's own work for a testenv (E: {} ms) come to \
                     {} ms already, so no script chain that starts them one after the other reaches \
                     20× on this machine",
                    ms(e.setup),
                    ms(5.0 * t + e.setup)
                ),
                (Some(t), Some(e)) => format!(
                    "; those five starts plus the kernel's own work for a testenv (E: {} ms) come to \
                     {} ms, the rest of C's time is the scripts' own work and waiting",
                    ms(e.setup),
                    ms(5.0 * t + e.setup)
                ),
                _ => String::new(),
            },
        );
    }
    let td: Vec<String> = [Variant::A, Variant::B, Variant::C, Variant::D, Variant::E]
        .iter()
        .filter_map(|&v| get(c, n, v).map(|x| format!("{} {}", v.letter(), ms(x.teardown))))
        .collect();
    if !td.is_empty() {
        let _ = writeln!(
            out,
            "- **Teardown** (N={n}, ms per testenv): {}. A and B end a testenv by ending its processes; \
             the kernel then destroys the namespace, and the pair with it, asynchronously and in \
             batches: cheap per testenv when many go at once. C's `start_in_ns.sh` (`ns-exec \
             --end-netns`) lets go of the namespace in the same way when its daemon has ended, then \
             waits for the kernel to remove its `vethN-br` (the kernel's uevent, subscribed to \
             once the daemon has ended, filtered in the kernel) and exits: the same batches, and a \
             process that exits a fraction of a millisecond after its peer went (the table above). \
             The kernel destroys namespaces one batch at a time, each batch taking an RCU grace \
             period or two whatever its size; the first batch takes the one or two namespaces \
             released before it began, the next all the others, so a teardown costs about two \
             batches in A and C alike, and which of them is faster in one run is decided by when \
             the first batch began. D's and E's holders delete their pairs themselves, one by one, \
             after a scan of `/proc` for other users of the namespace (see below).",
            td.join(", ")
        );
    }
    if let (Some(b), Some(cc)) = (get(c, n, Variant::B), get(c, n, Variant::C)) {
        let verdict = if b.setup > cc.setup { "faster" } else { "**slower**" };
        let _ = writeln!(
            out,
            "- **B against C** (N={n}): C is {verdict} than B ({} against {} ms per testenv). Without the \
             sleeps, both are chains of process starts: B runs {} programs per testenv, C {}; CPU per \
             testenv is {} ms for B and {} ms for C.",
            ms(cc.setup),
            ms(b.setup),
            execs(Variant::B).map_or("several".into(), count),
            execs(Variant::C).map_or("several".into(), count),
            ms(b.cpu),
            ms(cc.cpu),
        );
    }
    if let (Some(d), Some(e)) = (get(c, n, Variant::D), get(c, n, Variant::E)) {
        let _ = write!(
            out,
            "- **D against E** (N={n}): D/E = {} for setup. E does the kernel's work for a testenv in {} ms \
             (CPU {} ms); D does the same requests from {} programs started one after the other, plus \
             the fork of the `$(ns-unshare)` substitution{}",
            ratio(d.setup / e.setup),
            ms(e.setup),
            ms(e.cpu),
            execs(Variant::D).map_or("several".into(), count),
            starts(3.0),
        );
        if let Some(l) = get(c, n, Variant::L) {
            let _ = write!(
                out,
                ". L, the library functions D's binaries call, without starting them, takes {} ms: \
                 starting the three processes costs D {} ms per testenv, the library's own conveniences \
                 (target checks, a helper thread per foreign namespace) {} ms",
                ms(l.setup),
                ms(d.setup - l.setup),
                ms(l.setup - e.setup)
            );
        }
        let floor = start.map_or(String::new(), |t| {
            format!(
                " with three process starts at `true`'s cost and nothing else, D would take {} ms, \
                 D/E = {}.",
                ms(e.setup + 3.0 * t),
                ratio((e.setup + 3.0 * t) / e.setup)
            )
        });
        let _ = writeln!(
            out,
            ". D/E ≤ 2 needs a process start to cost no more than a third of E's {} ms;{floor} The \
             profile table below shows what static linking saves of a start. Teardown: D {} ms, E {} \
             ms per testenv.",
            ms(e.setup),
            ms(d.teardown),
            ms(e.teardown)
        );
    }
    if let (Some(&lo), Some(&hi)) = (sizes.iter().min(), sizes.iter().max())
        && hi > lo
    {
        for v in [Variant::C, Variant::D, Variant::E] {
            let (Some(a), Some(b)) = (get(c, lo, v), get(c, hi, v)) else { continue };
            let grew: Vec<String> = [("setup", a.setup, b.setup), ("teardown", a.teardown, b.teardown)]
                .iter()
                .filter(|(_, x, y)| y / x > 1.3)
                .map(|(what, x, y)| format!("{what} {} → {} ms", ms(*x), ms(*y)))
                .collect();
            if !grew.is_empty() {
                let _ = writeln!(
                    out,
                    "- **{} does not scale linearly** from N={lo} to N={hi}: {} per testenv; CPU per \
                     testenv {} → {} ms{}.",
                    v.letter(),
                    grew.join(", "),
                    ms(a.cpu),
                    ms(b.cpu),
                    if b.cpu / a.cpu > 1.3 {
                        " (the work per testenv grows, not only the waiting)"
                    } else {
                        " (the CPU work per testenv grows less: the rest is waiting, for the kernel or for a CPU)"
                    }
                );
            }
        }
    }
    if let (Some(&lo), Some(&hi)) = (sizes.iter().min(), sizes.iter().max())
        && hi > lo
        && let (Some(a), Some(b)) = (get(c, lo, Variant::C), get(c, hi, Variant::C))
        && b.cpu / a.cpu > 1.3
    {
        let _ = writeln!(
            out,
            "- **C's CPU per testenv grows** from N={lo} to N={hi} ({} → {} ms) though its time per \
             testenv does not: at teardown each `start_in_ns.sh` scans every process's \
             `/proc/PID/ns/net` (its `find`), and there are more processes the more testenvs run - \
             O(N) per testenv, O(N²) in all.",
            ms(a.cpu),
            ms(b.cpu)
        );
    }
    let _ = writeln!(out, "\n{BY_HAND}\n{CAPTURES_BY_HAND}\n{TEARDOWN_BY_HAND}");
    out
}

/// What was found with perf and strace by hand (not re-measured by the command).
const BY_HAND: &str = "\
Found by hand with `perf record -e cpu-clock -g` and `perf stat` on runs of variant E with 60 and 250
testenvs (2-core VM, Linux 6.18, inside a PID namespace with ~N processes; not re-measured by
`bench/run`):
- The kernel's work dominates E: creating and configuring the links (`rtnl_newlink`: the pair with
  its sysfs and sysctl entries, up, master) ~20-25% of its CPU, deleting the pairs (`rtnl_dellink`)
  ~18%, the namespaces (`copy_net_ns`) ~8-12%, the bridge ports (`br_add_if`) 3-5%.
- What grows with N is mostly one thing: `readlink` of `/proc/PID/ns/net`, 6% of E's CPU at N=60
  and 20% at N=250. Each holder, as it exits, checks every process for another user of its
  namespace before it deletes its veth pair (so that it never pulls the interface from under a
  process that still uses it): O(processes) per holder, O(N × processes) for a teardown, ~0.5 ms
  per holder with 250 processes, more on a machine with more. `br_add_if` (2.6% → 5.5%) and sysctl
  registration (2.6% → 5%) grow too: the bridge and the selftest namespace hold all N peers.
- A process start is mostly the kernel's exec and page faults: `ns-exec --version` takes ~0.8 ms of
  CPU and 80 page faults (`perf stat`), `true` 0.5 ms and 47, `ip -V` 1.1 ms and 115; the same
  binary linked statically takes 0.6 ms and 50 (no dynamic loader, no libgcc_s). The tools' own
  work in user space (argument parsing, the library) is small: L, all of it in one process, is
  close to E.
- Before the drop-in scripts were trimmed, C ran 19 programs per testenv (7 `dirname`, 3 `sed`,
  `readlink`, a second `sh` for mk_nsenter.sh...) and took 3 times as long as it does now; they now
  use shell built-ins only, besides the tools and one `chmod` (to make nsenter.sh executable).
";

/// What the captures of Cp cost, found by hand (counters in `ns-exec`, not re-measured).
const TEARDOWN_BY_HAND: &str = "\
Teardown (A and C, N=60; the kernel's scheduler trace - `sched_switch`, `sched_wakeup` - and its
`cleanup_net` work items, 3-9 runs per case, 2-core VM, Linux 6.18; not re-measured by `bench/run`):
- Both end in two batches: the first holds the one namespace released before it began (its
  processes, or C's `ns-exec`, let go within 1-3 ms of the daemons' stdin closing) and lasts
  16-50 ms whatever its size (RCU grace periods: the spread between runs is the grace periods'
  own); the second holds the other 59 and removes their interfaces one namespace at a time, each
  with an expedited grace period, ~0.4 ms each, then waits for a last grace period.
- From the second batch's beginning to the last `vethN-br`'s removal, A took 21-25 ms (median 24).
  With 120 idle sockets subscribed to rtnetlink groups in another namespace (receiving nothing),
  A took 29-31 ms: the kernel walks every socket subscribed to any rtnetlink group on the machine
  for every rtnetlink notification of every namespace. C's 60 waiting `ns-exec` held exactly that,
  two each (link and namespace-id notifications), and took 31-37 ms. They now wait on the
  kernel's uevents: 23-30 ms under the same trace, median 31 against A's 24 under a lighter one
  (7 runs each). Uevent sockets are a list of their own, but every uevent of a namespace (~4 per
  interface that goes: the device, its queues, its bridge port) still walks every uevent socket
  subscribed there: A with 60 idle filtered uevent sockets in selftest's namespace took 1.14
  against A's 1.02 ms per testenv (C 1.18; 9 interleaved runs, 2026-12-05), within the spread of
  runs. `ns-exec` has since subscribed only once its daemon has ended (not while it runs), which
  the teardown itself cannot avoid: C before and after, interleaved, 15 runs each, twice: median
  1.10 against 0.98 and 1.01 against 1.07 ms per testenv - no difference the grace periods' spread
  lets a run of 15 show.
- What is left of the gap: C's 60 processes exit in that window, as their peers go (0.25 ms of CPU
  each, mostly unmapping memory, with TLB shootdowns sent to the CPU doing the kernel's work), and
  the kernel's worker waits longer for its expedited grace periods (8.5 against 1.5 ms asleep
  there). Delaying those exits by 300 ms by hand did not close it (last peer 1.12 against 0.88 ms
  per testenv, 9 runs), and C's first batch ran longer in the same traces (median 45 against
  29-38 ms), which the trace does not explain. C's last process exits 0.3-0.7 ms after the last
  peer went (the table above): strictness itself costs nearly nothing.
- Samba's selftest ends testenvs one after the other and looks for each one's processes once a
  second (`teardown_env`: `cleanup_child`, then `sleep(1)`), so a batch of 16-50 ms does not show
  there, strict or not.
";

const CAPTURES_BY_HAND: &str = "\
Captures (Cp, N=250; counters added to `ns-exec` by hand, 2-core VM, not re-measured by `bench/run`):
- Every testenv's capture receives every packet the bridge floods to its port: ~750 per capture
  at N=250 (8 at N=10), O(N) per testenv and O(N²) in all. In the first testenv's file (1,216
  packets) 805 are MLDv2 reports, 231 neighbour solicitations (duplicate address detection), 178
  router solicitations: each new testenv's IPv6 start-up, flooded because the bridge has no
  multicast querier; 1 ARP, 1 IGMP.
- Woken once per packet, a capture read 1.8-2 packets per wakeup (~420 reads per capture) at 7-9 µs
  per packet (`recvmsg`, the pcapng block, a flush per read), 10-14 ms of CPU per capture. Resting
  between small reads (~16 ms here: 64 MiB granted, filled at 4 GB/s) it reads 6.8 per wakeup
  (~107 reads), 3-4 µs per packet, 8.6-8.8 ms of CPU per capture, of which ~4 ms is its fixed cost
  (start, `--end-netns`; measured at N=10). Cp/C over 8 interleaved runs: setup 1.35× → 1.21×
  (medians; single runs 0.97-1.61×), CPU 1.84× → 1.58×.
- Why Cp/C stays above 1.15 at N=250: the packets themselves. ~750 packets × 3-4 µs is 2-3 ms per
  testenv in the capture alone, plus the kernel's delivery of each flooded packet to ~250 sockets,
  against C's 9-12 ms of setup (the machine's speed varies between reports), and the count grows
  with N. Longer rests only trim the per-wakeup part (a 31 ms rest, 128 MiB granted: CPU 1.37×,
  setup ~1.25×); a rest the buffer cannot absorb loses packets (a `ping -f` on loopback fills a
  buffer at 0.8-1.7 GB/s here). What would remove the packets is multicast snooping with a
  querier on the bridge (`multicast_querier`), so that reports and solicitations reach only the
  ports that asked for them. Tried by hand (2026-12-06;
  `mcast_querier 1` on `selftest0`, two testenvs made as C makes them once the querier had run
  12 s): the first `ping -6` between them failed (address unreachable after 3 s), as the bridge
  had not learnt the solicited-node group of `veth21`'s address - its report was sent when the
  address was added, before `vethN-br` was a port, and is repeated only in answer to a query. A
  querier makes a new testenv unreachable over IPv6 until it answers a query (125 s apart by
  default); not done.
- The packets, not the capture's own start: shown by leaving them out (2026-12-06, 20:20; a harness
  by hand that calls `start_in_ns.sh` as selftest does and times each testenv with bash's clock,
  slower per testenv than `bench/run`'s driver; N=250, 6 interleaved runs each, medians): C 10.1
  ms per testenv, Cp 13.1 ms (1.29×), Cp with each testenv's capture bound to `lo` alone
  (`--capture-interface lo`: no flooded packet reaches it) 10.8 ms (1.06×). Cp's time grows along
  the run as the captures multiply (medians of each fifty testenvs: 8.5, 9.4, 10.4, 12.1, 13.7
  ms); C's barely (7.8 to 8.9 ms), the `lo`-only captures' as little (8.2 to 9.4 ms). CPU of the
  whole run: Cp 4.7 s, C 3.3 s, `lo`-only 3.5 s, the kernel's part most of the difference (sys
  1.9 against 1.0-1.2 s). In the same runs, with the scripts of before `veth-pair ... -- CMD`
  (`start_in_ns.sh`'s capture path ran a shell that made the pair and then became the daemon;
  now `veth-pair` becomes it): Cp 14.1 → 13.1 ms, C 10.5 → 10.1 ms (its plain path lost a fork).
- Closing a packet socket costs an RCU grace period: the kernel's `packet_release()` calls
  `synchronize_net()` whatever the socket did, 16 ms here (`close` under `strace -T`; `ns-exec
  --capture F -- true` takes 16.9 ms against 1.3 ms without the capture, run after run). Any
  program that closes one pays it, tcpdump too. Cp pays it once per testenv at teardown (all at
  once there, so the grace periods overlap) and once in `create_bridge.sh`'s check (a capture on
  `lo` that tries the folder, the file and the privilege before the bridge is made): most of Cp's
  longer base. Closing in another process would not end the namespace sooner: it goes only once
  the socket is gone.
- The whole machine during one Cp run against one C run (N=250, 2026-12-06; `perf stat -a` on
  syscall tracepoints, `perf record -a` at 1 kHz): per capture, 737 `recvmsg` (one per packet),
  162 `ppoll` (its wakeups, ~4.5 packets each) and 90 `write` (flushes); 26,000 more context
  switches in all (~105 per testenv). Cp's `ns-exec` processes took 1,226 more CPU samples than
  C's (~4.9 ms per testenv): ~300 in its own code and the C library (the pcapng blocks,
  allocation), ~280 in `ppoll` (sleeping and waking), ~160 in `recvmsg`, ~80 in `write`, ~170
  in `readlink` and `getdents` of `/proc` at teardown (below), the rest spread; all other
  processes together ~1,250 more (among them the kernel delivering the flooded packets: softirq
  work charged to whoever sent them). A packet ring (`TPACKET_V3`) would save at most the `recvmsg`
  part, about an eighth of the capture's cost (not tried); the packets' count stays.
- Teardown, slower with captures (most at N=250): the capture holds its namespace (its socket),
  so the kernel cannot begin destroying it when the daemon ends, and `ns-exec` looks for
  processes left in it before letting go: a `readlink` of `/proc/PID/ns/net` per process on the
  machine (94,000 in that run, ~376 per testenv). Without a capture the kernel's prompt
  destruction says that nothing else is inside, and nothing is scanned.
";

fn render_overheads(w: &mut String, o: &Overheads, results: &Results, ctx: &Ctx) {
    let _ = writeln!(w, "## Tool overheads\n");
    let _ = writeln!(
        w,
        "### Entering a namespace, and starting a process\n\nWall time of starting the command and waiting \
         for it, from the benchmark's process; median of {} runs each, all commands interleaved. \
         PID is a holder made by `ns-unshare`.\n",
        results.plan.exec_runs
    );
    if let (Some(a), Some(b)) = (timed(o, "ns-exec -t PID true"), timed(o, "nsenter -t PID --net true")) {
        let _ = writeln!(w, "**ns-exec / nsenter = {}**\n", ratio(a.median / b.median));
    }
    let _ = writeln!(w, "| command | median |");
    let _ = writeln!(w, "|---|---|");
    for t in &o.starts {
        let _ = writeln!(w, "| `{}` | {} ms |", t.label, ms(t.median));
    }
    let _ = writeln!(w);

    for l in &o.listing {
        let _ = writeln!(w, "### Listing {} namespaces\n", l.count);
        let seen: Vec<String> = l.seen.iter().map(|(what, n)| format!("{what} {n}")).collect();
        let _ = writeln!(
            w,
            "{} namespaces, each held by a holder process, bound at `/run/netns/benchI` (so that \
             `ip netns` sees them) and holding a veth `fxI` with two addresses, its peer in the \
             benchmark's namespace. Lines printed: {}. `ns-ls` lists every namespace with its \
             holder, interfaces, addresses and veth peers; `--no-interfaces` is the `lsns` \
             equivalent (namespaces and processes); the two `ip` lines are the iproute2 way to get \
             the addresses of every named namespace (one process per namespace). Median of {} runs \
             each, interleaved; peak memory from one run.\n",
            l.count,
            seen.join(", "),
            l.rows.first().map_or(0, |r| r.runs)
        );
        let base = l.rows.iter().find(|r| r.label == "ns-ls").map(|r| r.median);
        let _ = writeln!(w, "| command | median | / ns-ls | max RSS |");
        let _ = writeln!(w, "|---|---|---|---|");
        for r in &l.rows {
            let _ = writeln!(
                w,
                "| `{}` | {} ms | {} | {} |",
                r.label,
                ms(r.median),
                base.map_or("-".into(), |b| ratio(r.median / b)),
                r.maxrss.map_or("-".into(), kb)
            );
        }
        let _ = writeln!(w);
    }

    render_rates(w, o);
    let _ = writeln!(w, "### Memory\n");
    if let Some((rss, anon)) = o.holder {
        let _ = writeln!(
            w,
            "An idle holder (`ns-unshare`, from `/proc/PID/status`): VmRSS {}, of which RssAnon {} \
             (private; the rest is shared pages of the binary and libc).\n",
            kb(rss),
            kb(anon)
        );
    }
    let _ = writeln!(
        w,
        "Peak resident memory (getrusage `ru_maxrss` of the child, which the probe forks from \
         itself and executes: the first line is the floor of the method), median of 3:\n"
    );
    let _ = writeln!(w, "| what | command | max RSS |");
    let _ = writeln!(w, "|---|---|---|");
    for (what, cmd, k) in &o.maxrss {
        let _ = writeln!(w, "| {what} | `{cmd}` | {} |", kb(*k));
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "### Binary sizes\n");
    let _ = writeln!(w, "`[profile.release]`: `{}`.\n", o.profile_settings);
    let _ = writeln!(w, "| binary | size | stripped |");
    let _ = writeln!(w, "|---|---|---|");
    for s in &o.sizes {
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            s.name,
            kb(s.bytes.div_ceil(1024)),
            s.stripped.map_or("?", |x| if x { "yes" } else { "no" })
        );
    }
    let total: u64 = o.sizes.iter().map(|s| s.bytes).sum();
    let _ = writeln!(w, "| total | {} | |\n", kb(total.div_ceil(1024)));
    if !o.profiles.is_empty() {
        let exec = timed(o, "ns-exec -t PID true").map_or(f64::NAN, |t| t.median);
        let ls = o.listing.last().and_then(|l| l.rows.iter().find(|r| r.label == "ns-ls").map(|r| (l.count, r.median)));
        let _ = writeln!(
            w,
            "Other release profiles, built by `bench/run` into `target/bench-profiles/` and measured \
             in the same interleaved runs as above:\n"
        );
        let _ = writeln!(
            w,
            "| profile | total size | `ns-exec -t PID true` | `ns-ls`{} |",
            ls.map_or(String::new(), |l| format!(", {} namespaces", l.0))
        );
        let _ = writeln!(w, "|---|---|---|---|");
        let _ = writeln!(
            w,
            "| this workspace's | {} | {} ms | {} |",
            kb(total.div_ceil(1024)),
            ms(exec),
            ls.map_or("-".into(), |l| format!("{} ms", ms(l.1)))
        );
        for p in &o.profiles {
            let size: u64 = p.sizes.iter().map(|s| s.1).sum();
            let _ = writeln!(
                w,
                "| `{}` | {} | {} ms | {} |",
                p.settings,
                kb(size.div_ceil(1024)),
                ms(p.exec),
                p.listing.map_or("-".into(), |l| format!("{} ms", ms(l.1)))
            );
        }
        let _ = writeln!(w);
    }
    let _ = ctx;
    if results.plan.size != Size::Full {
        let _ = writeln!(w, "_This is a {:?} run: too small for conclusions._", results.plan.size);
    }
}

fn render_rates(w: &mut String, o: &Overheads) {
    if o.rates.is_empty() && o.rates_skipped.is_none() {
        return;
    }
    let _ = writeln!(w, "### Rate limits\n");
    if let Some(why) = &o.rates_skipped {
        let _ = writeln!(w, "Not measured: {why}.\n");
        return;
    }
    let _ = writeln!(
        w,
        "Two testenvs (`scripts/testenv`); what `src` sends limited with `testenv shape src --rate RATE` \
         (veth-pair sets a tbf qdisc by netlink); then TCP payload from `src` to `dst` (python3 at \
         both ends), timed from the first byte sent to the receiver's byte count coming back. The \
         payload is what an application gets: the rate also carries the TCP/IP and Ethernet headers \
         (66 of every 1,514 bytes of a full segment, 4.4%) and the ACKs' way back is not limited.\n"
    );
    let _ = writeln!(w, "| rate | sent | payload rate (median) | runs | payload / rate |");
    let _ = writeln!(w, "|---|---|---|---|---|");
    for r in &o.rates {
        let m = median(&r.mbit);
        let _ = writeln!(
            w,
            "| `--rate {}` | {} kB | {:.2} Mbit/s | {} | {:.1}% |",
            r.rate,
            r.bytes / 1000,
            m,
            r.mbit.len(),
            100.0 * m / r.asked_mbit
        );
    }
    let _ = writeln!(w);
}
