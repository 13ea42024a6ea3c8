//! br-attach: attach interfaces to a bridge, waiting for them by netlink notification.

use std::process::ExitCode;

fn main() -> ExitCode {
    nstools::cli::main(br_attach::NAME, br_attach::run)
}
