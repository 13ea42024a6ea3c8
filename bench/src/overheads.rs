//! Tool overheads: process starts and entering a namespace (`ns-exec` against `nsenter`),
//! listing (`ns-ls` against `lsns` and `ip netns`), memory (an idle holder; the peak of each
//! tool and of its util-linux/iproute2 counterpart), binary sizes and release profiles.
//!
//! Every comparison runs its commands interleaved (one run of each, then again), so that
//! machine noise hits all alike; the report gives medians.

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;

use crate::driver::{Ctx, Plan, kill_all, reap, tagged, which};
use crate::stats::median;

/// The five tools.
pub const TOOLS: [&str; 5] = ["ns-unshare", "veth-pair", "br-attach", "ns-exec", "ns-ls"];

/// A timed command: its label and the median of its runs (seconds).
#[derive(Debug, Clone)]
pub struct Timed {
    pub label: String,
    pub median: f64,
    pub runs: usize,
    /// Peak memory (kB), when measured.
    pub maxrss: Option<u64>,
}

/// The listing comparison with `count` namespaces.
#[derive(Debug, Clone)]
pub struct Listing {
    pub count: usize,
    /// Namespaces each tool reported (lines), to show they saw the same thing.
    pub seen: Vec<(String, usize)>,
    pub rows: Vec<Timed>,
}

/// A release profile built by bench/run for comparison.
#[derive(Debug, Clone)]
pub struct Profile {
    pub settings: String,
    pub sizes: Vec<(String, u64)>,
    pub exec: f64,
    pub listing: Option<(usize, f64)>,
}

/// A binary's size on disk and whether it has a symbol table.
#[derive(Debug, Clone)]
pub struct Size {
    pub name: String,
    pub bytes: u64,
    pub stripped: Option<bool>,
}

/// A rate limit's accuracy: what was asked, how much was sent, the payload rates measured.
#[derive(Debug, Clone)]
pub struct RateRow {
    pub rate: String,
    pub asked_mbit: f64,
    pub bytes: u64,
    pub mbit: Vec<f64>,
}

/// Rates to measure: (as `tc` spells it, Mbit/s, bytes sent: about two seconds' worth at most).
const RATES: [(&str, f64, u64); 3] =
    [("1mbit", 1.0, 250_000), ("8mbit", 8.0, 1_000_000), ("100mbit", 100.0, 10_000_000)];

/// Everything in this module's part of the report.
#[derive(Debug, Clone, Default)]
pub struct Overheads {
    pub starts: Vec<Timed>,
    pub listing: Vec<Listing>,
    /// VmRSS and RssAnon of an idle holder (kB).
    pub holder: Option<(u64, u64)>,
    /// (what, command, kB).
    pub maxrss: Vec<(String, String, u64)>,
    pub sizes: Vec<Size>,
    pub profiles: Vec<Profile>,
    pub profile_settings: String,
    pub rates: Vec<RateRow>,
    /// Why the rates were not measured, if so.
    pub rates_skipped: Option<String>,
}

/// A command to time: label, argv.
type Case = (String, Vec<String>);

/// Undoes what a measured command made, given its output.
type Cleanup<'a> = dyn Fn(&str) -> Result<()> + 'a;

fn status_of(argv: &[String]) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

/// Run `cases` interleaved `runs` times (after one warm-up run each); medians.
fn interleaved(ctx: &Ctx, cases: &[Case], runs: usize) -> Result<Vec<Timed>> {
    let mut times = vec![Vec::with_capacity(runs); cases.len()];
    for round in 0..=runs {
        for (i, (label, argv)) in cases.iter().enumerate() {
            let mut cmd = status_of(argv);
            cmd.env("PATH", &ctx.path);
            let t = Instant::now();
            let status = cmd.status().with_context(|| format!("cannot run {label}"))?;
            let elapsed = t.elapsed().as_secs_f64();
            ensure!(status.success(), "{label} failed: {status}");
            if round > 0 {
                times[i].push(elapsed);
            }
        }
        reap();
    }
    Ok(cases
        .iter()
        .zip(times)
        .map(|((label, _), t)| Timed { label: label.clone(), median: median(&t), runs, maxrss: None })
        .collect())
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn tool(ctx: &Ctx, name: &str) -> String {
    ctx.bin.join(name).to_string_lossy().into_owned()
}

/// `nstools-bench maxrss CMD...`: run CMD (fork and exec, so that the measured child starts as
/// a copy of this small process) and print its peak resident memory.
pub fn maxrss_probe(cmd: &[String]) -> Result<u8> {
    let argv: Vec<CString> = cmd.iter().map(|a| CString::new(a.as_str())).collect::<Result<_, _>>()?;
    match nstools::sys::fork()? {
        ForkResult::Child => {
            let _ = nix::unistd::execvp(&argv[0], &argv);
            nstools::sys::exit_now(127)
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None)?;
            let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
            eprintln!("@maxrss {}", usage.max_rss());
            Ok(match status {
                WaitStatus::Exited(_, code) => code as u8,
                _ => 1,
            })
        }
    }
}

