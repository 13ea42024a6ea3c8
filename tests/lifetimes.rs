//! How long a namespace lives (issue 12): `ns-unshare | ns-exec CMD` as long as CMD, a captured
//! PID until stopped, a `--bind` namespace until its mount goes, and a label as a target.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nstools_tests::{Run, Sandbox, alive, netns_alive, sandbox, signal, wait_exit, wait_until};

/// The holders this sandbox started that are still there (their PIDs), by label.
fn holders(sb: &Sandbox, label: &str) -> Vec<u32> {
    let out = sb.run("ns-ls", &["--owned", "--label", label, "-n", "-o", "PID", "--no-interfaces"]);
    out.ok().split_whitespace().map(|p| p.parse().unwrap()).collect()
}

/// A label unique to this sandbox.
fn label(sb: &Sandbox, name: &str) -> String {
    format!("{}-{name}", sb.tag)
}

/// Run `script` (sh) in the sandbox; `(exit code, stdout)`.
fn sh(sb: &Sandbox, script: &str) -> Run {
    Run::of(sb.command("sh").arg("-c").arg(script).stdin(Stdio::null()).output().unwrap(), script.to_owned())
}

/// Nothing of the holder labelled `l` is left: no process, and the namespace `inode` is gone.
#[track_caller]
fn gone(sb: &Sandbox, l: &str, inode: u64) {
    assert!(wait_until(Duration::from_secs(3), || holders(sb, l).is_empty()), "holder {l} left");
    assert!(wait_until(Duration::from_secs(3), || !netns_alive(inode)), "namespace {inode} left");
}

fn inode_of(text: &str) -> u64 {
    let line = text.lines().find(|l| l.starts_with("net:[")).unwrap_or_else(|| panic!("no net:[..] in {text:?}"));
    line.trim_start_matches("net:[").trim_end_matches(']').parse().unwrap()
}

#[test]
fn the_pipe_idiom_lives_as_long_as_the_command() {
    let sb = sandbox!("the_pipe_idiom_lives_as_long_as_the_command");
    // A short command: the holder is gone when ns-exec returns (give it the moment to exit).
    let l = label(&sb, "short");
    let out = sh(&sb, &format!("ns-unshare --name {l} | ns-exec readlink /proc/self/ns/net"));
    gone(&sb, &l, inode_of(out.ok()));
    // --json and the other flags make no difference.
    let l = label(&sb, "json");
    let out = sh(&sb, &format!("ns-unshare --json --uts --name {l} | ns-exec readlink /proc/self/ns/net"));
    gone(&sb, &l, inode_of(out.ok()));
    // With --pid/--all ns-exec forks the command: the holder ends with it.
    let l = label(&sb, "pid");
    let out = sh(
        &sb,
        &format!("ns-unshare --pid --mount --name {l} | ns-exec --all sh -c 'readlink /proc/self/ns/net; echo $$'"),
    );
    assert!(out.ok().ends_with("\n2\n"), "{}", out.stdout);
    gone(&sb, &l, inode_of(&out.stdout));
}

