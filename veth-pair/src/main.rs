//! veth-pair: create a veth pair with each end directly in its own network namespace.

use std::process::ExitCode;

fn main() -> ExitCode {
    nstools::cli::main(veth_pair::NAME, veth_pair::run)
}