/// Peak memory of `argv` (kB) and what it printed.
fn maxrss(ctx: &mut Ctx, argv: &[String]) -> Result<(u64, String)> {
    let tag = ctx.tag();
    let out = ctx
        .command(&ctx.exe, &tag)
        .arg("maxrss")
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot measure {}", argv.join(" ")))?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "{} failed: {}", argv.join(" "), err.trim());
    let kb = err
        .lines()
        .filter_map(|l| l.strip_prefix("@maxrss "))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .context("no @maxrss line")?;
    Ok((kb, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn median_kb(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// A holder for the comparisons, made with ns-unshare; its PID.
fn holder(ctx: &mut Ctx, tag: &str) -> Result<String> {
    let out = ctx.command(ctx.bin.join("ns-unshare"), tag).stdin(Stdio::null()).output()?;
    ensure!(out.status.success(), "ns-unshare failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn stop_with(ns_unshare: &str, pid: &str) -> Result<()> {
    let status = status_of(&[ns_unshare.into(), "--stop".into(), pid.into()]).status()?;
    ensure!(status.success(), "ns-unshare --stop {pid} failed");
    reap();
    Ok(())
}

fn run_ok(argv: &[&str]) -> Result<()> {
    let status = status_of(&s(argv)).status()?;
    ensure!(status.success(), "{} failed", argv.join(" "));
    Ok(())
}

/// Kilobytes from a `/proc/PID/status` line such as `VmRSS:  1234 kB`.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// Profiles built by bench/run: target/bench-profiles/NAME/{bin/,settings}.
fn profiles(ctx: &Ctx) -> Vec<(String, String, PathBuf)> {
    let dir = ctx.root.join("target/bench-profiles");
    let mut found: Vec<(String, String, PathBuf)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let release = e.path().join("bin");
            let settings = fs::read_to_string(e.path().join("settings")).ok()?;
            TOOLS
                .iter()
                .all(|t| release.join(t).is_file())
                .then(|| (e.file_name().to_string_lossy().into_owned(), settings.trim().to_owned(), release))
        })
        .collect();
    found.sort();
    found
}

/// True if an ELF file has no `.symtab` (None if it cannot be read as ELF64).
fn stripped(path: &Path) -> Option<bool> {
    let data = fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?) as usize);
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?) as usize);
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?) as usize);
    if data.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let strtab = u64_at(shoff + shstrndx * shentsize + 0x18)?;
    for i in 0..shnum {
        let name = u32_at(shoff + i * shentsize)?;
        let bytes = data.get(strtab + name..)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        if &bytes[..end] == b".symtab" {
            return Some(false);
        }
    }
    Some(true)
}

