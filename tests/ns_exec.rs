//! ns-exec: exit codes, stdin, environment files, targets.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use nstools_tests::{Run, netns_of, sandbox, signal, wait_exit, wait_until};

fn holder(sb: &nstools_tests::Sandbox) -> u32 {
    sb.run("ns-unshare", &[]).ok().trim().parse().unwrap()
}

fn stop(pid: u32) {
    signal(pid, Signal::SIGTERM);
    assert!(wait_exit(pid, Duration::from_secs(2)));
}

#[test]
fn exit_codes_pass_through_and_are_documented() {
    let sb = sandbox!("exit_codes_pass_through_and_are_documented");
    let p = holder(&sb).to_string();
    assert_eq!(sb.run("ns-exec", &["-t", &p, "true"]).code, 0);
    assert_eq!(sb.run("ns-exec", &["-t", &p, "sh", "-c", "exit 42"]).code, 42);
    sb.run("ns-exec", &["-t", &p, "no-such-command-x"])
        .fails(127, "cannot run 'no-such-command-x': command not found (ENOENT)");
    let plain = std::env::temp_dir().join(format!("{}-plain", sb.tag));
    std::fs::write(&plain, "not a program\n").unwrap();
    sb.run("ns-exec", &["-t", &p, plain.to_str().unwrap()]).fails(126, "Permission denied (EACCES)");
    std::fs::remove_file(&plain).unwrap();
    sb.run("ns-exec", &["-t", &p, "/nonexistent/x"]).fails(127, "command not found");
    sb.run("ns-exec", &["-t", "2147483646", "true"]).fails(125, "no process with PID 2147483646");
    sb.run("ns-exec", &["--bogus", "-t", &p]).fails(125, "unexpected argument '--bogus'");
    sb.run("ns-exec", &["-t", "/etc/passwd", "true"]).fails(125, "is not a namespace file");
    sb.run("ns-exec", &["-t", "/proc/self/ns/net", "--uts", "true"]).fails(125, "give a PID");
    // Killed by a signal: ns-exec exec'd it, so the caller sees the signal itself.
    let r = sb.run("ns-exec", &["-t", &p, "sh", "-c", "kill -TERM $$"]);
    assert_eq!(r.code, -1);
    // Arguments after CMD are CMD's, dashes and all.
    assert_eq!(sb.run("ns-exec", &["-t", &p, "echo", "-n", "--x"]).ok(), "--x");
    let help = sb.run("ns-exec", &["--help"]).ok().to_owned();
    for code in ["125", "126", "127"] {
        assert!(help.contains(code), "--help documents {code}");
    }
    stop(p.parse().unwrap());
}