#[test]
fn the_pipe_idiom_holds_while_the_command_runs_and_ends_when_it_is_killed() {
    let sb = sandbox!("the_pipe_idiom_holds_while_the_command_runs_and_ends_when_it_is_killed");
    let l = label(&sb, "long");
    let mut child = sb
        .command("sh")
        .arg("-c")
        .arg(format!("ns-unshare --name {l} | ns-exec sh -c 'readlink /proc/self/ns/net; echo $$; exec sleep 30'"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut ns, mut pid) = (String::new(), String::new());
    out.read_line(&mut ns).unwrap();
    out.read_line(&mut pid).unwrap();
    let (inode, cmd): (u64, u32) = (inode_of(&ns), pid.trim().parse().unwrap());
    // A second on, the holder is still there, tied to the command.
    std::thread::sleep(Duration::from_millis(1100));
    let held = holders(&sb, &l);
    assert_eq!(held.len(), 1, "the holder lives while the command runs");
    let json: serde_json::Value =
        serde_json::from_str(sb.run("ns-ls", &["-p", &held[0].to_string(), "--json", "--no-interfaces"]).ok()).unwrap();
    assert_eq!(json["namespaces"][0]["claimed_by"], cmd, "ns-ls shows what the holder lives for");
    signal(cmd, Signal::SIGKILL);
    let start = Instant::now();
    assert!(wait_exit(held[0], Duration::from_secs(2)), "SIGKILL of the command ends the holder");
    assert!(start.elapsed() < Duration::from_millis(200), "at once (pidfd), not by polling: {:?}", start.elapsed());
    gone(&sb, &l, inode);
    child.wait().unwrap();
}

#[test]
fn the_pipe_idiom_ends_the_holder_when_ns_exec_fails() {
    let sb = sandbox!("the_pipe_idiom_ends_the_holder_when_ns_exec_fails");
    let dir = std::env::temp_dir().join(format!("{}-notexec", sb.tag));
    std::fs::write(&dir, "data\n").unwrap();
    for (i, (cmd, code)) in [
        ("nosuch-command-here", 127),
        (dir.to_str().unwrap(), 126),
        ("--bogus-flag true", 125),
        ("--help", 0),
        // With -t the target does not come from the pipe, which is then not ns-exec's to claim
        // (Samba's daemons get their stdin pipe through ns-exec -t).
        ("-t $$ sh -c 'sleep 0.2; exit 3'", 3),
    ]
    .into_iter()
    .enumerate()
    {
        let l = label(&sb, &format!("fail{i}"));
        let r = sh(&sb, &format!("ns-unshare --name {l} --print pid:inode | ns-exec {cmd} >/dev/null; echo \"$?\""));
        assert_eq!(r.ok().trim(), code.to_string(), "{cmd}");
        if cmd.starts_with("-t ") {
            // With -t the pipe is not where the target came from: the holder stays.
            let h = holders(&sb, &l);
            assert_eq!(h.len(), 1, "{cmd}: a holder whose PID went elsewhere stays");
            sb.run("ns-unshare", &["--stop", &h[0].to_string()]).ok();
        }
        assert!(wait_until(Duration::from_secs(3), || holders(&sb, &l).is_empty()), "{cmd}: holder left");
    }
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn a_captured_pid_keeps_its_holder() {
    let sb = sandbox!("a_captured_pid_keeps_its_holder");
    let l = label(&sb, "kept");
    let pid: u32 = sb.must(&format!("p=$(ns-unshare --name {l}); echo $p")).trim().parse().unwrap();
    sb.run("ns-exec", &["-t", &pid.to_string(), "true"]).ok();
    sb.run("ns-exec", &["-t", &pid.to_string(), "true"]).ok();
    // Through another pipe: only the pipe from that very ns-unshare ties a holder.
    sb.must(&format!("echo {pid} | ns-exec true"));
    sb.must(&format!("ns-unshare --print pid:inode | ns-exec -t {pid} true"));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(holders(&sb, &l), [pid], "the holder stays");
    assert!(alive(pid));
    sb.run("ns-unshare", &["--stop", &pid.to_string()]).ok();
    // The second holder above (piped to an ns-exec with -t) is not tied either.
    let rest: Vec<u32> = sb
        .run("ns-ls", &["--owned", "-n", "-o", "PID", "--no-interfaces"])
        .ok()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    for p in rest.into_iter().filter(|p| sb.tagged_processes().contains(p)) {
        sb.run("ns-unshare", &["--stop", &p.to_string()]).ok();
    }
}

#[test]
fn two_readers_race_for_one_pipe_and_nothing_is_left() {
    let sb = sandbox!("two_readers_race_for_one_pipe_and_nothing_is_left");
    for i in 0..5 {
        let l = label(&sb, &format!("race{i}"));
        // Both read the same pipe: one gets the target, the other an empty stdin; both claim.
        let r = sh(
            &sb,
            &format!("ns-unshare --name {l} | {{ ns-exec sleep 0.2 & ns-exec sleep 0.2; wait; }} 2>/dev/null; true"),
        );
        r.ok();
        assert!(wait_until(Duration::from_secs(3), || holders(&sb, &l).is_empty()), "round {i}: holder left");
    }
}

#[test]
fn the_pipe_idiom_works_rootless_from_a_plain_shell() {
    let sb = sandbox!("the_pipe_idiom_works_rootless_from_a_plain_shell");
    let Some(user) = nstools_tests::plain_user(sb.name()) else { return };
    let l = label(&sb, "rootless");
    let r = sb.sh_as(
        user,
        &format!("ns-unshare --map-root-user --name {l} | ns-exec sh -c 'id -u; readlink /proc/self/ns/net'"),
    );
    let text = r.ok().to_owned();
    assert!(text.starts_with("0\n"), "root in its user namespace: {text}");
    gone(&sb, &l, inode_of(&text));
    // Inside a user namespace of its own (how scripts/test and Samba's selftest run).
    let l = label(&sb, "userns");
    let r = sb.sh_as(user, &format!("unshare --user --map-root-user --net sh -c 'ns-unshare --name {l} | ns-exec readlink /proc/self/ns/net; i=0; while [ $i -lt 200 ] && [ -n \"$(ns-ls --owned --label {l} -n --no-interfaces)\" ]; do sleep 0.01; i=$((i+1)); done; ns-ls --owned --label {l} -n --no-interfaces'"));
    let text = r.ok().to_owned();
    // The holder exits a moment after the command (woken by its pidfd).
    assert_eq!(text.lines().count(), 1, "no holder listed after the command: {text}");
    gone(&sb, &l, inode_of(&text));
}

#[test]
fn a_bind_namespace_ends_with_its_mount() {
    let sb = sandbox!("a_bind_namespace_ends_with_its_mount");
    // In a mount namespace of its own, /run/netns on a tmpfs: as root and rootless alike, and
    // the machine's /run/netns is never touched.
    let l = label(&sb, "bind");
    let script = format!(
        "set -e; mount -t tmpfs nstools-test /run
         alive() {{ [ -e /proc/$1 ] && ! grep -q '^State:.Z' /proc/$1/status 2>/dev/null; }}
         mkdir -p /tmp/{tag}-mnt && mount -t tmpfs nstools-test /tmp/{tag}-mnt
         for how in 'ip netns delete lab' 'umount /run/netns/lab' 'umount -l /run/netns/lab'; do
             p=$(ns-unshare --name {l} --bind /run/netns/lab)
             ip netns exec lab true # ip netns sees it
             veth-pair v0 --netns lab
             $how
             start=$(date +%s%N)
             while alive $p; do
                 [ $(( $(date +%s%N) - start )) -lt 2000000000 ] || {{ echo \"$how: holder $p still there\"; exit 1; }}
                 sleep 0.01
             done
             echo \"$how: ended in $(( ($(date +%s%N) - start) / 1000000 )) ms\"
             [ -z \"$(ip -o link show v0-br 2>/dev/null)\" ] || {{ echo \"$how: v0-br left\"; exit 1; }}
             rm -f /run/netns/lab # umount leaves the file
         done
         # Any other path works too; killing the holder keeps the mount (documented).
         p=$(ns-unshare --name {l} --bind /tmp/{tag}-mnt/ns)
         kill $p; while alive $p; do sleep 0.01; done
         grep -q ' /tmp/{tag}-mnt/ns ' /proc/self/mountinfo && echo 'kill: mount kept'
         umount /tmp/{tag}-mnt/ns; umount /tmp/{tag}-mnt; rmdir /tmp/{tag}-mnt",
        tag = sb.tag
    );
    let r = Run::of(
        sb.command("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
        "bind scenario".into(),
    );
    let text = r.ok().to_owned();
    let ended: Vec<u64> =
        text.lines().filter_map(|l| l.split(": ended in ").nth(1)?.strip_suffix(" ms")?.parse().ok()).collect();
    assert_eq!(ended.len(), 3, "{text}");
    assert!(ended.iter().all(|&ms| ms < 1000), "woken by the mount table's notification: {text}");
    assert!(text.contains("kill: mount kept"), "{text}");
}

#[test]
fn a_label_is_a_target() {
    let mut sb = sandbox!("a_label_is_a_target");
    let l = label(&sb, "lab");
    let pid: u32 = sb.run("ns-unshare", &["--name", &l]).ok().trim().parse().unwrap();
    // ns-exec, veth-pair, br-attach take it; ns-unshare --exit-with and --stop too.
    let inside = sb.run("ns-exec", &["-t", &l, "readlink", "/proc/self/ns/net"]).ok().to_owned();
    assert_eq!(inode_of(&inside), nstools_tests::netns_of(pid));
    sb.run("veth-pair", &["v9", "--netns", &l, "--addr", "10.9.9.1/24"]).ok();
    assert!(nstools_tests::names(&sb.ip_in(pid, "link show")).contains(&"v9".to_owned()));
    sb.run("br-attach", &["--netns", &l, "--create", "--bridge", "br9"]).ok();
    let follower: u32 =
        sb.run("ns-unshare", &["--exit-with", &l, "--name", &format!("{l}-f")]).ok().trim().parse().unwrap();
    let ls: serde_json::Value =
        serde_json::from_str(sb.run("ns-ls", &["-p", &follower.to_string(), "-J", "--no-interfaces"]).ok()).unwrap();
    assert_eq!(ls["namespaces"][0]["exit_with"], pid);
    // Two holders with one label: an error naming both (exit 2).
    let twin: u32 = sb.run("ns-unshare", &["--name", &l]).ok().trim().parse().unwrap();
    let r = sb.run("ns-exec", &["-t", &l, "true"]);
    let err = r.fails(125, "several holders are labelled");
    assert!(err.contains(&pid.to_string()) && err.contains(&twin.to_string()), "{err}");
    sb.run("veth-pair", &["v8", "--netns", &l]).fails(2, "several holders are labelled");
    sb.run("ns-unshare", &["--stop", &twin.to_string()]).ok();
    sb.run("ns-unshare", &["--stop", &l]).ok();
    assert!(wait_exit(follower, Duration::from_secs(2)), "--exit-with a label follows its holder");
    sb.run("ns-exec", &["-t", &l, "true"]).fails(125, "no holder is labelled so");
    // Another user's holder is never picked silently.
    let Some(user) = nstools_tests::plain_user(sb.name()) else { return };
    let work = sb.workdir("other");
    let pidfile = work.join("pid");
    let theirs = sb.sh_as(user, &format!("ns-unshare --map-root-user --name {l} > {}", pidfile.display()));
    theirs.ok();
    let other: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    sb.run("ns-exec", &["-t", &l, "true"]).fails(125, "is another user's");
    sb.run("ns-unshare", &["--stop", &other.to_string()]).ok();
}

/// A stranger that connects to the holder's claim socket (named after the pipe, which anyone in
/// the namespace can compute) and sends nothing, holding the connection: it waits until the
/// holder has printed into the pipe (stdin readable), connects several times, then leaves a
/// child holding the connections for two seconds.
const STRANGER: &str = r#"
import os, select, socket, sys, time
select.select([0], [], [])
st = os.fstat(0)
name = b"\0nstools/holder/pipe/%d:%d" % (st.st_dev, st.st_ino)
held = []
for _ in range(3):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(name)
    held.append(s)
if os.fork() == 0:
    os.close(0); os.close(1); os.close(2)
    time.sleep(2)
    os._exit(0)
"#;

#[test]
fn a_stranger_on_the_claim_socket_does_not_stall_the_pipe_idiom() {
    let sb = sandbox!("a_stranger_on_the_claim_socket_does_not_stall_the_pipe_idiom");
    let l = label(&sb, "stranger");
    let start = Instant::now();
    let r = sh(
        &sb,
        &format!("ns-unshare --name {l} | {{ python3 -c '{STRANGER}' && exec ns-exec readlink /proc/self/ns/net; }}"),
    );
    let took = start.elapsed();
    // The claim went through: the holder ended with the command (not left behind untied), and
    // ns-exec did not sit out its one-second wait for an answer.
    gone(&sb, &l, inode_of(r.ok()));
    assert!(took < Duration::from_millis(900), "the claim waited: {took:?}");
    // Let the stranger's child go (it carries the test's tag).
    std::thread::sleep(Duration::from_secs(2));
}