pub fn measure(ctx: &mut Ctx, plan: &Plan) -> Result<Overheads> {
    let mut o = Overheads::default();
    let profiles = if plan.profiles { profiles(ctx) } else { Vec::new() };
    let tag = ctx.tag();
    let pid = holder(ctx, &tag)?;

    // Process starts, and entering a namespace.
    eprintln!("  process starts and ns-exec against nsenter ({} runs each)", plan.exec_runs);
    let t = |name: &str| tool(ctx, name);
    let mut cases: Vec<Case> = vec![
        ("ns-exec -t PID true".into(), vec![t("ns-exec"), "-t".into(), pid.clone(), "true".into()]),
        ("nsenter -t PID --net true".into(), s(&["nsenter", "-t", &pid, "--net", "true"])),
        ("true".into(), s(&["true"])),
        ("sh -c :".into(), s(&["sh", "-c", ":"])),
        ("ip -V".into(), s(&["ip", "-V"])),
        ("unshare --version".into(), s(&["unshare", "--version"])),
        ("nsenter --version".into(), s(&["nsenter", "--version"])),
    ];
    for name in TOOLS {
        cases.push((format!("{name} --version"), vec![t(name), "--version".into()]));
    }
    for (name, _, release) in &profiles {
        let exe = release.join("ns-exec").to_string_lossy().into_owned();
        cases.push((format!("ns-exec -t PID true [{name}]"), vec![exe, "-t".into(), pid.clone(), "true".into()]));
    }
    o.starts = interleaved(ctx, &cases, plan.exec_runs)?;

    // Memory.
    eprintln!("  memory");
    if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
        o.holder = status_kb(&status, "VmRSS:").zip(status_kb(&status, "RssAnon:"));
    }
    let unshare_bin = t("ns-unshare");
    let stop_holder = |out: &str| stop_with(&unshare_bin, out);
    let none = |_: &str| Ok(());
    let del = |name: &'static str| move |_: &str| run_ok(&["ip", "link", "del", name]);
    let (del_mr0, del_mr1, del_br0, del_br1) = (del("mr0-br"), del("mr1"), del("mrbr0"), del("mrbr1"));
    let cases: Vec<(&str, Vec<String>, &Cleanup)> = vec![
        ("baseline of the method", s(&["true"]), &none),
        ("create a namespace", vec![t("ns-unshare")], &stop_holder),
        ("create a namespace", s(&["unshare", "--net", "true"]), &none),
        (
            "create a veth pair",
            vec![t("veth-pair"), "mr0".into(), "--netns".into(), pid.clone(), "--addr".into(), "10.99.0.1/24".into()],
            &del_mr0,
        ),
        ("create a veth pair", s(&["ip", "link", "add", "mr1", "type", "veth", "peer", "name", "mr1-br"]), &del_mr1),
        (
            "create a bridge",
            vec![
                t("br-attach"),
                "--create".into(),
                "--bridge".into(),
                "mrbr0".into(),
                "--addr".into(),
                "10.98.0.1/24".into(),
            ],
            &del_br0,
        ),
        ("create a bridge", s(&["ip", "link", "add", "mrbr1", "type", "bridge"]), &del_br1),
        ("enter a namespace", vec![t("ns-exec"), "-t".into(), pid.clone(), "true".into()], &none),
        ("enter a namespace", s(&["nsenter", "-t", &pid, "--net", "true"]), &none),
    ];
    for (what, argv, cleanup) in cases {
        let mut kbs = Vec::new();
        for _ in 0..3 {
            let (kb, out) = maxrss(ctx, &argv)?;
            cleanup(out.trim())?;
            kbs.push(kb);
        }
        o.maxrss.push((what.to_owned(), argv_label(&argv), median_kb(&mut kbs)));
    }
    stop_with(&unshare_bin, &pid)?;
    let left = tagged(&tag);
    if !left.is_empty() {
        kill_all(&left);
        bail!("processes left behind by the overhead runs");
    }

    // Listing.
    for &(count, runs) in &plan.listing {
        let with_profiles = count == plan.listing.iter().map(|l| l.0).max().unwrap_or(0);
        o.listing.push(listing(ctx, count, runs, if with_profiles { &profiles } else { &[] })?);
    }

    // Sizes and profiles.
    for name in TOOLS {
        let path = ctx.bin.join(name);
        o.sizes.push(Size { name: name.into(), bytes: fs::metadata(&path)?.len(), stripped: stripped(&path) });
    }
    o.profile_settings = release_profile(&ctx.root);
    for (name, settings, release) in &profiles {
        let exec =
            o.starts.iter().find(|t| t.label == format!("ns-exec -t PID true [{name}]")).map_or(f64::NAN, |t| t.median);
        let listing = o
            .listing
            .last()
            .and_then(|l| l.rows.iter().find(|r| r.label == format!("ns-ls [{name}]")).map(|r| (l.count, r.median)));
        let sizes =
            TOOLS.iter().map(|t| (t.to_string(), fs::metadata(release.join(t)).map_or(0, |m| m.len()))).collect();
        o.profiles.push(Profile { settings: settings.clone(), sizes, exec, listing });
    }
    // Rate limits.
    if plan.rate_runs > 0 {
        if which("python3").is_none() {
            o.rates_skipped = Some("python3 is not installed".into());
        } else {
            for (rate, asked_mbit, bytes) in RATES {
                eprintln!("  rate limit {rate}: {bytes} bytes over TCP, {} runs", plan.rate_runs);
                o.rates.push(RateRow {
                    rate: rate.into(),
                    asked_mbit,
                    bytes,
                    mbit: rate_runs(ctx, rate, bytes, plan.rate_runs)?,
                });
            }
        }
    }
    ensure!(tagged(&tag).is_empty(), "processes left behind");
    Ok(o)
}