#[test]
fn stdin_passes_through_with_t_and_is_dev_null_without() {
    let sb = sandbox!("stdin_passes_through_with_t_and_is_dev_null_without");
    let p = holder(&sb);
    let mut child = sb
        .tool("ns-exec")
        .args(["-t", &p.to_string(), "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"daemon input\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "daemon input\n");
    // From stdin: the target is consumed, CMD reads /dev/null (and sees the namespace).
    let out = sb.must(&format!("echo {p} | ns-exec sh -c 'cat; readlink /proc/self/ns/net'"));
    assert_eq!(out.trim(), format!("net:[{}]", netns_of(p)));
    // ns-unshare --json piped in works too.
    let out = sb.must("ns-unshare --json --exit-with $$ | ns-exec readlink /proc/self/ns/net");
    assert!(out.starts_with("net:["));
    stop(p);
}

#[test]
fn stdin_targets_must_be_exactly_one_line() {
    let sb = sandbox!("stdin_targets_must_be_exactly_one_line");
    let p = holder(&sb);
    for (input, needle) in [
        ("", "no target: stdin was empty"),
        ("\n", "no target: stdin was empty"),
        ("123 456\n", "no network namespace named '123 456'"),
        ("0\n", "invalid target"),
        (&format!("{p}\ngarbage\n"), "expected exactly one line"),
        ("{\"x\":1}\n", "has no \"target\""),
        ("{not json\n", "invalid JSON"),
    ] {
        let mut child = sb.tool("ns-exec").arg("true").stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        Run::of(child.wait_with_output().unwrap(), "ns-exec true".into()).fails(125, needle);
    }
    stop(p);
}

#[test]
fn env_file_values_are_data_never_evaluated() {
    let sb = sandbox!("env_file_values_are_data_never_evaluated");
    let p = holder(&sb).to_string();
    let dir = std::env::temp_dir().join(format!("{}-env", sb.tag));
    std::fs::create_dir_all(&dir).unwrap();
    let pwned = dir.join("pwned");
    let exports = dir.join("exports.sh");
    std::fs::write(
        &exports,
        format!(
            "NETBIOSNAME=LOCALDC\nPASSWORD=$(touch {})`touch {}`;x\nSERVER_IP=10.53.57.21\n",
            pwned.display(),
            pwned.display()
        ),
    )
    .unwrap();
    let out = sb.run(
        "ns-exec",
        &[
            "-t",
            &p,
            "--env-file",
            exports.to_str().unwrap(),
            "sh",
            "-c",
            "printf '%s|%s' \"$NETBIOSNAME\" \"$PASSWORD\"",
        ],
    );
    assert_eq!(out.ok(), format!("LOCALDC|$(touch {})`touch {}`;x", pwned.display(), pwned.display()));
    assert!(!pwned.exists(), "a value was evaluated");
    std::fs::write(&exports, "GOOD=1\nthis line is bad\n").unwrap();
    sb.run("ns-exec", &["-t", &p, "--env-file", exports.to_str().unwrap(), "true"])
        .fails(125, "line 2: 'this line is bad' is not KEY=VALUE");
    sb.run("ns-exec", &["-t", &p, "--env-file", "/nonexistent/exports", "true"])
        .fails(125, "cannot read '/nonexistent/exports'");
    std::fs::remove_dir_all(&dir).unwrap();
    stop(p.parse().unwrap());
}

#[test]
fn pid_inode_is_refused_once_the_namespace_changed_and_dead_pids_are_clear() {
    let mut sb = sandbox!("pid_inode_is_refused_once_the_namespace_changed_and_dead_pids_are_clear");
    // A process that moves to another network namespace under the same PID (exec of unshare).
    let dir = std::env::temp_dir().join(format!("{}-go", sb.tag));
    let go = dir.display().to_string();
    let pid = sb.spawn(
        &["sh", "-c", &format!("while [ ! -e {go} ]; do sleep 0.01; done; exec unshare --net sleep infinity")],
        "sh",
    );
    let before = netns_of(pid);
    sb.run("ns-exec", &["-t", &format!("{pid}:{before}"), "true"]).ok();
    std::fs::write(&dir, "").unwrap();
    assert!(wait_until(Duration::from_secs(5), || netns_of(pid) != before));
    std::fs::remove_file(&dir).unwrap();
    sb.run("ns-exec", &["-t", &format!("{pid}:{before}"), "true"])
        .fails(125, &format!("is no longer in network namespace {before}"));
    // A dead PID and a zombie.
    let dead = {
        let mut c = sb.command("true").spawn().unwrap();
        let id = c.id();
        c.wait().unwrap();
        id
    };
    sb.run("ns-exec", &["-t", &dead.to_string(), "true"]).fails(125, &format!("no process with PID {dead}"));
    let zparent = sb.spawn(&["sh", "-c", "sleep 0 & echo $! > /dev/null; exec sleep infinity"], "sleep");
    let zombie = wait_until(Duration::from_secs(2), || nstools_tests::zombie_child_of(zparent).is_some());
    assert!(zombie);
    let z = nstools_tests::zombie_child_of(zparent).unwrap();
    sb.run("ns-exec", &["-t", &z.to_string(), "true"]).fails(125, &format!("process {z} has exited"));
}

#[test]
fn working_directory_and_other_namespaces() {
    let sb = sandbox!("working_directory_and_other_namespaces");
    let p = sb.run("ns-unshare", &["--uts", "--hostname", "LOCALDC"]).ok().trim().to_owned();
    assert_eq!(sb.run("ns-exec", &["-t", &p, "--wd", "/tmp", "pwd"]).ok().trim(), "/tmp");
    sb.run("ns-exec", &["-t", &p, "--wd", "/nonexistent", "pwd"]).fails(125, "cannot change directory to /nonexistent");
    assert_eq!(sb.run("ns-exec", &["-t", &p, "--uts", "hostname"]).ok().trim(), "LOCALDC");
    let all =
        sb.run("ns-exec", &["-t", &p, "--all", "sh", "-c", "hostname; readlink /proc/self/ns/net"]).ok().to_owned();
    assert_eq!(all, format!("LOCALDC\nnet:[{}]\n", netns_of(p.parse().unwrap())));
    stop(p.parse().unwrap());
}

#[test]
fn namespaces_already_ours_are_skipped() {
    // Samba's README found selftest through waf's 'sh -c' wrapper, which lives in the caller's
    // own namespaces: entering them must change nothing and need no privilege.
    let mut sb = sandbox!("namespaces_already_ours_are_skipped");
    let me = sb.anchor().to_string();
    assert_eq!(sb.run("ns-exec", &["-t", &me, "--all", "echo", "ok"]).ok(), "ok\n");
    assert_eq!(sb.run("ns-exec", &["-t", &me, "--user", "--net", "--uts", "echo", "ok"]).ok(), "ok\n");
    let Some(user) = nstools_tests::plain_user(sb.name()) else { return };
    // A plain user's own shell: no privilege over its network namespace, none needed.
    let r = sb.sh_as(user, "sleep 5 & ns-exec -t $! --all echo ok; ns-exec -t $! echo ok; kill $!");
    assert_eq!(r.ok(), "ok\nok\n", "{}", r.stderr);
    let r = sb.sh_as(user, "sleep 5 & ns-exec -t $! --user true; s=$?; kill $!; exit $s");
    assert_eq!(r.code, 0, "an explicit --user into our own user namespace is skipped too: {}", r.stderr);
}

#[test]
fn entering_a_mount_namespace_keeps_the_working_directory() {
    // Samba's selftest starts its daemons by relative path (./bin/timelimit) from the source
    // directory; the testenv's mount namespace must not move them to its root.
    let mut sb = sandbox!("entering_a_mount_namespace_keeps_the_working_directory");
    let work = sb.workdir("cwd");
    std::fs::write(work.join("prog"), "#!/bin/sh\necho \"ran in $(pwd)\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.join("prog"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = sb.run("ns-unshare", &["--mount", "--pid"]).ok().trim().to_owned();
    let out = sb.tool("ns-exec").args(["-t", &p, "--all", "./prog"]).current_dir(&work).output().unwrap();
    let r = Run::of(out, "ns-exec".into());
    assert_eq!(r.ok(), format!("ran in {}\n", work.display()));
    // A directory the namespace does not have: its root, as nsenter does.
    let out = sb.tool("ns-exec").args(["-t", &p, "--mount", "pwd"]).current_dir("/proc/self/fd").output().unwrap();
    assert_eq!(Run::of(out, "ns-exec".into()).ok(), "/\n");
    // --wd relative to the caller's directory.
    let out = sb.tool("ns-exec").args(["-t", &p, "--all", "--wd", ".", "./prog"]).current_dir(&work).output().unwrap();
    assert_eq!(Run::of(out, "ns-exec".into()).ok(), format!("ran in {}\n", work.display()));
    sb.run("ns-unshare", &["--stop", &p]).ok();
}

#[test]
fn end_netns_leaves_a_namespace_its_parent_is_in() {
    // ns-exec's parent (the shell) is in the target's namespace: it is not CMD's own, so
    // nothing in it is ended - no SIGTERM to its processes, no veth deleted.
    let mut sb = sandbox!("end_netns_leaves_a_namespace_its_parent_is_in");
    let anchor = sb.anchor();
    sb.must("ip link add ep0 type veth peer name ep1");
    let r = Run::of(
        sb.command("sh").args(["-c", "ns-exec -t $$ --end-netns -- true; echo done"]).output().unwrap(),
        "ns-exec --end-netns in the parent's namespace".into(),
    );
    assert_eq!(r.ok(), "done\n");
    assert!(nstools_tests::alive(anchor), "a process of the parent's namespace got SIGTERM");
    assert!(sb.links().iter().any(|l| l == "ep0"), "a veth of the parent's namespace was deleted: {:?}", sb.links());
}

#[test]
fn end_netns_passes_every_signal_on_then_ends_the_namespace() {
    let sb = sandbox!("end_netns_passes_every_signal_on_then_ends_the_namespace");
    let p = holder(&sb);
    sb.must(&format!("veth-pair veth7 --netns {p}"));
    let net = netns_of(p);
    // A command that reports what it gets, leaves a helper behind, and ends on SIGALRM.
    let script = "trap 'echo got USR1' USR1; trap 'echo got WINCH' WINCH; trap 'echo got ALRM; exit 5' ALRM
                  setsid sleep infinity < /dev/null > /dev/null 2>&1 &
                  echo ready; while :; do sleep 1 & wait $!; done";
    let mut child = sb
        .tool("ns-exec")
        .args(["-t", &p.to_string(), "--end-netns", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    for sig in [Signal::SIGUSR1, Signal::SIGWINCH, Signal::SIGALRM] {
        signal(child.id(), sig);
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line, format!("got {}\n", &sig.as_str()[3..]));
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5), "ns-exec exits with its command's status");
    // The holder got SIGTERM with everything else left in the namespace; the pair is gone.
    assert!(wait_exit(p, Duration::from_secs(3)), "the holder (left in the namespace) was ended");
    assert!(wait_until(Duration::from_secs(3), || !nstools_tests::netns_alive(net)), "the namespace is gone");
    assert!(!sb.links().iter().any(|l| l.starts_with("veth7")), "{:?}", sb.links());
}

#[test]
fn exit_with_ends_the_command_when_that_process_exits() {
    let mut sb = sandbox!("exit_with_ends_the_command_when_that_process_exits");
    let watched = sb.spawn(&["sleep", "infinity"], "sleep");
    let me = sb.anchor().to_string();
    let mut child = sb
        .tool("ns-exec")
        .args([
            "-t",
            &me,
            "--exit-with",
            &watched.to_string(),
            "sh",
            "-c",
            "trap 'echo got TERM; exit 4' TERM; echo up; while :; do sleep 1 & wait $!; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "up\n");
    signal(watched, Signal::SIGKILL);
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "got TERM\n", "the command got SIGTERM when the watched process exited");
    assert_eq!(child.wait().unwrap().code(), Some(4));
    sb.run("ns-exec", &["-t", &me, "--exit-with", "/proc/self/ns/net", "true"])
        .fails(125, "--exit-with needs a process");
    sb.run("ns-exec", &["-t", &me, "--exit-with", "2147483646", "true"]).fails(125, "--exit-with: no process with PID");
}

/// What `--end-netns` waits on while the kernel destroys a testenv: the removal uevent of the
/// other end of its pair, heard through a filter that passes that interface's and no other's
/// (neither another interface's, nor its own queues').
#[test]
fn end_netns_hears_its_peers_removal_and_nothing_else() {
    use std::time::Instant;

    use nstools::Netlink;
    use nstools::netlink::link::LinkId;
    use nstools::netlink::uevent::{Removal, RemovalWatch};
    use nstools::netns::Netns;

    let mut sb = sandbox!("end_netns_hears_its_peers_removal_and_nothing_else");
    let (p, q) = (holder(&sb), holder(&sb));
    sb.must(&format!("veth-pair vn1 --netns {p}"));
    sb.must(&format!("veth-pair vn2 --netns {q}"));
    let home = Netns::of_pid(sb.anchor() as i32).unwrap();
    let mut nl = Netlink::open_in(&home).unwrap();
    let vn1 = nl.get_link(LinkId::Name("vn1-br")).unwrap().unwrap().index;
    let mut watch = home.run_in(|| RemovalWatch::open([(vn1, "vn1-br")])).unwrap();
    let soon = || Instant::now() + Duration::from_millis(50);
    assert_eq!(watch.next(soon()).unwrap(), Removal::Timeout, "nothing was removed yet");
    stop(q);
    assert!(wait_until(Duration::from_secs(3), || nl.get_link(LinkId::Name("vn2-br")).unwrap().is_none()));
    assert_eq!(watch.next(soon()).unwrap(), Removal::Timeout, "the filter passed another interface's removal");
    stop(p);
    assert_eq!(watch.next(Instant::now() + Duration::from_secs(3)).unwrap(), Removal::Removed(vn1));
    assert_eq!(watch.next(soon()).unwrap(), Removal::Timeout, "one uevent per interface, none per queue");
}

/// A command that deletes its testenv's pair and makes it again (the same names, other
/// indexes): `--end-netns` waits for the removal of the pair the namespace has when the command
/// ends, not the one it had when it started.
#[test]
fn end_netns_waits_for_the_pair_its_command_made_again() {
    let mut sb = sandbox!("end_netns_waits_for_the_pair_its_command_made_again");
    let anchor = sb.anchor().to_string();
    let again = r#"veth-pair --delete vr1 && veth-pair vr1 --peer-netns "$1""#;
    let testenv =
        format!(r#"veth-pair vr1 --peer-netns "$1" && exec ns-exec -t $$ --end-netns -- sh -c '{again}' sh "$1""#);
    // The veths of selftest's namespace the moment start_in_ns.sh's ns-exec has returned.
    let script = r#"unshare --net sh -c "$0" sh "$1" && ip -o link show type veth"#;
    let out = sb.command("sh").args(["-c", script, &testenv, &anchor]).stdin(Stdio::null()).output().unwrap();
    let r = Run::of(out, "a testenv whose command makes its pair again".into());
    assert_eq!(r.ok(), "", "a peer was still there when ns-exec --end-netns returned");
    assert!(!sb.links().iter().any(|l| l.starts_with("vr1")), "{:?}", sb.links());
}

/// Samba's selftest starts more daemons with `nsenter -t PID --net` while a testenv's command
/// runs: with `--end-netns`, PID (ns-exec) must show the testenv's namespace from the moment it
/// has entered it, also while it looks at its parent's namespace to get ready for the end.
#[test]
fn end_netns_never_shows_another_namespace_while_its_command_runs() {
    let sb = sandbox!("end_netns_never_shows_another_namespace_while_its_command_runs");
    let p = holder(&sb);
    let target = format!("net:[{}]", netns_of(p));
    let script = format!("ns-exec -t {p} --end-netns -- sleep 0.5 & echo $!; wait");
    let mut sh = sb.command("sh").args(["-c", &script]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(sh.stdout.take().unwrap()), &mut line).unwrap();
    let link = format!("/proc/{}/ns/net", line.trim());
    // What /proc shows, as often as it can be read, for the first 200 ms (the command runs 500).
    let (start, mut seen) = (std::time::Instant::now(), Vec::<String>::new());
    while start.elapsed() < Duration::from_millis(200) {
        let Ok(now) = std::fs::read_link(&link) else { continue };
        let now = now.to_string_lossy().into_owned();
        if seen.last() != Some(&now) {
            seen.push(now);
        }
    }
    assert!(sh.wait().unwrap().success());
    let entered = seen.iter().position(|n| *n == target).expect("ns-exec entered the target");
    assert!(seen[entered..].iter().all(|n| *n == target), "PID showed another namespace after the testenv's: {seen:?}");
    stop(p);
}
