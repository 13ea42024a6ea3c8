//! Reliability (issue 7): bad input, faults, load and security, attacked the way a busy test
//! farm and a careless user would. Every case gets a machine-checked verdict: the documented
//! exit code, a one-line message that names the problem, and the system left exactly as it
//! was, checked by comparing snapshots (`ip -j` in every namespace under test, the test's
//! tagged processes, their network namespaces, nsfs bind mounts, and the open descriptors of
//! long-lived processes) taken before and after.
//!
//! A test of its own (`harness = false`): the cases run on a few worker threads (each in fresh
//! network namespaces, as in the other tests), the load tests then run alone (they measure
//! descriptors and memory of this process), and the report starts with the figures - cases
//! tried, runs, leaks found - followed by one verdict line per case. Arguments: a filter
//! (a substring of group names: `input`, `faults/sigkill`...), `--list`; libtest's flags are accepted and ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod reliability_faults;
mod reliability_input;
mod reliability_load;
mod reliability_security;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nstools_tests::{Run, Sandbox};

// ---------------------------------------------------------------------------------------------
// The record: verdicts and figures.

/// One verdict.
struct Verdict {
    group: String,
    case: String,
    ok: bool,
    text: String,
}

static VERDICTS: Mutex<Vec<Verdict>> = Mutex::new(Vec::new());
static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Tool or script runs (every process of a tool or script the cases started and checked).
static RUNS: AtomicUsize = AtomicUsize::new(0);
/// Before/after snapshot pairs compared.
static SNAPSHOTS: AtomicUsize = AtomicUsize::new(0);
/// Differences found between snapshots, or processes left behind.
static LEAKS: AtomicUsize = AtomicUsize::new(0);

/// Count `n` runs of tools or scripts.
pub fn count_runs(n: usize) {
    RUNS.fetch_add(n, Ordering::Relaxed);
}

/// A line for the figures at the top of the report (measurements of the load and fault tests).
pub fn note(line: String) {
    NOTES.lock().unwrap().push(line);
}

thread_local! {
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static IN_CASE: RefCell<bool> = const { RefCell::new(false) };
}

/// Run one case and record its verdict: `Ok` text if `f` returns, the assertion that failed if
/// it panics.
pub fn verdict(group: &str, case: &str, f: impl FnOnce() -> String) -> bool {
    let outer = IN_CASE.with(|c| std::mem::replace(&mut *c.borrow_mut(), true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    IN_CASE.with(|c| *c.borrow_mut() = outer);
    let (ok, text) = match outcome {
        Ok(text) => (true, text),
        Err(_) => {
            let msg = PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "panicked".into());
            if msg.contains("processes left behind") {
                LEAKS.fetch_add(1, Ordering::Relaxed);
            }
            (false, msg)
        }
    };
    VERDICTS.lock().unwrap().push(Verdict { group: group.into(), case: case.into(), ok, text });
    ok
}

fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if IN_CASE.with(|c| *c.borrow()) {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            let at = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
            PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
        } else {
            default(info);
        }
    }));
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

/// What is watched besides the sandbox's own namespace: other namespaces (by a process in
/// them), long-lived processes whose descriptors must not change, extra paths for mounts.
#[derive(Default, Clone)]
pub struct Watch {
    /// `(label, pid)`: the network namespace of `pid`, shown as `label`.
    pub netns: Vec<(String, u32)>,
    /// Processes whose open descriptors are compared.
    pub fds: Vec<u32>,
    /// Substrings of mount points to watch (the sandbox tag is always watched).
    pub mounts: Vec<String>,
}

impl Watch {
    /// Watch the namespace of `pid` (and its descriptors when `fds`).
    pub fn ns(mut self, label: &str, pid: u32) -> Self {
        self.netns.push((label.to_owned(), pid));
        self
    }

    /// Watch the descriptors of `pid`.
    pub fn fds(mut self, pid: u32) -> Self {
        self.fds.push(pid);
        self
    }
}

/// The state of everything a case could leave behind, as a set of lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(BTreeSet<String>);

