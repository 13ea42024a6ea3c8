//! A closed standard output (`ns-ls | head -1`): every tool ends quietly, as coreutils' tools
//! do - no message, death by SIGPIPE (141 in the shell) - after undoing what it did: the pair
//! `veth-pair --json` could not report is removed, the holder `ns-unshare` could not report is
//! stopped (the sandbox's leak check fails the test if one is left).
//!
//! The tools get the write end of a pipe whose read end is already closed, so that the first
//! write fails for certain (a reader that exits on its own, as `head` does, races the write).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nstools_tests::{Run, Sandbox, sandbox};

/// Run `cmd` with its stdout a pipe nobody reads: it must die of SIGPIPE with nothing on stderr.
#[track_caller]
fn into_closed_pipe(mut cmd: Command, what: &str) {
    // Close-on-exec: no child that another test thread starts meanwhile keeps the read end open.
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    drop(read);
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::from(write)).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(Signal::SIGPIPE as i32), "{what}: {:?}, stderr {stderr:?}", out.status);
    assert!(stderr.is_empty(), "{what}: no message for a closed pipe: {stderr}");
}

fn tool(sb: &Sandbox, name: &str, args: &[&str]) -> Command {
    let mut cmd = sb.tool(name);
    cmd.args(args);
    cmd
}

#[test]
fn ns_ls_ends_quietly() {
    let sb = sandbox!("ns_ls_ends_quietly");
    for args in [&[][..], &["--json"], &["--topology"], &["-n", "-o", "PID"], &["--help"], &["--version"]] {
        into_closed_pipe(tool(&sb, "ns-ls", args), &format!("ns-ls {}", args.join(" ")));
    }
    // As in a script: `ns-ls | head -c1` either finished writing before head left, or died of
    // SIGPIPE; never a message.
    let out = sb.command("bash").args(["-c", "ns-ls | head -c1 >/dev/null; echo ${PIPESTATUS[0]}"]).output().unwrap();
    let r = Run::of(out, "ns-ls | head -c1".into());
    assert!(["0", "141"].contains(&r.ok().trim()), "exit status {}", r.stdout);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn veth_pair_json_removes_the_pair_it_could_not_report() {
    let mut sb = sandbox!("veth_pair_json_removes_the_pair_it_could_not_report");
    let env = sb.spawn_netns().to_string();
    into_closed_pipe(tool(&sb, "veth-pair", &["v0", "--json", "--addr", "192.0.2.1/24"]), "veth-pair --json");
    assert_eq!(sb.links(), ["lo"]);
    // Each end in its own namespace: both go.
    let args = ["v1", "--netns", &env, "--json", "--addr", "192.0.2.1/24", "--peer-addr", "192.0.2.2/24"];
    into_closed_pipe(tool(&sb, "veth-pair", &args), "veth-pair --netns --json");
    assert_eq!(sb.links(), ["lo"]);
    assert_eq!(sb.links_in(env.parse().unwrap()), ["lo"]);
    // Without --json nothing is printed: the pair stays.
    let mut quiet = tool(&sb, "veth-pair", &["v2"]);
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    drop(read);
    assert!(quiet.stdin(Stdio::null()).stdout(Stdio::from(write)).status().unwrap().success());
    assert_eq!(sb.links(), ["lo", "v2", "v2-br"]);
}

#[test]
fn ns_unshare_stops_the_holder_it_could_not_report() {
    let sb = sandbox!("ns_unshare_stops_the_holder_it_could_not_report");
    let label = format!("epipe-{}", sb.tag);
    for args in [&["--name", &label][..], &["--name", &label, "--json"], &["--name", &label, "--print", "pid:inode"]] {
        into_closed_pipe(tool(&sb, "ns-unshare", args), &format!("ns-unshare {}", args.join(" ")));
    }
    let owned = sb.run("ns-ls", &["--owned", "-n", "-o", "LABEL", "--no-interfaces"]);
    assert!(!owned.ok().contains(&label), "holder left behind: {}", owned.stdout);
}
