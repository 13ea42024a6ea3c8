//! ns-unshare: holders, their namespaces, and their end.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nstools_tests::{alive, netns_alive, netns_of, sandbox, signal, wait_exit, wait_until};

fn own_netns() -> u64 {
    let link = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    link.to_string_lossy().trim_start_matches("net:[").trim_end_matches(']').parse().unwrap()
}

#[test]
fn piped_into_ns_exec_runs_in_a_new_namespace() {
    let sb = sandbox!("piped_into_ns_exec_runs_in_a_new_namespace");
    let out = sb.must(
        // The holder goes with this shell (never 'kill' every holder ns-ls lists: other tests',
        // and other people's, are among them).
        "ns-unshare --exit-with $$ | ns-exec readlink /proc/self/ns/net",
    );
    let inside = out.trim().trim_start_matches("net:[").trim_end_matches(']').parse::<u64>().unwrap();
    assert_ne!(inside, own_netns());
}

#[test]
fn command_substitution_returns_at_once_and_the_holder_is_tiny() {
    let sb = sandbox!("command_substitution_returns_at_once_and_the_holder_is_tiny");
    let start = Instant::now();
    let pid: u32 = sb.must("p=$(ns-unshare --name tiny); echo $p").trim().parse().unwrap();
    assert!(start.elapsed() < Duration::from_millis(500), "$(ns-unshare) took {:?}", start.elapsed());
    // Its own session, stdio on /dev/null, nothing else open but its signalfd and (its stdout
    // was a pipe) the socket on which a pipe-idiom claim could come.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    assert_eq!(fields[3], pid.to_string(), "session leader");
    let fds = || nstools_tests::open_fds(pid);
    // The holder closes its commit pipe once it has read the commit byte, which ns-unshare
    // writes just before it exits: on a busy machine that can be a moment after $(...) returns.
    wait_until(Duration::from_secs(2), || fds().len() == 5);
    let fds = fds();
    assert_eq!(fds.iter().filter(|f| *f == "/dev/null").count(), 3, "{fds:?}");
    assert!(fds.contains(&"anon_inode:[signalfd]".to_owned()), "{fds:?}");
    assert_eq!(fds.iter().filter(|f| f.starts_with("socket:")).count(), 1, "{fds:?}");
    assert_eq!(fds.len(), 5, "only stdio, the signalfd and the claim socket: {fds:?}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let anon: u64 =
        status.lines().find(|l| l.starts_with("RssAnon:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(anon < 1024, "holder uses {anon} kB of private memory");
    // Loopback is up, and the label is what ns-ls shows.
    let lo = nstools_tests::find(&sb.ip_in(pid, "link show"), "lo").clone();
    assert!(lo["flags"].as_array().unwrap().contains(&"UP".into()));
    let ls: serde_json::Value =
        serde_json::from_str(sb.run("ns-ls", &["-p", &pid.to_string(), "--json"]).ok()).unwrap();
    assert_eq!(ls["namespaces"][0]["label"], "tiny");
    assert_eq!(ls["namespaces"][0]["holder"], pid);
    signal(pid, Signal::SIGTERM);
    assert!(wait_exit(pid, Duration::from_secs(2)));
}

#[test]
fn each_termination_signal_ends_the_holder_and_its_namespace() {
    let sb = sandbox!("each_termination_signal_ends_the_holder_and_its_namespace");
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let pid: u32 = sb.run("ns-unshare", &[]).ok().trim().parse().unwrap();
        let inode = netns_of(pid);
        assert!(netns_alive(inode));
        signal(pid, sig);
        assert!(wait_exit(pid, Duration::from_secs(2)), "{sig} did not end the holder");
        assert!(
            wait_until(Duration::from_secs(2), || !alive(pid) && !netns_alive(inode)),
            "namespace left after {sig}"
        );
    }
}

#[test]
fn exit_with_ends_the_holder_within_100ms() {
    let mut sb = sandbox!("exit_with_ends_the_holder_within_100ms");
    let watched = sb.spawn(&["sleep", "infinity"], "sleep");
    let holder: u32 = sb.run("ns-unshare", &["--exit-with", &watched.to_string()]).ok().trim().parse().unwrap();
    assert!(alive(holder));
    signal(watched, Signal::SIGKILL);
    let start = Instant::now();
    assert!(wait_exit(holder, Duration::from_secs(2)));
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "holder outlived the watched process by {:?}",
        start.elapsed()
    );
    sb.run("ns-unshare", &["--exit-with", "2147483646"]).fails(1, "--exit-with: no process with PID 2147483646");
}

#[test]
fn json_and_pid_inode_output() {
    let sb = sandbox!("json_and_pid_inode_output");
    let v: serde_json::Value =
        serde_json::from_str(sb.run("ns-unshare", &["--json", "--name", "j", "--uts"]).ok()).unwrap();
    let pid = v["pid"].as_u64().unwrap() as u32;
    assert_eq!(v["netns"], netns_of(pid));
    assert_eq!(v["target"], format!("{pid}:{}", netns_of(pid)));
    assert_eq!(v["name"], "j");
    assert!(v["namespaces"]["uts"].is_u64());
    let line = sb.run("ns-unshare", &["--print", "pid:inode"]).ok().trim().to_owned();
    let (p, ino) = line.split_once(':').unwrap();
    let p: u32 = p.parse().unwrap();
    assert_eq!(ino.parse::<u64>().unwrap(), netns_of(p));
    // The form is accepted as a target.
    assert_eq!(sb.run("ns-exec", &["-t", &line, "readlink", "/proc/self/ns/net"]).ok().trim(), format!("net:[{ino}]"));
    for pid in [pid, p] {
        signal(pid, Signal::SIGTERM);
        assert!(wait_exit(pid, Duration::from_secs(2)));
    }
}

#[test]
fn bind_persists_for_ip_netns_and_is_removable() {
    let mut sb = sandbox!("bind_persists_for_ip_netns_and_is_removable");
    if !nstools_tests::real_root() {
        // Bind mounts go to the machine's mount namespace, owned by the initial user namespace.
        nstools_tests::skip(sb.name(), "needs real root: bind mounts under /run/netns");
        return;
    }
    let name = format!("{}-bind", sb.tag);
    let path = format!("/run/netns/{name}");
    let p2 = path.clone();
    sb.on_drop(move || nstools_tests_undo_bind(&p2));
    let pid: u32 = sb.run("ns-unshare", &["--bind", &path]).ok().trim().parse().unwrap();
    let inode = netns_of(pid);
    let out = sb.must(&format!("ip netns exec {name} ip -br link"));
    assert!(out.contains("lo"), "{out}");
    sb.run("veth-pair", &["bp0", "--netns", &pid.to_string()]).ok();
    // The holder goes; the bind keeps the namespace, with its veth pair.
    signal(pid, Signal::SIGTERM);
    assert!(wait_exit(pid, Duration::from_secs(2)));
    assert!(netns_alive(inode));
    assert!(sb.links().iter().any(|l| l == "bp0-br"), "the kept namespace lost its pair: {:?}", sb.links());
    // A second bind at the same path is refused.
    sb.run("ns-unshare", &["--bind", &path]).fails(1, "cannot bind the namespace at");
    // Documented removal.
    sb.must(&format!("ip netns delete {name}"));
    assert!(!std::path::Path::new(&path).exists());
    assert!(wait_until(Duration::from_secs(2), || !netns_alive(inode)));
    sb.run("ns-unshare", &["--bind", "/nonexistent-dir/x"]).fails(1, "is not a directory");
}

fn nstools_tests_undo_bind(path: &str) {
    let _ = std::process::Command::new("umount").args(["-l", path]).status();
    let _ = std::fs::remove_file(path);
}

#[test]
fn map_root_user_makes_the_caller_root_inside() {
    let sb = sandbox!("map_root_user_makes_the_caller_root_inside");
    let pid: u32 = sb.run("ns-unshare", &["--map-root-user"]).ok().trim().parse().unwrap();
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(fields[0], "0");
    assert_eq!(fields[2], "1");
    // Entering it with --user (root inside) works; the network namespace is its own.
    let out = sb.run("ns-exec", &["-t", &pid.to_string(), "--user", "--net", "id", "-u"]).ok().trim().to_owned();
    assert_eq!(out, "0");
    signal(pid, Signal::SIGTERM);
    assert!(wait_exit(pid, Duration::from_secs(2)));
}

#[test]
fn bad_arguments_are_refused_and_leave_nothing() {
    let sb = sandbox!("bad_arguments_are_refused_and_leave_nothing");
    sb.run("ns-unshare", &["--bogus"]).fails(2, "unexpected argument '--bogus'");
    sb.run("ns-unshare", &["--json", "--print", "pid"]).fails(2, "cannot be used with");
    sb.run("ns-unshare", &["--hostname", "a b"]).fails(2, "hostname");
    sb.run("ns-unshare", &["--exit-with", "0"]).fails(2, "--exit-with");
    sb.run("ns-unshare", &["--name", ""]).fails(2, "label");
    sb.run("ns-unshare", &["--bind-file", "nocolon"]).fails(2, "SRC:DEST");
    // A stdout whose reader has gone (a pipe with its read end closed before the PID is
    // written - `ns-unshare | true` only sometimes is): the holder is stopped again.
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let out = sb.tool("ns-unshare").args(["--name", "closed-pipe"]).stdout(write_end).output().unwrap();
    assert_eq!(out.status.signal(), Some(Signal::SIGPIPE as i32), "ns-unshare dies of SIGPIPE: {out:?}");
    let listed = || sb.must("ns-ls --owned --json").contains("\"closed-pipe\"");
    assert!(wait_until(Duration::from_secs(5), || !listed()), "holder left behind");
}

#[test]
fn rootless_holder_is_entered_from_inside_and_from_the_plain_shell() {
    let sb = sandbox!("rootless_holder_is_entered_from_inside_and_from_the_plain_shell");
    let Some(user) = nstools_tests::plain_user(sb.name()) else { return };
    let bin = nstools_tests::bin_dir();
    let b = bin.display();
    // Without privilege and without a user namespace: a clear hint, and no holder.
    sb.sh_as(user, &format!("{b}/ns-unshare")).fails(1, "add --map-root-user");
    // As Samba runs: inside 'unshare --user --map-root-user --net'.
    let r = sb.sh_as(
        user,
        &format!(
            "unshare --user --map-root-user --net sh -c 'p=$({b}/ns-unshare --name rootless); echo $p; {b}/ns-exec -t $p readlink /proc/self/ns/net'"
        ),
    );
    let out = r.ok().to_owned();
    let mut lines = out.lines();
    let pid: u32 = lines.next().unwrap().parse().unwrap();
    let inside = lines.next().unwrap().to_owned();
    assert_eq!(inside, format!("net:[{}]", netns_of(pid)));
    // From the user's plain shell outside: ns-exec enters the user namespace by itself.
    let r = sb.sh_as(user, &format!("{b}/ns-exec -t {pid} sh -c 'readlink /proc/self/ns/net; id -u'"));
    let out = r.ok().to_owned();
    assert_eq!(out.lines().next().unwrap(), format!("net:[{}]", netns_of(pid)));
    assert_eq!(out.lines().nth(1).unwrap(), "0", "the caller's UID maps to root inside");
    sb.sh_as(user, &format!("kill {pid}")).ok();
    assert!(wait_exit(pid, Duration::from_secs(2)));
}

/// Start `ns-exec -t HOLDER --all sh -c SCRIPT` (forked by ns-exec: a child of ns-exec, outside
/// the PID namespace, not of the holder) and return it once the script has printed `up`.
fn inside(sb: &nstools_tests::Sandbox, holder: u32, script: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = sb
        .tool("ns-exec")
        .args(["-t", &holder.to_string(), "--all", "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "up\n");
    child
}

#[test]
fn a_pid_namespace_holder_exits_as_soon_as_what_is_inside_has() {
    let sb = sandbox!("a_pid_namespace_holder_exits_as_soon_as_what_is_inside_has");
    let holder: u32 = sb.run("ns-unshare", &["--pid", "--mount"]).ok().trim().parse().unwrap();
    // A command that ends on SIGTERM, and an orphan of the holder's (a child of PID 1).
    let mut cmd = inside(&sb, holder, "(sleep 300 &); echo up; exec sleep 300");
    let start = Instant::now();
    signal(holder, Signal::SIGTERM);
    assert!(wait_exit(holder, Duration::from_secs(3)), "the holder did not exit");
    let took = start.elapsed();
    // The command got SIGTERM (passed on by PID 1) and ns-exec passes its end on.
    assert_eq!(cmd.wait().unwrap().signal(), Some(Signal::SIGTERM as i32));
    // Everything inside is gone within moments: the holder does not sit out its grace second
    // (the command is ns-exec's child, so its exit sends PID 1 no SIGCHLD).
    assert!(took < Duration::from_millis(300), "the holder took {took:?} to exit");

    // A process that ignores SIGTERM: the holder gives it its grace second, then exits, and
    // the kernel kills what is left (SIGKILL) as PID 1's namespace ends.
    let holder: u32 = sb.run("ns-unshare", &["--pid", "--mount"]).ok().trim().parse().unwrap();
    let mut cmd = inside(&sb, holder, "trap '' TERM; echo up; exec sleep 300");
    let start = Instant::now();
    signal(holder, Signal::SIGTERM);
    assert!(wait_exit(holder, Duration::from_secs(5)), "the holder did not exit");
    let took = start.elapsed();
    assert_eq!(cmd.wait().unwrap().signal(), Some(Signal::SIGKILL as i32));
    assert!(took >= Duration::from_millis(900), "the grace second was cut short: {took:?}");
}