fn ip_json(sb: &Sandbox, pid: Option<u32>, args: &str) -> Option<serde_json::Value> {
    let script = match pid {
        None => format!("ip -j {args}"),
        Some(p) => format!("nsenter -t {p} --net ip -j {args}"),
    };
    let out = sb.sh(&script).ok()?;
    serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out }).ok()
}

fn net_state(sb: &Sandbox, label: &str, pid: Option<u32>, lines: &mut BTreeSet<String>) {
    let (Some(links), Some(addrs)) = (ip_json(sb, pid, "-d link show"), ip_json(sb, pid, "addr show")) else {
        lines.insert(format!("netns {label}: gone"));
        return;
    };
    for l in links.as_array().into_iter().flatten() {
        let up = l["flags"].as_array().is_some_and(|f| f.iter().any(|f| f == "UP"));
        lines.insert(format!(
            "link {label}: {} kind={} master={} {}",
            l["ifname"].as_str().unwrap_or("?"),
            l["linkinfo"]["info_kind"].as_str().unwrap_or("-"),
            l["master"].as_str().unwrap_or("-"),
            if up { "up" } else { "down" }
        ));
    }
    for l in addrs.as_array().into_iter().flatten() {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            // Link-local addresses come and go with the link state; they are the kernel's.
            if a["scope"] == "link" {
                continue;
            }
            lines.insert(format!(
                "addr {label}: {} {}/{}",
                l["ifname"].as_str().unwrap_or("?"),
                a["local"].as_str().unwrap_or("?"),
                a["prefixlen"]
            ));
        }
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim_end().to_owned()
}

fn ns_link(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default()
}

impl Snapshot {
    /// Take a snapshot of the sandbox and of what `watch` names.
    pub fn take(sb: &Sandbox, watch: &Watch) -> Snapshot {
        let mut lines = BTreeSet::new();
        net_state(sb, "here", None, &mut lines);
        for (label, pid) in &watch.netns {
            net_state(sb, label, Some(*pid), &mut lines);
        }
        for pid in sb.tagged_processes() {
            lines.insert(format!("process {pid} {} {}", comm(pid), ns_link(pid)));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for m in mountinfo.lines() {
            let fields: Vec<&str> = m.split(' ').collect();
            let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else { continue };
            let fstype = m.split(" - ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or("");
            let ours = point.contains(&sb.tag) || watch.mounts.iter().any(|w| point.contains(w.as_str()));
            if ours {
                lines.insert(format!("mount {point} {fstype} {root}"));
            }
        }
        for pid in &watch.fds {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                lines.insert(format!("fds {pid}: gone"));
                continue;
            };
            for e in dir.flatten() {
                let target = std::fs::read_link(e.path()).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
                // Socket and pipe inode numbers name the object; what matters is the kind.
                let kind = target.split_once(":[").map_or(target.as_str(), |(k, _)| k);
                lines.insert(format!("fd {pid}/{}: {kind}", e.file_name().to_string_lossy()));
            }
        }
        Snapshot(lines)
    }

    /// Lines added (`+`) and removed (`-`) in `after`.
    pub fn diff(&self, after: &Snapshot) -> Vec<String> {
        let mut d: Vec<String> = after.0.difference(&self.0).map(|l| format!("+ {l}")).collect();
        d.extend(self.0.difference(&after.0).map(|l| format!("- {l}")));
        d
    }

    /// The lines (for checks on what is present).
    pub fn lines(&self) -> &BTreeSet<String> {
        &self.0
    }
}

/// Assert that nothing changed between `before` and a snapshot taken now (waiting up to
/// `settle` for asynchronous clean-up by the kernel); counts the comparison and any leak.
#[track_caller]
pub fn assert_unchanged(sb: &Sandbox, watch: &Watch, before: &Snapshot, settle: Duration) {
    if let Err(diff) = compare(sb, watch, before, settle) {
        panic!("not as it was: {diff}");
    }
}

/// As [`assert_unchanged`], returning the difference instead of panicking.
pub fn compare(sb: &Sandbox, watch: &Watch, before: &Snapshot, settle: Duration) -> Result<(), String> {
    SNAPSHOTS.fetch_add(1, Ordering::Relaxed);
    let mut after = Snapshot::take(sb, watch);
    let end = Instant::now() + settle;
    while after != *before && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        after = Snapshot::take(sb, watch);
    }
    if after == *before {
        return Ok(());
    }
    LEAKS.fetch_add(1, Ordering::Relaxed);
    Err(before.diff(&after).join("; "))
}

