//! The driver: the setup/teardown benchmark of variants A to E (and L) and the process counts
//! behind them, with what the later layers share (the plan, the context, the processes a run
//! tagged). Layers, each using only those before it: `stats` <- `driver` <- `overheads` <-
//! `report` <- `main` (isolation and the run's order).
//!
//! One run of a variant: the driver starts it (`unshare --net VARIANT/selftest.sh`, or this
//! binary's `floor` for E and L) and times the `@bench` lines it prints as they arrive:
//! `base` (selftest namespace and bridge ready), `setup` (N testenvs ready). After `ping ok`
//! the driver checks the topology (untimed), then writes `go`: teardown starts. It ends when
//! the variant has printed `teardown` (its testenvs' processes have exited) *and* the selftest
//! namespace is back to its baseline (no veth left: for the variants whose testenv namespaces
//! the kernel destroys asynchronously, the driver waits for it by netlink notification).
//! Then: no process carrying the run's tag may be left, and the driver's own namespace must be
//! as it was.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Args, ValueEnum};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::time::TimeValLike;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use nstools::netlink::Netlink;
use nstools::netlink::watch::{LinkWatch, Wake};
use nstools::netns::Netns;
use nstools::vocab::LinkKind;

/// How much to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Size {
    /// A few seconds, checks that everything works (CI): N = 2, one repetition
    Smoke,
    /// N = 10 and 60, three repetitions; listing with 100 namespaces
    Quick,
    /// N = 10, 20, 60 and 250 (5, 5, 5 and 3 repetitions); listing with 100 and 1,000 namespaces
    Full,
}

/// `nstools-bench run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// How much to run
    #[arg(long, value_enum, default_value_t = Size::Full)]
    pub size: Size,
    /// Testenv counts to run, instead of the size's (e.g. 10,60)
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Repetitions per testenv count, instead of the size's
    #[arg(long)]
    pub reps: Option<usize>,
    /// At most this many repetitions of variant A (the slow one) per testenv count
    #[arg(long)]
    pub reps_a: Option<usize>,
    /// Variants to run (letters of ABCPDSEL; P is Cp, C with captures; S is Ds, D with the
    /// statically linked tools, built by bench/run into target/bench-profiles/crt-static)
    #[arg(long, default_value = "ABCPDSEL")]
    pub variants: String,
    /// Where to write the report [default: BENCHMARKS.md for --size full, else
    /// target/bench/BENCHMARKS-SIZE.md]
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Skip the tool overheads
    #[arg(long)]
    pub no_overheads: bool,
    /// Skip the process counts (strace)
    #[arg(long)]
    pub no_counts: bool,
    /// Skip the comparison of release profiles (built by bench/run into target/bench-profiles)
    #[arg(long)]
    pub no_profiles: bool,
    /// The workspace [default: the one this binary was built from]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The command line shown in the report as the way to reproduce it
    #[arg(long, hide = true)]
    pub command: Option<String>,
    /// Set when re-executed in the fresh namespaces
    #[arg(long, hide = true)]
    pub isolated: bool,
}

/// The variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    A,
    B,
    C,
    /// C with captures (NSTOOLS_PCAP_DIR set).
    Cp,
    D,
    /// D with the statically linked tools (as `scripts/install` installs them).
    Ds,
    E,
    L,
}

impl Variant {
    pub const ALL: [Variant; 8] =
        [Variant::A, Variant::B, Variant::C, Variant::Cp, Variant::D, Variant::Ds, Variant::E, Variant::L];

    /// The letter that names it in `--variants`.
    fn code(self) -> char {
        match self {
            Variant::Cp => 'P',
            Variant::Ds => 'S',
            v => v.letter().chars().next().unwrap_or('?'),
        }
    }

