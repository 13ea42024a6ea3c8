//! Test harness: every test gets its own fresh network namespace (the test thread unshares one,
//! and every command it runs inherits it), so tests run in parallel and never touch the host's
//! interfaces. Results are checked independently with iproute2 (`ip -j`) and util-linux.
//!
//! Leak checks: every process a test starts carries `NSTOOLS_TEST_TAG=<unique tag>` in its
//! environment (holders made by `ns-unshare` inherit it), so when the sandbox ends any process
//! still carrying the tag is a leak and fails the test.
//!
//! Privileges: the sandbox needs CAP_SYS_ADMIN (root, or `scripts/test`'s user namespace).
//! Without it a test is skipped with a loud `SKIPPED` line — and fails instead under `CI`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_debug_implementations)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};
use serde_json::Value;

/// Where the binaries under test are: `$NSTOOLS_BIN_DIR`, else the workspace's `target/release`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("NSTOOLS_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/release"))
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Path of one of our binaries; panics with the fix if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build first with 'cargo build --release' (scripts/test does)",
        path.display()
    );
    path
}

/// True when running under CI, where skipping is a failure.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skip loudly (or fail under CI).
pub fn skip(test: &str, why: &str) {
    let line = format!("SKIPPED {test}: {why}");
    assert!(!in_ci(), "{line} (skipping is not allowed under CI)");
    announce(&line);
}