/// `bench/variants/rate.sh`: payload rates (Mbit/s) of `runs` transfers of `bytes` from a
/// testenv limited to `rate`.
fn rate_runs(ctx: &mut Ctx, rate: &str, bytes: u64, runs: usize) -> Result<Vec<f64>> {
    let tag = ctx.tag();
    let out = ctx
        .command("sh", &tag)
        .arg(ctx.variants.join("rate.sh"))
        .args([rate, &bytes.to_string(), &runs.to_string()])
        .env("BENCH_SCRIPTS", ctx.root.join("scripts"))
        .env("NSTOOLS_SELFTEST_LABEL", format!("bench-rate-{tag}"))
        .stdin(Stdio::null())
        .output()?;
    ensure!(out.status.success(), "rate.sh {rate}: {}", String::from_utf8_lossy(&out.stderr).trim());
    let text = String::from_utf8_lossy(&out.stdout);
    let mbit: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("TRANSFER ")?.split_whitespace();
            let (n, secs): (f64, f64) = (w.next()?.parse().ok()?, w.next()?.parse().ok()?);
            (n as u64 == bytes).then(|| n * 8.0 / secs / 1e6)
        })
        .collect();
    ensure!(mbit.len() == runs, "rate.sh {rate}: {runs} transfers expected, got: {text}");
    ctx.check_clean(&tag)?;
    Ok(mbit)
}

fn argv_label(argv: &[String]) -> String {
    let mut words: Vec<String> = argv.to_vec();
    if let Some(program) = words.first_mut() {
        *program = program.rsplit('/').next().unwrap_or_default().to_owned();
    }
    // PIDs vary: show them as PID.
    for w in words.iter_mut().skip(1) {
        if w.bytes().all(|b| b.is_ascii_digit()) {
            *w = "PID".into();
        }
    }
    words.join(" ")
}

/// The `[profile.release]` section of the workspace's Cargo.toml.
fn release_profile(root: &Path) -> String {
    let text = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with('[') {
            inside = line.trim() == "[profile.release]";
        } else if inside && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            out.push(line.trim().to_owned());
        }
    }
    out.join(", ")
}

fn listing(ctx: &mut Ctx, count: usize, runs: usize, profiles: &[(String, String, PathBuf)]) -> Result<Listing> {
    eprintln!("  listing with {count} namespaces ({runs} runs each)");
    let tag = ctx.tag();
    let mut fixture = ctx
        .command(&ctx.exe, &tag)
        .args(["fixture", &count.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut ready = String::new();
    BufReader::new(fixture.stdout.take().context("no stdout")?).read_line(&mut ready)?;
    let result = (|| -> Result<Listing> {
        ensure!(ready.trim() == "ready", "the fixture failed");
        let t = |name: &str| tool(ctx, name);
        let mut cases: Vec<Case> = vec![
            ("ns-ls".into(), vec![t("ns-ls")]),
            ("ns-ls --no-interfaces".into(), vec![t("ns-ls"), "--no-interfaces".into()]),
            ("ns-ls --json".into(), vec![t("ns-ls"), "--json".into()]),
            ("lsns -t net".into(), s(&["lsns", "-t", "net"])),
            ("ip -all netns exec ip -br addr".into(), s(&["ip", "-all", "netns", "exec", "ip", "-br", "addr"])),
            (
                "ip netns list, then ip -n NAME -br addr for each".into(),
                s(&["sh", "-c", "ip netns list | while read -r name _; do ip -n \"$name\" -br addr; done"]),
            ),
        ];
        if which("lsns").is_none() {
            cases.retain(|c| c.0 != "lsns -t net");
        }
        for (name, _, release) in profiles {
            cases.push((format!("ns-ls [{name}]"), vec![release.join("ns-ls").to_string_lossy().into_owned()]));
        }
        // What each saw.
        let lines = |argv: &[&str]| -> Result<usize> {
            let out = Command::new(argv[0]).args(&argv[1..]).env("PATH", &ctx.path).stderr(Stdio::null()).output()?;
            Ok(String::from_utf8_lossy(&out.stdout).lines().count())
        };
        let ns_ls = t("ns-ls");
        let mut seen = vec![
            ("ns-ls: namespaces".to_owned(), lines(&[&ns_ls, "-n", "-o", "NS", "--no-interfaces"])?),
            ("ip netns list: names".to_owned(), lines(&["ip", "netns", "list"])?),
        ];
        if which("lsns").is_some() {
            seen.push(("lsns -t net: namespaces".to_owned(), lines(&["lsns", "-n", "-t", "net"])?));
        }
        for (what, n) in &seen {
            ensure!(*n >= count, "{what}: {n}, fewer than the {count} namespaces made");
        }
        let mut rows = interleaved(ctx, &cases, runs)?;
        for (row, (_, argv)) in rows.iter_mut().zip(&cases) {
            row.maxrss = Some(maxrss(ctx, argv)?.0);
        }
        Ok(Listing { count, seen, rows })
    })();
    drop(fixture.stdin.take());
    let status = fixture.wait()?;
    reap();
    let listing = result?;
    ensure!(status.success(), "the fixture failed to clean up");
    let left = tagged(&tag);
    if !left.is_empty() {
        kill_all(&left);
        bail!("the listing fixture left processes behind");
    }
    Ok(listing)
}
