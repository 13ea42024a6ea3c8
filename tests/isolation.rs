//! Full isolation per testenv: PID, user, UTS, mount (and IPC) namespaces, opt-in.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::time::Duration;

use nix::sys::signal::Signal;
use nstools_tests::{Run, alive, netns_alive, netns_of, plain_user, sandbox, signal, wait_exit, wait_until};

/// A fully isolated testenv on a bridge, checked from inside; `sh` runs a script as the user
/// under test (root, or the plain user inside its own 'unshare -r --net').
const INSIDE: &str = r#"
set -eu
echo "nameserver 10.53.57.21 # testenv" > "$WORK/resolv.conf"
br-attach --create --addr 10.53.57.11/24
p=$(ns-unshare --pid --mount --uts --ipc --map-root-user --hostname LOCALDC --name iso --bind-file "$WORK/resolv.conf:/etc/resolv.conf")
veth-pair veth21 --netns "$p" --addr 10.53.57.21/24
br-attach veth21-br
ns-exec -t "$p" --all sh -c '
  echo "host=$(hostname)"
  echo "procs=$(ps -e -o pid=,comm= | tr -s " " | tr "\n" ";")"
  echo "net=$(ls /sys/class/net | tr "\n" " ")"
  echo "resolv=$(cat /etc/resolv.conf)"
  echo "uid=$(id -u)"
  ping -c 1 -W 5 10.53.57.11 > /dev/null && echo ping=ok'
echo "outside_resolv=$(grep -c '# testenv' /etc/resolv.conf || :)"
echo "outside_host=$(hostname)"
ns-unshare --stop "$p"
"#;

fn check_inside(out: &str) {
    let get = |k: &str| out.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_default().to_owned();
    assert_eq!(get("host"), "LOCALDC", "{out}");
    // Its own /proc: PID 1 is the holder, and only the testenv's processes are there.
    let procs = get("procs");
    let procs: Vec<&str> = procs.split(';').filter(|p| !p.trim().is_empty()).collect();
    assert_eq!(procs.first().map(|p| p.trim()), Some("1 ns-unshare"), "{out}");
    // Only the testenv's processes: the holder and the probe's own shell pipeline.
    assert!(
        procs.iter().all(|p| ["ns-unshare", "sh", "ps", "tr"].contains(&p.split_whitespace().nth(1).unwrap_or(""))),
        "{procs:?}"
    );
    assert_eq!(get("net"), "lo veth21 ", "its own /sys shows only its interfaces: {out}");
    assert_eq!(get("resolv"), "nameserver 10.53.57.21 # testenv", "{out}");
    assert_eq!(get("uid"), "0");
    assert_eq!(get("ping"), "ok");
    assert_eq!(get("outside_resolv"), "0", "the bound file is not seen outside: {out}");
    assert_ne!(get("outside_host"), "LOCALDC");
}

#[test]
fn fully_isolated_testenv_as_root() {
    let mut sb = sandbox!("fully_isolated_testenv_as_root");
    let work = sb.workdir("iso").display().to_string();
    sb.set_env("WORK", &work);
    let out = sb.must(INSIDE);
    check_inside(&out);
    assert_eq!(sb.links(), ["lo", "selftest0"], "the holder took its veth pair with it");
}

#[test]
fn fully_isolated_testenv_as_a_plain_user() {
    let mut sb = sandbox!("fully_isolated_testenv_as_a_plain_user");
    let Some(user) = plain_user(sb.name()) else { return };
    let work = sb.workdir("iso").display().to_string();
    sb.set_env("WORK", &work);
    std::fs::write(format!("{work}/inside.sh"), INSIDE).unwrap();
    // Rootless, as selftest: the testenv's user namespace nests in the selftest one.
    let r = sb.sh_as(user, &format!("unshare --user --map-root-user --net sh {work}/inside.sh"));
    check_inside(r.ok());
}

#[test]
fn killing_pid_1_ends_every_process_in_the_testenv() {
    let mut sb = sandbox!("killing_pid_1_ends_every_process_in_the_testenv");
    for (sig, label) in [(Signal::SIGKILL, "kill"), (Signal::SIGTERM, "term")] {
        let p: u32 = sb.run("ns-unshare", &["--pid", "--mount", "--name", label]).ok().trim().parse().unwrap();
        let pidns = std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
        // A daemon entered from outside, and an orphan that PID 1 adopts.
        let daemon = sb.spawn(&["ns-exec", "-t", &p.to_string(), "--all", "sleep", "infinity"], "ns-exec");
        sb.must(&format!("ns-exec -t {p} --all sh -c 'sleep 1000 > /dev/null 2>&1 & exit 0'"));
        let inside = || -> Vec<u32> {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|q| *q != p && std::fs::read_link(format!("/proc/{q}/ns/pid")).is_ok_and(|l| l == pidns))
                .filter(|q| alive(*q))
                .collect()
        };
        assert!(wait_until(Duration::from_secs(2), || inside().len() >= 2), "processes inside: {:?}", inside());
        let net = netns_of(p);
        signal(p, sig);
        assert!(wait_exit(p, Duration::from_secs(3)), "{sig}: the holder exits");
        assert!(wait_until(Duration::from_secs(3), || inside().is_empty()), "{sig}: left inside: {:?}", inside());
        assert!(wait_exit(daemon, Duration::from_secs(3)), "{sig}: ns-exec returns when its command is gone");
        assert!(wait_until(Duration::from_secs(3), || !netns_alive(net)), "{sig}: the namespace is gone");
    }
}

#[test]
fn ns_exec_into_a_pid_namespace_forks_and_returns_the_status() {
    let sb = sandbox!("ns_exec_into_a_pid_namespace_forks_and_returns_the_status");
    let p = sb.run("ns-unshare", &["--pid", "--mount"]).ok().trim().to_owned();
    assert_eq!(sb.run("ns-exec", &["-t", &p, "--pid", "--mount", "sh", "-c", "echo $$; exit 3"]).code, 3);
    let out = sb.run("ns-exec", &["-t", &p, "--all", "sh", "-c", "echo $$"]).ok().trim().to_owned();
    assert!(out.parse::<u32>().unwrap() < 10, "a small PID inside: {out}");
    // A signal to ns-exec reaches the command.
    let child = sb.tool("ns-exec").args(["-t", &p, "--all", "sleep", "infinity"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    signal(child.id(), Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(15), "dies of the command's signal: {:?}", out.status);
    sb.run("ns-unshare", &["--stop", &p]).ok();
}

#[test]
fn testenv_up_isolate_all() {
    let mut sb = sandbox!("testenv_up_isolate_all");
    sb.set_env("NSTOOLS_SELFTEST_LABEL", &format!("{}-hub", sb.tag));
    let t = nstools_tests::workspace().join("scripts/testenv").display().to_string();
    sb.must(&format!("{t} up dc:21 && {t} up --isolate all member:22"));
    let out = sb.must(&format!(
        "{t} exec member -- sh -c 'hostname; cat /proc/1/comm; ping -c1 -W5 10.53.57.21 >/dev/null && echo ok'"
    ));
    assert_eq!(out, "member\nns-unshare\nok\n");
    let machine = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    assert_eq!(sb.must(&format!("{t} exec dc -- hostname")).trim(), machine, "not isolated unless asked");
    let r = Run::of(sb.command(&t).args(["up", "--isolate", "bogus", "x:5"]).output().unwrap(), "testenv".into());
    r.fails(1, "unknown namespace type 'bogus'");
    sb.must(&format!("{t} down"));
}