    pub fn letter(self) -> &'static str {
        match self {
            Variant::A => "A",
            Variant::B => "B",
            Variant::C => "C",
            Variant::Cp => "Cp",
            Variant::D => "D",
            Variant::Ds => "Ds",
            Variant::E => "E",
            Variant::L => "L",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Variant::A => "iproute2 + util-linux as Samba's scripts do it (attach polls with sleep 0.1)",
            Variant::B => "iproute2 tuned: the same without polling, peer created in place",
            Variant::C => "our drop-in scripts, called as Samba calls them",
            Variant::Cp => "C with captures (NSTOOLS_PCAP_DIR set)",
            Variant::D => "our binaries composed from the selftest side",
            Variant::Ds => "D with the tools linked statically, as scripts/install installs them",
            Variant::E => "the floor: D's kernel requests from one process",
            Variant::L => "D's library functions from one process",
        }
    }

    pub fn script(self) -> Option<&'static str> {
        match self {
            Variant::A => Some("A/selftest.sh"),
            Variant::B => Some("B/selftest.sh"),
            Variant::C => Some("C/selftest.sh"),
            Variant::Cp => Some("Cp/selftest.sh"),
            Variant::D | Variant::Ds => Some("D/selftest.sh"),
            Variant::E | Variant::L => None,
        }
    }
}

/// One run of a variant; times in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Selftest namespace and bridge.
    pub base: f64,
    /// The N testenvs.
    pub setup: f64,
    /// Their removal, until the selftest namespace is back to its baseline: the later of
    /// `peers_gone` and `exited`.
    pub teardown: f64,
    /// From the go-ahead until the last veth was gone from the selftest namespace.
    pub peers_gone: f64,
    /// From the go-ahead until the variant's processes had exited.
    pub exited: f64,
    /// CPU time (user + system) of every process of the run.
    pub cpu: f64,
}

/// What the plan says to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub size: Size,
    /// (N, repetitions).
    pub sizes: Vec<(usize, usize)>,
    pub reps_a: Option<usize>,
    pub variants: Vec<Variant>,
    /// Runs of each command in the process-start comparison.
    pub exec_runs: usize,
    /// (namespaces, runs) of the listing comparison.
    pub listing: Vec<(usize, usize)>,
    /// The two testenv counts of the process counts.
    pub counts: Option<(usize, usize)>,
    pub profiles: bool,
    /// Runs of each rate-limit transfer (0: none).
    pub rate_runs: usize,
}

impl Plan {
    pub fn new(args: &RunArgs) -> Result<Plan> {
        let mut plan = match args.size {
            Size::Smoke => Plan {
                size: Size::Smoke,
                sizes: vec![(2, 1)],
                reps_a: None,
                variants: Vec::new(),
                exec_runs: 5,
                listing: vec![(5, 2)],
                counts: None,
                profiles: false,
                rate_runs: 0,
            },
            Size::Quick => Plan {
                size: Size::Quick,
                sizes: vec![(10, 3), (60, 3)],
                reps_a: None,
                variants: Vec::new(),
                exec_runs: 50,
                listing: vec![(100, 5)],
                counts: Some((2, 6)),
                profiles: false,
                rate_runs: 1,
            },
            Size::Full => Plan {
                size: Size::Full,
                sizes: vec![(10, 5), (20, 5), (60, 5), (250, 3)],
                reps_a: None,
                variants: Vec::new(),
                exec_runs: 200,
                listing: vec![(100, 10), (1000, 5)],
                counts: Some((2, 10)),
                profiles: true,
                rate_runs: 3,
            },
        };
        if !args.sizes.is_empty() {
            let reps = plan.sizes.first().map_or(3, |s| s.1);
            plan.sizes = args.sizes.iter().map(|&n| (n, reps)).collect();
        }
        if let Some(reps) = args.reps {
            plan.sizes.iter_mut().for_each(|s| s.1 = reps.max(1));
        }
        plan.reps_a = args.reps_a;
        for c in args.variants.chars() {
            let v = Variant::ALL
                .into_iter()
                .find(|v| v.code() == c.to_ascii_uppercase())
                .with_context(|| format!("unknown variant {c:?} (variants are A B C P D S E L; P is Cp, S is Ds)"))?;
            if !plan.variants.contains(&v) {
                plan.variants.push(v);
            }
        }
        plan.variants.sort();
        for &(n, _) in &plan.sizes {
            ensure!((1..=MAX_TESTENVS).contains(&n), "N must be 1 to {MAX_TESTENVS} (got {n})");
        }
        if args.no_counts {
            plan.counts = None;
        }
        if args.no_profiles {
            plan.profiles = false;
        }
        Ok(plan)
    }
}

