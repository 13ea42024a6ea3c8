//! ns-unshare: create namespaces held by a tiny holder process; print the holder's PID.

use std::process::ExitCode;

fn main() -> ExitCode {
    nstools::cli::main(ns_unshare::NAME, ns_unshare::run)
}
