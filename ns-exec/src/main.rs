//! ns-exec: run a command inside the namespaces of a process.

use std::process::ExitCode;

fn main() -> ExitCode {
    ns_exec::before_parsing();
    nstools::cli::main_with(ns_exec::NAME, Some(ns_exec::OWN_FAILURE), ns_exec::run)
}