/// A line on stderr and stdout: seen whether the test harness captures output or not.
fn announce(line: &str) {
    eprintln!("{line}");
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Skip loudly because the kernel lacks `feature` (e.g. `netem qdisc (sch_netem)`), which the
/// test has just proven from the kernel's own answer to its request (and checked that nstools
/// reports it properly). The one skip allowed under CI: the kernel is the machine's, not a
/// set-up step CI forgot.
pub fn skip_kernel_lacks(test: &str, feature: &str) {
    announce(&format!("SKIPPED {test}: the kernel has no {feature}"));
}

/// True if the process runs as real root (uid 0 in the initial user namespace).
pub fn real_root() -> bool {
    nix::unistd::geteuid().is_root()
        && std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh network namespace for the calling test thread, and what the test started in it.
pub struct Sandbox {
    /// Unique tag of this test (in the environment of every process it starts).
    pub tag: String,
    name: String,
    children: Vec<Child>,
    anchor: Option<u32>,
    cleanups: Vec<Box<dyn FnOnce()>>,
    env: Vec<(String, String)>,
}

/// Make a sandbox, or skip the test (return) if there is no privilege for one.
#[macro_export]
macro_rules! sandbox {
    ($name:expr) => {
        match $crate::Sandbox::new($name) {
            Some(sb) => sb,
            None => return,
        }
    };
}

impl Sandbox {
    /// Unshare a fresh network namespace for this thread; `None` after a loud skip.
    pub fn new(name: &str) -> Option<Sandbox> {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            skip(name, &format!("cannot create a network namespace ({e}); run as root or through scripts/test"));
            return None;
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("nst{}x{n}", std::process::id());
        let sb = Sandbox {
            tag,
            name: name.to_owned(),
            children: Vec::new(),
            anchor: None,
            cleanups: Vec::new(),
            env: Vec::new(),
        };
        // Loopback up, as in any usable namespace.
        sb.sh("ip link set lo up").ok();
        Some(sb)
    }

    /// The test's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs in the sandbox, tagged.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NSTOOLS_TEST_TAG", &self.tag);
        cmd.env("PATH", format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default()));
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// A work directory any user can write (for the plain-user tests), removed at the end.
    pub fn workdir(&mut self, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("{}-{name}", self.tag));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let d = dir.clone();
        self.on_drop(move || {
            let _ = std::fs::remove_dir_all(&d);
        });
        dir
    }

    /// Set an environment variable for every command the sandbox runs from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// A command for one of our tools.
    pub fn tool(&self, name: &str) -> Command {
        self.command(bin(name))
    }

    /// Run one of our tools with `args`.
    pub fn run(&self, tool: &str, args: &[&str]) -> Run {
        Run::of(self.tool(tool).args(args).stdin(Stdio::null()).output().unwrap(), format!("{tool} {}", args.join(" ")))
    }

    /// Run a shell command line in the sandbox.
    pub fn sh(&self, script: &str) -> Result<String, String> {
        let out = self.command("sh").arg("-c").arg(script).stdin(Stdio::null()).output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("`{script}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Run a shell command line that must succeed.
    #[track_caller]
    pub fn must(&self, script: &str) -> String {
        self.sh(script).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start a long-lived process in a namespace of its own (made with util-linux `unshare`,
    /// independent of the tools under test): a stand-in testenv. Killed when the sandbox ends.
    pub fn spawn_netns(&mut self) -> u32 {
        self.spawn(&["unshare", "--net", "sh", "-c", "ip link set lo up; exec sleep infinity"], "sleep")
    }

    /// Start a long-lived tagged process, killed when the sandbox ends. Returns its PID once
    /// it runs the program `exe` (so that whatever it set up before is ready).
    pub fn spawn(&mut self, argv: &[&str], exe: &str) -> u32 {
        let child = self.command(argv[0]).args(&argv[1..]).stdin(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        // /proc/PID/exe names the real file: follow symlinks such as /bin/sh -> dash.
        let exe = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(exe))
            .find(|p| p.exists())
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| exe.to_owned());
        let exe = exe.as_str();
        self.children.push(child);
        // Generous: it returns as soon as the program runs (an emulated guest takes seconds).
        let ready = wait_until(Duration::from_secs(30), || {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e.file_name().is_some_and(|n| n == exe))
        });
        assert!(ready, "{argv:?} did not start {exe}");
        pid
    }

    /// A process in the sandbox's own namespace (to name it by PID, as Samba does).
    pub fn anchor(&mut self) -> u32 {
        if self.anchor.is_none() {
            let pid = self.spawn(&["sleep", "infinity"], "sleep");
            self.anchor = Some(pid);
        }
        self.anchor.unwrap()
    }

    /// Register a clean-up to run when the sandbox ends (before the leak check).
    pub fn on_drop(&mut self, f: impl FnOnce() + 'static) {
        self.cleanups.push(Box::new(f));
    }

    /// `ip -j ARGS` in the sandbox.
    pub fn ip(&self, args: &str) -> Value {
        let out = self.must(&format!("ip -j {args}"));
        serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out }).unwrap()
    }

    /// `ip -j ARGS` inside the network namespace of `pid`.
    pub fn ip_in(&self, pid: u32, args: &str) -> Value {
        let out = self.must(&format!("nsenter -t {pid} --net ip -j {args}"));
        serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out }).unwrap()
    }

    /// Names of the sandbox's links, sorted.
    pub fn links(&self) -> Vec<String> {
        names(&self.ip("link show"))
    }

    /// Names of the links in `pid`'s namespace, sorted.
    pub fn links_in(&self, pid: u32) -> Vec<String> {
        names(&self.ip_in(pid, "link show"))
    }

    /// Processes (other than those this sandbox still runs on purpose) carrying the tag.
    pub fn tagged_processes(&self) -> Vec<u32> {
        let own: Vec<u32> = self.children.iter().map(Child::id).collect();
        let needle = format!("NSTOOLS_TEST_TAG={}", self.tag);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            if own.contains(&pid) || pid == std::process::id() {
                continue;
            }
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
            if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) && !is_zombie(pid) {
                found.push(pid);
            }
        }
        found
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for f in self.cleanups.drain(..).rev() {
            f();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        // Give exiting processes a moment to be reaped, then check that nothing the test
        // started is still running (holders included).
        let mut leaked = self.tagged_processes();
        if !leaked.is_empty() {
            wait_until(Duration::from_secs(2), || self.tagged_processes().is_empty());
            leaked = self.tagged_processes();
        }
        // No bind mount of the test's (its paths carry the tag) may outlive it either.
        let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&self.tag))
            .map(str::to_owned)
            .collect();
        if !mounts.is_empty() && !std::thread::panicking() {
            panic!("{}: mounts left behind: {mounts:?}", self.name);
        }
        if !leaked.is_empty() {
            let list: Vec<String> = leaked
                .iter()
                .map(|p| {
                    format!(
                        "{p} ({})",
                        std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().replace('\0', " ")
                    )
                })
                .collect();
            for p in &leaked {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p as i32), nix::sys::signal::Signal::SIGKILL);
            }
            if !std::thread::panicking() {
                panic!("{}: processes left behind: {}", self.name, list.join(", "));
            }
        }
    }
}

/// Names of `ip -j link` entries, sorted.
pub fn names(links: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        links.as_array().unwrap().iter().map(|l| l["ifname"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

/// The entry named `name` in an `ip -j` list.
pub fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == name)
        .unwrap_or_else(|| panic!("{name} not found in {list}"))
}

/// `ADDR/PREFIX` strings of an `ip -j addr` entry, with flags, e.g. `fd00::1/112 nodad`.
pub fn addrs(entry: &Value) -> Vec<String> {
    entry["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut s = format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]);
            if a["nodad"] == true {
                s.push_str(" nodad");
            }
            s
        })
        .collect()
}

/// Poll `cond` (for test checks only) until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// The outcome of a tool run, with assertions.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    what: String,
}