// ---------------------------------------------------------------------------------------------
// Running tools and scripts.

/// How a command is run.
pub struct Cmd {
    /// Program: one of our tools, a script of `scripts/`, or anything on PATH.
    pub program: String,
    /// Arguments.
    pub args: Vec<std::ffi::OsString>,
    /// Bytes on stdin (`None`: /dev/null).
    pub stdin: Option<Vec<u8>>,
    /// Run as this plain user.
    pub user: Option<&'static str>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// A command line the program (and its arguments) is appended to, e.g. `unshare --user`.
    pub wrap: Vec<String>,
}

impl Cmd {
    /// `program args...`.
    pub fn new(program: &str, args: &[&str]) -> Cmd {
        Cmd {
            program: program.to_owned(),
            args: args.iter().map(std::ffi::OsString::from).collect(),
            stdin: None,
            user: None,
            env: Vec::new(),
            wrap: Vec::new(),
        }
    }

    /// Run the program through `wrap...` (which gets the program and its arguments appended).
    pub fn wrap(mut self, wrap: &[&str]) -> Cmd {
        self.wrap = wrap.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Append an argument that need not be UTF-8.
    pub fn arg_bytes(mut self, bytes: &[u8]) -> Cmd {
        use std::os::unix::ffi::OsStrExt;
        self.args.push(std::ffi::OsStr::from_bytes(bytes).to_owned());
        self
    }

    /// With these bytes on stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// As a plain user.
    pub fn user(mut self, user: &'static str) -> Cmd {
        self.user = Some(user);
        self
    }

    /// With an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Cmd {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// The path of the program.
    pub fn path(&self) -> String {
        program_path(&self.program)
    }

    /// Run it in the sandbox.
    pub fn run(&self, sb: &Sandbox) -> Run {
        self.run_tagged(&Tag::of(sb))
    }

    /// Run it with the sandbox's tag (from any thread of the test).
    pub fn run_tagged(&self, sb: &Tag) -> Run {
        let mut argv: Vec<std::ffi::OsString> = self.wrap.iter().map(Into::into).collect();
        argv.push(self.path().into());
        argv.extend(self.args.iter().cloned());
        let mut cmd = match self.user {
            Some(u) => {
                let mut c = sb.command("setpriv");
                c.args(["--reuid", u, "--regid", u, "--init-groups"])
                    .args(&argv)
                    .env("HOME", "/tmp")
                    .current_dir("/tmp");
                c
            }
            None => {
                let mut c = sb.command(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().unwrap();
            let bytes = bytes.clone();
            // A writer thread: the tool may stop reading early (a closed pipe is fine).
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        count_runs(1);
        let shown: Vec<String> = self.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        Run::of(child.wait_with_output().unwrap(), format!("{} {}", self.program, shown.join(" ")))
    }
}

/// What commands need from a sandbox - its tag - shareable with helper threads (which inherit
/// the test thread's network namespace when it starts them).
#[derive(Clone)]
pub struct Tag(pub String);

impl Tag {
    /// The tag of `sb`.
    pub fn of(sb: &Sandbox) -> Tag {
        Tag(sb.tag.clone())
    }

    /// A command tagged as the sandbox's commands are, with our binaries first on PATH.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NSTOOLS_TEST_TAG", &self.0);
        cmd.env(
            "PATH",
            format!("{}:{}", nstools_tests::bin_dir().display(), std::env::var("PATH").unwrap_or_default()),
        );
        cmd
    }
}

/// Where a program is: our binaries, our scripts, else the name itself (PATH).
pub fn program_path(program: &str) -> String {
    let bin = nstools_tests::bin_dir().join(program);
    let script = nstools_tests::workspace().join("scripts").join(program);
    if bin.exists() {
        bin.display().to_string()
    } else if script.exists() {
        script.display().to_string()
    } else {
        program.to_owned()
    }
}

/// A bad-input case: `cmd` must exit `code` with one stderr line `prefix: ...needle...`,
/// nothing on stdout, no panic, and leave everything as it was.
pub fn expect_failure(
    sb: &Sandbox,
    watch: &Watch,
    group: &str,
    what: &str,
    cmd: &Cmd,
    code: i32,
    needle: &str,
) -> bool {
    let case = format!("{}: {what}", cmd.program);
    verdict(group, &case, || {
        let before = Snapshot::take(sb, watch);
        let r = cmd.run(sb);
        let line = check_failure(&r, &cmd.program, code, needle);
        assert!(r.stdout.is_empty() || cmd.program.ends_with(".sh"), "stdout must be empty: {:?}", r.stdout);
        assert_unchanged(sb, watch, &before, Duration::from_secs(2));
        format!("exit {code}, unchanged: {}", shorten(line, 150))
    })
}

/// Check a failed run: exit `code`, exactly one line on stderr, `PREFIX: ` and containing
/// `needle`, no panic. Returns the line.
#[track_caller]
pub fn check_failure<'a>(r: &'a Run, program: &str, code: i32, needle: &str) -> &'a str {
    let tool = program.rsplit('/').next().unwrap();
    assert_eq!(r.code, code, "expected exit {code}, got {}; stderr: {:?}", r.code, r.stderr);
    assert!(!r.stderr.contains("panicked"), "a panic: {:?}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "stderr must be one line: {:?}", r.stderr);
    // A script that hands over to a tool with exec reports as that tool.
    let prefix_ok = r.stderr.starts_with(&format!("{tool}: "))
        || ["br-attach", "veth-pair", "ns-exec", "ns-unshare", "ns-ls"]
            .iter()
            .any(|t| r.stderr.starts_with(&format!("{t}: ")));
    assert!(prefix_ok, "stderr must start with '{tool}: ': {:?}", r.stderr);
    assert!(r.stderr.contains(needle), "stderr lacks {needle:?}: {:?}", r.stderr);
    r.stderr.trim_end()
}

/// At most `n` characters of `s`.
pub fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { format!("{}...", s.chars().take(n).collect::<String>()) }
}

/// A tiny deterministic random generator (xorshift), seeded per group so runs reproduce.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `RELIABILITY_SEED` (printed in the report) plus `salt`.
    pub fn new(salt: u64) -> Rng {
        Rng(seed().wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9)) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        std::env::var("RELIABILITY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs() % 100_000)
        })
    })
}