/// Testenv numbers: 2 to 254 except 11 (the bridge's address).
const MAX_TESTENVS: usize = 252;

pub fn testenv_ids(n: usize) -> Vec<u32> {
    (2..=254).filter(|&x| x != 11).take(n).collect()
}

/// Paths and state shared by the whole run.
#[derive(Debug)]
pub struct Ctx {
    pub root: PathBuf,
    /// target/release: the binaries.
    pub bin: PathBuf,
    /// This binary.
    pub exe: PathBuf,
    /// bench/variants.
    pub variants: PathBuf,
    /// A private work folder (on the private /run).
    pub work: PathBuf,
    /// PATH with `bin` first.
    pub path: OsString,
    counter: u32,
    baseline: Vec<String>,
}

impl Ctx {
    pub fn new(root: PathBuf) -> Result<Ctx> {
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let bin = exe.parent().context("no folder")?.to_path_buf();
        let mut path = OsString::from(&bin);
        if let Some(old) = std::env::var_os("PATH") {
            path.push(":");
            path.push(old);
        }
        let work = PathBuf::from("/run/nstools-bench");
        fs::create_dir_all(&work)?;
        let mut ctx =
            Ctx { variants: root.join("bench/variants"), root, bin, exe, work, path, counter: 0, baseline: Vec::new() };
        ctx.baseline = own_links()?;
        Ok(ctx)
    }

    /// Where bench/run builds the statically linked tools (variant Ds).
    pub fn static_bin(&self) -> PathBuf {
        self.root.join("target/bench-profiles/crt-static/bin")
    }

    /// A unique tag for the processes of one run.
    pub fn tag(&mut self) -> String {
        self.counter += 1;
        format!("{}-{}", std::process::id(), self.counter)
    }

    /// A command with PATH set and the tag in its environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, tag: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PATH", &self.path).env("NSTOOLS_BENCH_TAG", tag);
        cmd
    }

    /// Checks after a run: nothing tagged alive, the driver's namespace unchanged.
    pub fn check_clean(&self, tag: &str) -> Result<()> {
        reap();
        // What ends with the run's selftest process (Cp's bridge capture, --exit-with it) may
        // take a moment more.
        let end = Instant::now() + Duration::from_secs(5);
        while !tagged(tag).is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
            reap();
        }
        let left = tagged(tag);
        if !left.is_empty() {
            let what: Vec<String> = left.iter().map(|p| format!("{p} ({})", comm(*p))).collect();
            kill_all(&left);
            bail!("processes left behind: {}", what.join(", "));
        }
        let links = own_links()?;
        ensure!(links == self.baseline, "the driver's namespace changed: {links:?} instead of {:?}", self.baseline);
        Ok(())
    }
}

fn own_links() -> Result<Vec<String>> {
    let mut names: Vec<String> = Netlink::open()?.dump_links()?.into_iter().map(|l| l.name).collect();
    names.sort();
    Ok(names)
}

/// Reap every exited child (this process is a subreaper: orphans of the runs come here).
pub fn reap() {
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim_end().to_owned()).unwrap_or_default()
}

/// Processes whose environment carries `NSTOOLS_BENCH_TAG=tag`.
pub fn tagged(tag: &str) -> Vec<i32> {
    let want = format!("NSTOOLS_BENCH_TAG={tag}");
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        if let Ok(env) = fs::read(entry.path().join("environ"))
            && env.split(|&b| b == 0).any(|var| var == want.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

pub fn kill_all(pids: &[i32]) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(100));
    reap();
}

/// User + system time of the waited-for descendants, in seconds.
fn children_cpu() -> f64 {
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => (u.user_time().num_microseconds() + u.system_time().num_microseconds()) as f64 / 1e6,
        Err(_) => f64::NAN,
    }
}

/// Lines from a child's stdout, each stamped with the time it arrived.
struct Lines {
    out: ChildStdout,
    buf: Vec<u8>,
    stamp: Instant,
    /// The last line read, for error messages.
    last: String,
}