impl Run {
    /// Wrap an output.
    pub fn of(out: Output, what: String) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            what,
        }
    }

    /// It succeeded; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "`{}` failed: {}", self.what, self.stderr);
        &self.stdout
    }

    /// It failed with `code` and exactly one line on stderr, `tool: ...` containing `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) -> &str {
        assert_eq!(
            self.code, code,
            "`{}`: expected exit {code}, got {}; stderr: {}",
            self.what, self.code, self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "`{}`: stderr must be one line: {:?}", self.what, self.stderr);
        let first = self.what.split_whitespace().next().unwrap();
        let tool = first.rsplit('/').next().unwrap();
        assert!(
            self.stderr.starts_with(&format!("{tool}: ")),
            "`{}`: stderr must start with '{tool}: ': {}",
            self.what,
            self.stderr
        );
        assert!(self.stderr.contains(needle), "`{}`: stderr lacks {needle:?}: {}", self.what, self.stderr);
        &self.stderr
    }
}

/// The network namespace inode of `pid`.
pub fn netns_of(pid: u32) -> u64 {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    link.to_string_lossy().trim_start_matches("net:[").trim_end_matches(']').parse().unwrap()
}

/// True if any process is in the network namespace `inode`, or it is bind-mounted.
pub fn netns_alive(inode: u64) -> bool {
    let needle = format!("net:[{inode}]");
    let held = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_link(e.path().join("ns/net")).is_ok_and(|l| l.to_string_lossy() == needle));
    held || std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&needle)
}

/// True while process `pid` runs its program: it exists, is not a zombie, and has not begun
/// to exit. A PID 1 whose namespace still holds an orphan waits inside its exit until that
/// orphan's new parent, outside, reaps it (`zap_pid_ns_processes`): as long as that parent
/// takes - this machine's own PID 1 reaps late - and with its program, descriptors and memory
/// already gone.
pub fn alive(pid: u32) -> bool {
    /// `PF_EXITING` in `/proc/PID/stat`'s flags (its ninth field).
    const PF_EXITING: u64 = 0x4;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let mut fields = s.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let flags: u64 = fields.nth(5)?.parse().ok()?;
            Some(state != "Z" && flags & PF_EXITING == 0)
        })
        .unwrap_or(false)
}

/// Wait (by pidfd, no polling) until process `pid` exits; false on timeout.
pub fn wait_exit(pid: u32, limit: Duration) -> bool {
    use std::os::fd::AsFd;
    let Ok(fd) = nstools::sys::pidfd_open(pid as i32) else {
        return true; // already gone
    };
    let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let ms = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
    nix::poll::poll(&mut fds, ms).unwrap_or(0) > 0
}

/// Send `signal` to `pid`.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// A plain (non-root) user for rootless tests, created once with `useradd`. `None` (after a
/// loud skip) when not running as real root.
pub fn plain_user(test: &str) -> Option<&'static str> {
    const USER: &str = "nstools-test";
    static MADE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !real_root() {
        skip(test, "needs real root to create and switch to a plain user");
        return None;
    }
    let ok = *MADE.get_or_init(|| {
        Command::new("id").arg(USER).output().is_ok_and(|o| o.status.success())
            || Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/bin/sh", USER])
                .status()
                .is_ok_and(|s| s.success())
            || Command::new("id").arg(USER).output().is_ok_and(|o| o.status.success())
    });
    assert!(ok, "cannot create the user {USER}");
    Some(USER)
}

impl Sandbox {
    /// Run a shell script as the plain user `user` (environment kept, tag included).
    pub fn sh_as(&self, user: &str, script: &str) -> Run {
        let out = self
            .command("setpriv")
            .args(["--reuid", user, "--regid", user, "--init-groups", "sh", "-c", script])
            .env("HOME", "/tmp")
            .current_dir("/tmp")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::of(out, script.to_owned())
    }
}

/// The targets of `pid`'s open descriptors (`/dev/null`, `anon_inode:[pidfd]`...).
pub fn open_fds(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A zombie child of `parent`, if it has one.
pub fn zombie_child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        (rest[0] == "Z" && rest[1] == parent.to_string()).then_some(pid)
    })
}

/// tests/tcp.py, the TCP sink and sender shared with the kernel matrix and the benchmark.
const TCP_PY: &str = include_str!("tcp.py");

/// A python3 program (for `python3 -c`) of a TCP sink for rate measurements: listens on `addr`
/// port 5001, prints `ready`, counts what one connection sends and answers with the count.
pub fn tcp_sink_py(addr: &str) -> String {
    format!("{TCP_PY}\nsink({addr:?})\n")
}

/// Its client: sends `sys.argv[1]` bytes to `addr` port 5001, prints `TRANSFER BYTES SECONDS`
/// (from the first byte to the sink's count coming back).
pub fn tcp_send_py(addr: &str) -> String {
    format!("{TCP_PY}\nsend({addr:?}, int(sys.argv[1]))\n")
}
