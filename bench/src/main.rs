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

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Run(driver::RunArgs),
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
        Cmd::Run(args) => driver::run(args),
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