/// A group of cases: a name and the function that runs them (recording verdicts).
pub type Group = (&'static str, fn());

// ---------------------------------------------------------------------------------------------
// The runner.

fn run_pool(groups: &[Group], threads: usize) {
    let queue = Mutex::new(groups.iter().collect::<Vec<_>>());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let Some((name, f)) = queue.lock().unwrap().pop() else { break };
                    let start = Instant::now();
                    // A group that panics outside a case (its setup, or its sandbox's leak
                    // check when it ends) gets a failed verdict of its own.
                    verdict(name, "(group set-up and clean-up)", || {
                        f();
                        format!("done in {:.1} s", start.elapsed().as_secs_f64())
                    });
                }
            });
        }
    });
}

/// SIGINT and SIGQUIT back to their defaults, for this process and so for every tool it runs.
/// A shell starts a background job without job control (`scripts/test &`, `nohup scripts/test
/// &` from a script) with both ignored, and an ignored signal that arrives before a tool has
/// blocked it - in the first milliseconds after exec - is discarded by the kernel, where by
/// default it would kill the tool before it changed anything: the signal tests (SIGINT at random
/// points, done or undone) assume the defaults a terminal or a service gives. So the suite
/// re-executes itself through coreutils' `env --default-signal` (this crate has no unsafe code
/// to change a disposition itself). The tools' own handling of an inherited ignored SIGINT is
/// tested where one is started that way (a capture in the background, tests/capture.rs).
fn default_interrupts() {
    use std::os::unix::process::CommandExt;
    const INT_QUIT: u64 = (1 << (2 - 1)) | (1 << (3 - 1));
    let ignored = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("SigIgn:")).and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(0);
    if ignored & INT_QUIT == 0 || std::env::var_os("NSTOOLS_RELIABILITY_REEXEC").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err = Command::new("env")
        .arg("--default-signal=INT,QUIT")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env("NSTOOLS_RELIABILITY_REEXEC", "1")
        .exec();
    eprintln!("reliability: SIGINT is ignored and env --default-signal could not reset it ({err}); going on");
}

