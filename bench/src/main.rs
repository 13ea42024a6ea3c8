//! nstools-bench: the benchmark behind `bench/run` (it writes BENCHMARKS.md), and the pieces it
//! runs in its own process: the in-process variants E and L, the listing fixture, and a max-RSS
//! probe.
//!
//! `run` re-executes itself under `unshare --net --mount` (plus `--user --map-root-user` when not
//! root), so that everything happens in a fresh network namespace, with a private `/run` (for
//! the `/run/netns` names of the listing comparison): the machine's own namespaces are never
//! touched.

mod driver;
mod floor;
mod overheads;
mod report;
mod stats;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use clap::{Parser, Subcommand};
use nstools::netlink::Netlink;
use nstools::vocab::LOOPBACK;

use crate::driver::{Ctx, Plan, RunArgs, Sample, Size, Variant, count_processes, run_variant, which};
use crate::report::Results;
use crate::stats::ms;

/// The nstools benchmark: testenv setup and teardown against iproute2/util-linux and against
/// the kernel's floor, tool overheads, memory and binary sizes. Use bench/run, which builds
/// first.
#[derive(Debug, Parser)]
#[command(name = "nstools-bench", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the benchmark and write the report
    Run(RunArgs),
    /// Variant E (or L with --lib): build testenvs N... in this process, speaking the driver's
    /// marker protocol on stdout
    #[command(hide = true)]
    Floor {
        /// Use the library's high-level functions (variant L) instead of bare requests
        #[arg(long)]
        lib: bool,
        /// Testenv numbers
        ids: Vec<u32>,
    },
    /// COUNT namespaces held by holders, bound under /run/netns, each with a veth pair; prints
    /// "ready", removes everything when stdin closes
    #[command(hide = true)]
    Fixture {
        /// How many
        count: usize,
    },
    /// Run CMD and print its peak memory (getrusage of the waited child) as "@maxrss KB" on
    /// stderr
    #[command(hide = true)]
    Maxrss {
        /// The command
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => run(args),
        Cmd::Floor { lib, ids } => floor::variant(lib, &ids),
        Cmd::Fixture { count } => floor::fixture(count),
        Cmd::Maxrss { cmd } => overheads::maxrss_probe(&cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nstools-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Re-execute under `unshare` in fresh namespaces.
fn isolate(args: &RunArgs) -> Result<u8> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new("unshare");
    if !nix::unistd::geteuid().is_root() {
        cmd.args(["--user", "--map-root-user"]).env("NSTOOLS_BENCH_ROOTLESS", "1");
    }
    // A PID namespace too: listings see only the benchmark's processes, and if the benchmark
    // is interrupted, everything it started dies with it (--kill-child).
    cmd.args(["--net", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(exe);
    let mut rest: Vec<OsString> = std::env::args_os().skip(1).collect();
    rest.push("--isolated".into());
    if args.command.is_none() {
        let shown: Vec<String> = std::env::args().skip(2).collect();
        rest.push("--command".into());
        rest.push(format!("bench/run {}", shown.join(" ")).trim_end().to_owned().into());
    }
    let err = cmd.args(rest).exec();
    Err(anyhow!("cannot run unshare (util-linux): {err}"))
}

/// In the fresh namespaces: a private /run (for /run/netns), loopback up, subreaper.
fn prepare_isolation() -> Result<()> {
    use nix::mount::{MsFlags, mount};
    mount(Some("nstools-bench"), "/run", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=755"))
        .context("cannot mount a private /run")?;
    fs::create_dir_all("/run/netns")?;
    Netlink::open()?.set_up(LOOPBACK).map_err(|e| e.into_error("cannot bring lo up"))?;
    nix::sys::prctl::set_child_subreaper(true)?;
    Ok(())
}

fn check_tools(plan: &Plan) -> Result<()> {
    let mut need = vec!["ip", "unshare", "nsenter", "ping", "sh"];
    if plan.variants.iter().any(|v| v.script().is_some()) {
        need.push("sleep");
    }
    for tool in need {
        ensure!(which(tool).is_some(), "{tool} is not installed (iproute2, util-linux, iputils-ping)");
    }
    Ok(())
}

pub fn run(args: RunArgs) -> Result<u8> {
    if !args.isolated {
        return isolate(&args);
    }
    let started = Instant::now();
    prepare_isolation()?;
    let mut plan = Plan::new(&args)?;
    check_tools(&plan)?;
    let root = match &args.root {
        Some(r) => r.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("no workspace")?.to_path_buf(),
    };
    let mut ctx = Ctx::new(root.clone())?;
    for tool in ["ns-unshare", "veth-pair", "br-attach", "ns-exec", "ns-ls"] {
        ensure!(ctx.bin.join(tool).is_file(), "{} is missing: build first (bench/run does)", tool);
    }
    if plan.variants.contains(&Variant::Ds) && !ctx.static_bin().join("ns-unshare").is_file() {
        eprintln!(
            "nstools-bench: no statically linked tools in {} (bench/run builds them): variant Ds left out",
            ctx.static_bin().display()
        );
        plan.variants.retain(|&v| v != Variant::Ds);
    }
    let machine = report::Machine::probe();
    eprintln!(
        "nstools-bench: {} ({} cores, Linux {}), load {}",
        machine.cpu, machine.cores, machine.kernel, machine.load
    );

    let mut samples: BTreeMap<(usize, Variant), Vec<Sample>> = BTreeMap::new();
    let mut retried = Vec::new();
    for &(n, reps) in &plan.sizes {
        for rep in 0..reps {
            for &v in &plan.variants {
                if v == Variant::A && plan.reps_a.is_some_and(|max| rep >= max) {
                    continue;
                }
                // On a busy machine a run can fail for reasons outside the variant (a timeout,
                // say): keep its work folder, say so in the report, and run it once more.
                let s = match run_variant(&mut ctx, v, n, &[]) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("nstools-bench: {e:#}\nnstools-bench: running it once more");
                        retried.push(format!("{e:#}"));
                        run_variant(&mut ctx, v, n, &[])?
                    }
                };
                eprintln!(
                    "  N={n:<3} rep {}/{reps} {}: setup {} ms/testenv, teardown {} ms/testenv (base {} ms)",
                    rep + 1,
                    v.letter(),
                    ms(s.setup / n as f64),
                    ms(s.teardown / n as f64),
                    ms(s.base),
                );
                samples.entry((n, v)).or_default().push(s);
            }
        }
    }

    let mut counts = BTreeMap::new();
    let mut counts_note = None;
    if let Some((n1, n2)) = plan.counts {
        if which("strace").is_some() {
            eprintln!("  process counts (strace -f, N={n1} and N={n2})");
            for &v in &plan.variants {
                counts.insert(v, count_processes(&mut ctx, v, n1, n2)?);
            }
        } else {
            counts_note = Some("strace is not installed: no process counts".to_owned());
        }
    }

    let overheads =
        if args.no_overheads { None } else { Some(overheads::measure(&mut ctx, &plan).context("tool overheads")?) };

    let machine = report::Machine { load_end: report::loadavg(), ..machine };
    let results = Results {
        command: args.command.clone().unwrap_or_else(|| "bench/run".into()),
        plan,
        samples,
        counts,
        counts_note,
        overheads,
        machine,
        seconds: started.elapsed().as_secs_f64(),
        retried,
    };
    let text = report::render(&results, &ctx);
    let output = match &args.output {
        Some(p) => p.clone(),
        None if results.plan.size == Size::Full => root.join("BENCHMARKS.md"),
        None => {
            let size = if results.plan.size == Size::Smoke { "smoke" } else { "quick" };
            root.join("target/bench").join(format!("BENCHMARKS-{size}.md"))
        }
    };
    if let Some(dir) = output.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&output, &text).with_context(|| format!("cannot write {}", output.display()))?;
    print!("{}", report::summary(&results));
    println!("report: {}", output.display());
    Ok(0)
}