impl Lines {
    fn next(&mut self, deadline: Instant) -> Result<Option<(String, Instant)>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                self.last = String::from_utf8_lossy(&line[..pos]).into_owned();
                return Ok(Some((self.last.clone(), self.stamp)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            ensure!(!left.is_zero(), "timed out");
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            let mut fds = [PollFd::new(self.out.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
                Err(Errno::EINTR) | Ok(0) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            self.stamp = Instant::now();
            let mut chunk = [0u8; 4096];
            let n = self.out.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The exports files and FIFOs a run needs (written before it starts, as selftest writes the
/// exports files itself).
fn prepare_work(ctx: &Ctx, ids: &[u32]) -> Result<PathBuf> {
    let dir = ctx.work.join("run");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    for &x in ids {
        let env = dir.join(format!("env{x}"));
        fs::create_dir(&env)?;
        fs::write(
            env.join("exports.sh"),
            format!(
                "NETBIOSNAME=LOCALDC{x}\nSERVER_IP=10.53.57.{x}\n\
                 SERVER_IPV6=fd00:0000:0000:0000:0000:0000:5357:5f{x:02x}\nUSERNAME=Administrator\n\
                 PASSWORD=locDCpass{x}\nKRB5_CONFIG={}/krb5.conf\n",
                env.display()
            ),
        )?;
    }
    for fifo in ["stdin", "ready"] {
        nix::unistd::mkfifo(&dir.join(fifo), Mode::from_bits_truncate(0o600))?;
    }
    Ok(dir)
}

/// The variant's command (wrapped in `wrap`, e.g. strace, if given).
fn variant_command(ctx: &Ctx, v: Variant, ids: &[u32], work: &Path, tag: &str, wrap: &[String]) -> Command {
    let (program, args): (PathBuf, Vec<OsString>) = match v.script() {
        Some(script) => ("unshare".into(), vec!["--net".into(), ctx.variants.join(script).into()]),
        None => {
            let mut args: Vec<OsString> = vec!["floor".into()];
            if v == Variant::L {
                args.push("--lib".into());
            }
            args.extend(ids.iter().map(|x| x.to_string().into()));
            (ctx.exe.clone(), args)
        }
    };
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = ctx.command(first, tag);
            c.args(rest).arg(program);
            c
        }
        None => ctx.command(program, tag),
    };
    let id_words: Vec<String> = ids.iter().map(|x| format!("{x}:{x:02x}")).collect();
    cmd.args(args)
        .env("BENCH_IDS", id_words.join(" "))
        .env("BENCH_LAST", ids.last().map_or(String::new(), |x| x.to_string()))
        .env("BENCH_WORK", work)
        .env("BENCH_SCRIPTS", ctx.root.join("scripts"))
        .env("BENCH_DAEMON", ctx.variants.join("daemon.sh"))
        .current_dir(work);
    if v == Variant::Ds {
        let mut path = OsString::from(ctx.static_bin());
        path.push(":");
        path.push(&ctx.path);
        cmd.env("PATH", path);
    }
    cmd
}

/// Run variant `v` with `n` testenvs once.
pub fn run_variant(ctx: &mut Ctx, v: Variant, n: usize, wrap: &[String]) -> Result<Sample> {
    let ids = testenv_ids(n);
    let work = prepare_work(ctx, &ids)?;
    let tag = ctx.tag();
    let stderr_path = work.join("stderr");
    let mut cmd = variant_command(ctx, v, &ids, &work, &tag, wrap);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(File::create(&stderr_path)?);
    let cpu_before = children_cpu();
    let timeout = Duration::from_secs(120 + n as u64 * if v == Variant::A { 3 } else { 1 });

    let t0 = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("cannot start variant {}", v.letter()))?;
    let deadline = t0 + timeout;
    let mut lines =
        Lines { out: child.stdout.take().context("no stdout")?, buf: Vec::new(), stamp: t0, last: "none".into() };
    let mut stdin = child.stdin.take();

    let outcome = (|| -> Result<Sample> {
        let mut selftest: Option<(Netns, Netlink)> = None;
        let (mut t_base, mut t_setup, mut t_go) = (None, None, None);
        let mut peers_gone = None;
        loop {
            let (line, at) = lines.next(deadline)?.context("the variant ended before its teardown")?;
            let Some(marker) = line.strip_prefix("@bench ") else { continue };
            match marker.split_once(' ').map_or((marker, ""), |(a, b)| (a, b)) {
                ("selftest", pid) => {
                    let ns = Netns::open_path(Path::new(&format!("/proc/{pid}/ns/net")))?;
                    let nl = Netlink::open_in(&ns)?;
                    selftest = Some((ns, nl));
                }
                ("base", _) => t_base = Some(at),
                ("setup", _) => t_setup = Some(at),
                ("ping", "ok") => {
                    let (ns, mut nl) = selftest.take().context("no selftest namespace reported")?;
                    check_setup(&mut nl, n)?;
                    // When the last veth goes, heard of while the variant's processes end.
                    let watch = LinkWatch::open_in(&ns)?;
                    peers_gone = Some(std::thread::spawn(move || wait_clean(watch, &mut nl, deadline)));
                    let mut pipe = stdin.take().context("no stdin")?;
                    t_go = Some(Instant::now());
                    pipe.write_all(b"go\n")?;
                }
                ("ping", _) => bail!("the last testenv does not answer a ping"),
                ("teardown", _) => {
                    let waiter = peers_gone.take().context("teardown before the go-ahead")?;
                    let t_peers = waiter.join().map_err(|_| anyhow!("the veth waiter panicked"))??;
                    let (Some(base), Some(setup), Some(go)) = (t_base, t_setup, t_go) else { bail!("markers missing") };
                    return Ok(Sample {
                        base: (base - t0).as_secs_f64(),
                        setup: (setup - base).as_secs_f64(),
                        teardown: (t_peers.max(at) - go).as_secs_f64(),
                        peers_gone: (t_peers - go).as_secs_f64(),
                        exited: (at - go).as_secs_f64(),
                        cpu: 0.0,
                    });
                }
                (other, _) => bail!("unknown marker {other}"),
            }
        }
    })();
    let outcome = outcome.and_then(|sample| {
        let status = child.wait()?;
        ensure!(status.success(), "the variant exited with {status}");
        Ok(sample)
    });
    let outcome = match outcome {
        Ok(sample) => ctx.check_clean(&tag).map(|()| sample),
        Err(e) => {
            drop(stdin);
            kill_all(&tagged(&tag));
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    };
    outcome.map(|s| Sample { cpu: children_cpu() - cpu_before, ..s }).map_err(|e| {
        let kept = ctx.root.join(format!("target/bench/failed-{}-{n}", v.letter()));
        let _ = fs::remove_dir_all(&kept);
        let kept = match copy_files(&work, &kept) {
            Ok(()) => format!("\n  its work folder (logs, exports) is kept in {}", kept.display()),
            Err(_) => String::new(),
        };
        anyhow!(
            "variant {} with N={n}: {e:#} (last marker: {}){}{kept}",
            v.letter(),
            lines.last,
            stderr_tail(&stderr_path)
        )
    })
}

/// Copy the regular files of a folder tree (not FIFOs).
fn copy_files(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_files(&entry.path(), &to.join(entry.file_name()))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The end of the variant's stderr and of its attach log (where add_bridge_iface.sh writes).
fn stderr_tail(path: &Path) -> String {
    let mut out = String::new();
    for (what, file) in [("its stderr", path.to_path_buf()), ("attach.log", path.with_file_name("attach.log"))] {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if !lines.is_empty() {
            out += &format!("\n  {what} ends with:\n    {}", lines[lines.len().saturating_sub(8)..].join("\n    "));
        }
    }
    out
}

/// After setup: selftest0 up with its two addresses and N veth ports, all up.
fn check_setup(nl: &mut Netlink, n: usize) -> Result<()> {
    let links = nl.dump_links()?;
    let bridge = links.iter().find(|l| l.name == "selftest0").context("no selftest0")?;
    ensure!(bridge.is_bridge() && bridge.up, "selftest0 is not an up bridge");
    let ports =
        links.iter().filter(|l| l.kind == Some(LinkKind::Veth) && l.master == Some(bridge.index) && l.up).count();
    ensure!(ports == n, "selftest0 has {ports} veth ports up instead of {n}");
    let addrs: Vec<String> = nl.dump_addrs()?.into_iter().filter(|a| a.index == bridge.index).map(|a| a.cidr).collect();
    for want in ["10.53.57.11/24", "fd00::5357:5f0b/112"] {
        ensure!(addrs.iter().any(|a| a == want), "selftest0 lacks {want} (has {addrs:?})");
    }
    Ok(())
}

fn veths(nl: &mut Netlink) -> Result<HashSet<String>> {
    Ok(nl.dump_links()?.into_iter().filter(|l| l.kind == Some(LinkKind::Veth)).map(|l| l.name).collect())
}

/// Wait until no veth is left in the selftest namespace, by the notifications of `watch`
/// (subscribed before the look-up, so that none slips by); when that was.
fn wait_clean(mut watch: LinkWatch, nl: &mut Netlink, deadline: Instant) -> Result<Instant> {
    let mut left = veths(nl)?;
    while !left.is_empty() {
        match watch.next(Some(deadline), None)? {
            Wake::Event(ev) if !ev.new => {
                left.remove(&ev.link.name);
            }
            Wake::Event(_) | Wake::Interrupted => {}
            Wake::Overrun => left = veths(nl)?,
            Wake::Timeout => bail!("{} veth(s) still in the selftest namespace after teardown", left.len()),
        }
    }
    Ok(Instant::now())
}

/// Executables and threads started per testenv, from `strace -f` at two testenv counts.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Successful execs per testenv, by program name.
    pub execs: BTreeMap<String, f64>,
    /// Processes (fork, vfork, clone without CLONE_THREAD) per testenv.
    pub processes: f64,
    /// Threads per testenv.
    pub threads: f64,
}

#[derive(Debug, Default)]
struct Traced {
    execs: BTreeMap<String, usize>,
    processes: usize,
    threads: usize,
}

fn parse_trace(text: &str) -> Traced {
    let mut t = Traced::default();
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    let program = |line: &str| -> Option<String> {
        let start = line.find("execve(\"")? + 8;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].rsplit('/').next().unwrap_or_default().to_owned())
    };
    for line in text.lines() {
        let pid = line.split_whitespace().next().unwrap_or_default().to_owned();
        if line.contains("execve(") {
            let Some(prog) = program(line) else { continue };
            if line.ends_with("<unfinished ...>") {
                pending.insert(pid, prog);
            } else if line.ends_with(" = 0") {
                *t.execs.entry(prog).or_default() += 1;
            }
        } else if line.contains("<... execve resumed>") {
            if let Some(prog) = pending.remove(&pid)
                && line.ends_with(" = 0")
            {
                *t.execs.entry(prog).or_default() += 1;
            }
        } else if ["clone(", "clone3(", "fork(", "vfork("].iter().any(|c| line.contains(c))
            && !line.contains("resumed>")
        {
            if line.contains("CLONE_THREAD") {
                t.threads += 1;
            } else {
                t.processes += 1;
            }
        }
    }
    t
}

/// Process counts of variant `v`: the difference between runs with `n1` and `n2` testenvs.
pub fn count_processes(ctx: &mut Ctx, v: Variant, n1: usize, n2: usize) -> Result<Counts> {
    let mut traced = Vec::new();
    for n in [n1, n2] {
        let out = ctx.work.join("trace");
        let wrap: Vec<String> = [
            "strace",
            "-f",
            "-qq",
            "-o",
            &out.to_string_lossy(),
            "-e",
            "trace=execve,clone,clone3,fork,vfork",
            "-e",
            "signal=none",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run_variant(ctx, v, n, &wrap)?;
        traced.push(parse_trace(&fs::read_to_string(&out)?));
    }
    let per = |a: usize, b: usize| (b as f64 - a as f64) / (n2 - n1) as f64;
    let mut counts = Counts {
        processes: per(traced[0].processes, traced[1].processes),
        threads: per(traced[0].threads, traced[1].threads),
        ..Default::default()
    };
    let names: HashSet<&String> = traced[0].execs.keys().chain(traced[1].execs.keys()).collect();
    for name in names {
        let a = traced[0].execs.get(name).copied().unwrap_or(0);
        let b = traced[1].execs.get(name).copied().unwrap_or(0);
        let d = per(a, b);
        if d.abs() > 1e-9 {
            counts.execs.insert(name.clone(), d);
        }
    }
    Ok(counts)
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}
