//! ns-ls: list namespaces with their holders, interfaces, addresses and bridge topology.

use std::process::ExitCode;

fn main() -> ExitCode {
    nstools::cli::main(ns_ls::NAME, ns_ls::run)
}