fn main() {
    default_interrupts();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let groups: Vec<Group> =
        [reliability_input::GROUPS, reliability_security::GROUPS, reliability_faults::GROUPS, reliability_load::GROUPS]
            .concat();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &groups {
            println!("{name}: test");
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let selected: Vec<Group> =
        groups.into_iter().filter(|(name, _)| filter.as_ref().is_none_or(|f| name.contains(f.as_str()))).collect();
    install_panic_hook();
    let start = Instant::now();
    let _ = seed();
    // The load tests measure this process's descriptors and memory: they run alone, after the rest.
    let (alone, pooled): (Vec<Group>, Vec<Group>) = selected.into_iter().partition(|(n, _)| n.starts_with("load"));
    let threads = std::env::var("RELIABILITY_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(4);
    run_pool(&pooled, threads);
    run_pool(&alone, 1);
    report(start.elapsed());
}

fn report(elapsed: Duration) {
    let verdicts = VERDICTS.lock().unwrap();
    let cases: Vec<&Verdict> = verdicts.iter().filter(|v| !v.case.starts_with('(')).collect();
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.ok).collect();
    let mut by_group: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &cases {
        *by_group.entry(v.group.split('/').next().unwrap_or("")).or_default() += 1;
    }
    let mut out = String::new();
    out.push_str("==================================================================================\n");
    out.push_str(&format!(
        "nstools reliability: {} cases tried, {} runs, {} snapshot comparisons, leaks found: {}\n",
        cases.len(),
        RUNS.load(Ordering::Relaxed),
        SNAPSHOTS.load(Ordering::Relaxed),
        LEAKS.load(Ordering::Relaxed)
    ));
    let groups: Vec<String> = by_group.iter().map(|(g, n)| format!("{g} {n}")).collect();
    out.push_str(&format!(
        "cases by area: {}; {} failed; {:.1} s (seed {})\n",
        groups.join(", "),
        failed.len(),
        elapsed.as_secs_f64(),
        seed()
    ));
    let mut by_program: BTreeMap<&str, usize> = BTreeMap::new();
    for v in cases.iter().filter(|v| v.group.starts_with("input/")) {
        *by_program.entry(v.case.split(':').next().unwrap_or("")).or_default() += 1;
    }
    if !by_program.is_empty() {
        let list: Vec<String> = by_program.iter().map(|(p, n)| format!("{p} {n}")).collect();
        out.push_str(&format!("  bad input by program: {}\n", list.join(", ")));
    }
    let mut sorted = NOTES.lock().unwrap().clone();
    sorted.sort();
    let mut notes: Vec<String> = reliability_faults::signal_summary().into_iter().collect();
    notes.extend(sorted);
    for n in &notes {
        out.push_str(&format!("  {n}\n"));
    }
    out.push_str("==================================================================================\n");
    for v in verdicts.iter() {
        out.push_str(&format!(
            "{} {:<24} {}: {}\n",
            if v.ok { "ok  " } else { "FAIL" },
            v.group,
            v.case,
            v.text.replace('\n', " | ")
        ));
    }
    if !failed.is_empty() {
        out.push_str(&format!("\n{} FAILED:\n", failed.len()));
        for v in &failed {
            out.push_str(&format!("FAIL {} {}: {}\n", v.group, v.case, v.text.replace('\n', " | ")));
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stdout().flush();
    if !failed.is_empty() || LEAKS.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}

/// Spawn `program args` in the sandbox with piped output, for the fault tests.
pub fn spawn(sb: &Sandbox, program: &str, args: &[String]) -> std::process::Child {
    let mut c: Command = sb.command(program_path(program));
    c.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    count_runs(1);
    c.spawn().unwrap()
}
