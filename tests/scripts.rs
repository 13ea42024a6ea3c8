//! The drop-in scripts, replayed as Samba's selftest calls them; the testenv composer; the demo.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nstools_tests::{Run, Sandbox, netns_of, plain_user, sandbox, workspace};

fn scripts() -> PathBuf {
    workspace().join("scripts")
}

/// The holder (a child ns-unshare process) whose namespaces an isolated testenv's PID entered.
fn holder_of(ns_pid: u32) -> u32 {
    let net = netns_of(ns_pid);
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ns-unshare")
                && std::fs::read_link(format!("/proc/{p}/ns/net"))
                    .is_ok_and(|l| l.to_string_lossy() == format!("net:[{net}]"))
        })
        .expect("the testenv's holder")
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
}

#[test]
fn samba_calling_sequence_replayed_rootless() {
    let mut sb = sandbox!("samba_calling_sequence_replayed_rootless");
    replay_samba(&mut sb, None);
}

#[test]
fn samba_calling_sequence_replayed_rootless_with_full_isolation() {
    let mut sb = sandbox!("samba_calling_sequence_replayed_rootless_with_full_isolation");
    sb.set_env("NSTOOLS_ISOLATE", "all");
    replay_samba(&mut sb, Some("all"));
}

/// Replay selftest's calls as the plain user under 'unshare --net --user --map-root-user'.
fn replay_samba(sb: &mut Sandbox, isolate: Option<&str>) {
    let Some(user) = plain_user(sb.name()) else { return };
    let work = sb.workdir("samba");
    mkfifo(&work.join("ready"));
    mkfifo(&work.join("go"));
    let replay = workspace().join("tests/samba-replay.sh");
    let start = Instant::now();
    let driver = sb
        .command("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups", "unshare", "--net", "--user", "--map-root-user"])
        .arg("sh")
        .arg(&replay)
        .arg(&work)
        .arg(scripts())
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(std::fs::File::open(work.join("ready")).unwrap()).read_line(&mut ready).unwrap();
    let ids: Vec<u32> = ready.split_whitespace().skip(1).map(|s| s.parse().unwrap()).collect();
    let (ns21, ns22) = (ids[0], ids[1]);

    // The banner, exactly as Samba's start_in_ns.sh prints it.
    for (n, pid) in [(21, ns21), (22, ns22)] {
        let log = std::fs::read_to_string(work.join(format!("env {n}/log"))).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        let rule = "-------------------------------------------------------------";
        assert_eq!(lines[0], rule, "{log}");
        assert_eq!(lines[1], format!("Created namespace for LOCALDC{n} (env{n}.samba) PID {pid}"));
        assert_eq!(lines[2], format!("To communicate with this testenv, use: {}/env {n}/nsenter.sh", work.display()));
        assert_eq!(lines[3], rule);
    }

    // nsenter.sh from the user's plain shell, outside selftest's user namespace.
    let probe = work.join("probe.sh");
    std::fs::write(
        &probe,
        "#!/bin/sh\nreadlink /proc/self/ns/net\nprintf 'NB=%s\\nPW=%s\\nHOST=%s\\n' \"$NETBIOSNAME\" \"$PASSWORD\" \"$(hostname)\"\nip -br addr show veth21\n",
    )
    .unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nsenter_sh = work.join("env 21/nsenter.sh");
    let generated = std::fs::read_to_string(&nsenter_sh).unwrap();
    // With isolation nsenter.sh enters the testenv's holder (PID 1 of its PID namespace).
    let entry = if isolate.is_some() { holder_of(ns21) } else { ns21 };
    assert!(generated.contains(&format!("-t {entry}:{}", netns_of(ns21))), "PID:INODE target: {generated}");
    let out = sb
        .command("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups"])
        .arg(&nsenter_sh)
        .env("SHELL", &probe)
        .current_dir("/tmp")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = Run::of(out, "nsenter.sh".into());
    let text = r.ok().to_owned();
    assert!(text.contains("NETBIOSNAME=LOCALDC21\n"), "the helper prints the variables: {text}");
    assert!(text.contains("Entered LOCALDC21 namespace, with above variables defined.\n"), "{text}");
    assert!(text.contains(&format!("net:[{}]\n", netns_of(ns21))), "{text}");
    assert!(text.contains("NB=LOCALDC21\n"), "{text}");
    let pw = format!("PW=$(touch {w}/pwned)`touch {w}/pwned`;|&<>*\"'\n", w = work.display());
    assert!(text.contains(&pw), "values are data: {text}");
    assert!(text.contains("10.53.57.21/24") && text.contains("fd00::5357:5f15/112"), "{text}");
    assert!(!work.join("pwned").exists(), "an exports value was evaluated");
    let machine = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    let host = if isolate.is_some() { "LOCALDC21".to_owned() } else { machine.clone() };
    assert!(text.contains(&format!("HOST={host}\n")), "{text}");

    std::fs::OpenOptions::new().write(true).open(work.join("go")).unwrap().write_all(b"go\n").unwrap();
    let out = driver.wait_with_output().unwrap();
    let r = Run::of(out, "samba-replay.sh".into());
    let text = r.ok().to_owned();
    assert!(!text.contains("FAIL"), "{text}\n{}", r.stderr);
    assert_eq!(text.matches("\nOK ").count() + usize::from(text.starts_with("OK ")), 5, "{text}");
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k} "))).unwrap_or_default().to_owned();
    assert_eq!(get("NSENTER"), get("TESTENV"));
    assert_eq!(get("NSEXEC"), get("TESTENV"));
    assert!(text.contains("TOPOLOGY selftest0 10.53.57.11/24 fd00::5357:5f0b/112 ── veth21-br ⇄ veth21"), "{text}");
    assert!(text.contains("TOPOLOGY selftest0 10.53.57.11/24 fd00::5357:5f0b/112 ── veth22-br ⇄ veth22"), "{text}");
    // Closing stdin ends the daemon; start_in_ns.sh exits with the daemon's status.
    assert!(text.contains("ATTACHED21 ok\n") && text.contains("ATTACHED22 ok\n"), "{text}");
    assert!(text.contains("EXIT21 7\n") && text.contains("EXIT22 7\n") && text.ends_with("DONE\n"), "{text}");
    for n in [21, 22] {
        let log = std::fs::read_to_string(work.join(format!("env {n}/log"))).unwrap();
        let started = match isolate {
            // Its own hostname, PID 1 the holder (its own /proc), only its interfaces in /sys.
            Some(_) => {
                format!("daemon {n} started on LOCALDC{n} pid1=ns-unshare net=lo veth{n} cwd={}\n", work.display())
            }
            None => format!("daemon {n} started on {machine} "),
        };
        assert!(log.contains(&started), "{log}");
        assert!(log.contains(&format!("daemon {n} stdin closed\n")), "{log}");
    }
    assert!(!work.join("pwned").exists());
    eprintln!("Samba sequence replayed in {:?}", start.elapsed());
}

/// `unshare --net start_in_ns.sh vethN EXPORTS SELFTEST sh -c DAEMON` as selftest runs it, in
/// `work` (the bridge made first, if missing), its stdin a pipe; the caller adds the rest.
fn start_in_ns(sb: &mut Sandbox, work: &Path, n: u32, daemon: &str) -> std::process::Command {
    if !sb.links().iter().any(|l| l == "selftest0") {
        sb.must(&format!("{}/create_bridge.sh selftest0 10.53.57.11 fd00::5357:5f0b", scripts().display()));
    }
    let exports = work.join("exports.sh");
    std::fs::write(&exports, format!("NETBIOSNAME=ENV{n}\nSERVER_IP=10.53.57.{n}\n")).unwrap();
    let selftest = sb.anchor().to_string();
    let mut cmd = sb.command("unshare");
    cmd.arg("--net")
        .arg(scripts().join("start_in_ns.sh"))
        .env("ENVNAME", format!("env{n}.samba"))
        .args([format!("veth{n}"), exports.display().to_string(), selftest])
        .args(["sh", "-c", daemon])
        .current_dir(work)
        .stdin(Stdio::piped());
    cmd
}

#[test]
fn start_in_ns_ends_what_the_daemon_left_behind() {
    // A daemon that starts a helper in a session of its own (as samba 4.17's smbd starts
    // samba-dcerpcd, which outlives samba by a minute), then runs until its stdin closes.
    let mut sb = sandbox!("start_in_ns_ends_what_the_daemon_left_behind");
    let work = sb.workdir("leftover");
    let daemon = "setsid sh -c 'echo $$ > helper.pid; exec sleep infinity' < /dev/null > /dev/null 2>&1 &
                  cat > /dev/null; exit 3";
    let mut testenv =
        start_in_ns(&mut sb, &work, 31, daemon).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    sb.must(&format!("{}/add_bridge_iface.sh veth31-br selftest0", scripts().display()));
    let pid_file = work.join("helper.pid");
    assert!(nstools_tests::wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    }));
    let helper: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let ns = netns_of(helper);
    assert_eq!(ns, netns_of(testenv.id()), "the helper runs in the testenv's namespace");

    drop(testenv.stdin.take()); // selftest's teardown: the daemon's stdin closes
    let out = testenv.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "start_in_ns.sh exits with the daemon's status: {out:?}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    // The pair is gone as start_in_ns.sh exits; the helper is terminated, the namespace ends.
    assert_eq!(sb.links(), ["lo", "selftest0"]);
    assert!(nstools_tests::wait_until(Duration::from_secs(5), || !nstools_tests::alive(helper)), "helper left");
    assert!(nstools_tests::wait_until(Duration::from_secs(5), || !nstools_tests::netns_alive(ns)), "namespace left");
}

#[test]
fn start_in_ns_is_gone_when_it_exits_and_starts_again_at_once() {
    // Nothing left behind by the daemon: the kernel destroys the namespace, and start_in_ns.sh
    // exits only once vethN-br is gone - so selftest can start the testenv again straight away.
    let mut sb = sandbox!("start_in_ns_is_gone_when_it_exits_and_starts_again_at_once");
    let work = sb.workdir("again");
    for round in 0..5 {
        let mut testenv = start_in_ns(&mut sb, &work, 32, "echo up; exec cat > /dev/null")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        sb.must(&format!("{}/add_bridge_iface.sh veth32-br selftest0", scripts().display()));
        let mut lines = BufReader::new(testenv.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.is_ok_and(|l| l == "up")), "round {round}: the daemon did not start");
        // While the daemon runs, the testenv's PID is in the testenv's namespace: selftest
        // enters it with 'nsenter -t PID --net' to start more daemons.
        let ns = netns_of(testenv.id());
        assert_ne!(ns, netns_of(sb.anchor()), "round {round}: the testenv PID left its namespace");
        drop(testenv.stdin.take());
        let status = testenv.wait().unwrap();
        assert!(status.success(), "round {round}: {status:?}");
        assert_eq!(sb.links(), ["lo", "selftest0"], "round {round}: veth32-br outlived start_in_ns.sh");
    }
}

#[test]
fn add_bridge_iface_times_out_naming_the_interface() {
    let sb = sandbox!("add_bridge_iface_times_out_naming_the_interface");
    sb.must(&format!("{}/create_bridge.sh selftest0 10.53.57.11 fd00::5357:5f0b", scripts().display()));
    let start = Instant::now();
    let out = sb
        .command(scripts().join("add_bridge_iface.sh"))
        .args(["veth99-br", "selftest0"])
        .env("NSTOOLS_ATTACH_TIMEOUT", "1")
        .output()
        .unwrap();
    let r = Run::of(out, "br-attach".into());
    r.fails(124, "veth99-br did not appear within 1 s");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(sb.links(), ["lo", "selftest0"]);
    // create_bridge.sh: lo up, bridge with both addresses, IPv6 usable at once.
    let br = nstools_tests::find(&sb.ip("addr show"), "selftest0").clone();
    let a = nstools_tests::addrs(&br);
    assert!(a.contains(&"10.53.57.11/24".to_owned()) && a.contains(&"fd00::5357:5f0b/112 nodad".to_owned()), "{a:?}");
    let usage =
        Run::of(sb.command(scripts().join("add_bridge_iface.sh")).output().unwrap(), "add_bridge_iface.sh".into());
    usage.fails(1, "usage: add_bridge_iface.sh IFACE BRIDGE");
}

#[test]
fn nsenter_helper_loads_exports_as_data() {
    let mut sb = sandbox!("nsenter_helper_loads_exports_as_data");
    let work = sb.workdir("helper");
    let exports = work.join("exports.sh");
    let pwned = work.join("pwned");
    std::fs::write(
        &exports,
        format!(
            "NETBIOSNAME=LOCALDC\nexport ENVNAME=ad_dc\nPASSWORD=$(touch {p});`touch {p}` && touch {p} || x\nEMPTY=\nSPACES=  a  b  \r\n",
            p = pwned.display()
        ),
    )
    .unwrap();
    let out =
        sb.command(scripts().join("nsenter-helper.sh")).arg(&exports).env("SHELL", "/usr/bin/env").output().unwrap();
    let r = Run::of(out, "nsenter-helper.sh".into());
    let text = r.ok();
    assert!(
        text.contains(&format!("\nPASSWORD=$(touch {p});`touch {p}` && touch {p} || x\n", p = pwned.display())),
        "{text}"
    );
    assert!(text.contains("\nENVNAME=ad_dc\n"), "{text}");
    assert!(text.contains("\nSPACES=  a  b  \n"), "{text}");
    assert!(text.contains("Entered LOCALDC namespace, with above variables defined."));
    assert!(!pwned.exists());
    std::fs::write(&exports, "A=1\nrm -rf /tmp/x\n").unwrap();
    let out = sb.command(scripts().join("nsenter-helper.sh")).arg(&exports).env("SHELL", "/bin/true").output().unwrap();
    Run::of(out, "nsenter-helper.sh".into()).fails(1, "line 2 is not KEY=VALUE");
}

/// Samba runs start_in_ns.sh and add_bridge_iface.sh once per testenv: each helper program they
/// ran (dirname, sed, readlink...) cost a process start per testenv, as much as the work itself
/// (BENCHMARKS.md). They now use shell built-ins only, besides the tools and one chmod.
#[test]
fn per_testenv_scripts_read_dos_line_ends_and_run_no_helper_programs() {
    let mut sb = sandbox!("per_testenv_scripts_read_dos_line_ends_and_run_no_helper_programs");
    let work = sb.workdir("crlf");
    let shims = work.join("shims");
    std::fs::create_dir(&shims).unwrap();
    let log = work.join("shims.log");
    // The capture programs too: without NSTOOLS_PCAP_DIR nothing of the captures runs.
    for prog in [
        "dirname", "basename", "sed", "readlink", "cat", "cut", "awk", "realpath", "stat", "mktemp", "mkdir", "mkfifo",
        "rm", "sleep", "tcpdump",
    ] {
        let path = shims.join(prog);
        std::fs::write(&path, format!("#!/bin/sh\necho {prog} >> '{}'\nexit 97\n", log.display())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        work.join("exports.sh"),
        "NETBIOSNAME=CRLF\r\nSERVER_IP=10.53.57.31\r\nSERVER_IPV6=fd00::5357:5f1f\r\n",
    )
    .unwrap();
    let s = scripts();
    let out = sb.must(&format!(
        "set -e; PATH='{shims}':$PATH; cd '{work}'
         '{s}/create_bridge.sh' selftest0 10.53.57.11 fd00::5357:5f0b
         ENVNAME=crlf.smbd unshare --net '{s}/start_in_ns.sh' veth31 exports.sh $$ ip -br addr show veth31 &
         '{s}/add_bridge_iface.sh' veth31-br selftest0
         wait $!",
        shims = shims.display(),
        work = work.display(),
        s = s.display()
    ));
    // Linux 5.14 and later show the inode in /proc/PID/fdinfo; older ones need readlink.
    let fdinfo_has_inode = std::fs::read_to_string("/proc/self/fdinfo/0").unwrap().contains("ino:");
    let used = std::fs::read_to_string(&log).unwrap_or_default();
    if fdinfo_has_inode {
        assert_eq!(used, "", "helper programs run");
    } else {
        assert_eq!(used.lines().filter(|l| *l != "readlink").count(), 0, "helper programs run: {used}");
    }
    assert!(out.contains("Created namespace for CRLF (crlf.smbd) PID "), "{out}");
    assert!(out.contains("10.53.57.31/24") && out.contains("fd00::5357:5f1f/112"), "{out}");
    let helper = std::fs::read_to_string(work.join("nsenter.sh")).unwrap();
    let line = helper.lines().find(|l| l.starts_with("exec ")).unwrap();
    let target = line.split(" -t ").nth(1).unwrap().split(' ').next().unwrap();
    let (pid, inode) = target.split_once(':').unwrap();
    assert!(pid.parse::<u32>().is_ok() && inode.parse::<u64>().unwrap() > 0, "{helper}");
    assert!(line.ends_with(&format!("'{}/nsenter-helper.sh' '{}/exports.sh'", s.display(), work.display())), "{line}");
}

#[test]
fn mk_nsenter_quotes_odd_paths() {
    let mut sb = sandbox!("mk_nsenter_quotes_odd_paths");
    let work = sb.workdir("odd");
    let dir = work.join("it's a dir");
    std::fs::create_dir_all(&dir).unwrap();
    let exports = dir.join("exports.sh");
    std::fs::write(&exports, "NETBIOSNAME=ODD\n").unwrap();
    let pid = sb.spawn_netns();
    let out = sb.command(scripts().join("mk_nsenter.sh")).arg(pid.to_string()).arg(&exports).output().unwrap();
    let path = Run::of(out, "mk_nsenter.sh".into()).ok().trim().to_owned();
    assert_eq!(path, dir.join("nsenter.sh").display().to_string());
    let out = sb.command(&path).env("SHELL", "/bin/true").output().unwrap();
    let text = Run::of(out, "nsenter.sh".into()).ok().to_owned();
    assert!(text.contains("Entered ODD namespace"), "{text}");
}

#[test]
fn testenv_up_exec_ls_down_as_root() {
    let mut sb = sandbox!("testenv_up_exec_ls_down_as_root");
    testenv_cycle(&mut sb, None);
}

#[test]
fn testenv_up_exec_ls_down_as_a_plain_user() {
    let mut sb = sandbox!("testenv_up_exec_ls_down_as_a_plain_user");
    let Some(user) = plain_user(sb.name()) else { return };
    testenv_cycle(&mut sb, Some(user));
}

fn testenv_cycle(sb: &mut Sandbox, user: Option<&str>) {
    // It reads ns-ls's machine interface (-o ... -n), never takes the human table apart.
    let script = std::fs::read_to_string(scripts().join("testenv")).unwrap();
    assert!(!script.contains("awk"), "scripts/testenv uses awk");
    let hub = format!("{}-hub", sb.tag);
    sb.set_env("NSTOOLS_SELFTEST_LABEL", &hub);
    let tenv = scripts().join("testenv").display().to_string();
    let sh = |script: &str| {
        let script = script.to_owned();
        match user {
            Some(u) => sb.sh_as(u, &script),
            None => Run::of(sb.command("sh").args(["-c", &script]).output().unwrap(), script.clone()),
        }
    };
    let up = sh(&format!("{tenv} up ad_dc:21 fs:22")).ok().to_owned();
    assert!(up.contains("ad_dc: pid ") && up.contains("fs: pid "), "{up}");
    let hub_pid = up.lines().find_map(|l| l.strip_prefix("selftest namespace: pid ")).unwrap().to_owned();
    assert!(sh(&format!("{tenv} up ad_dc:21")).ok().contains("ad_dc: already up"));
    sh(&format!("{tenv} exec fs -- ping -c 1 -W 5 10.53.57.21")).ok();
    sh(&format!("{tenv} exec ad_dc -- ping -c 1 -W 5 fd00::5357:5f16")).ok();
    let ls = sh(&format!("{tenv} ls")).ok().to_owned();
    assert!(ls.contains("── veth21-br ⇄ veth21") && ls.contains("ad_dc  10.53.57.21/24"), "{ls}");
    assert!(ls.contains("── veth22-br ⇄ veth22"), "{ls}");
    sh(&format!("{tenv} exec nope -- true")).fails(1, "no testenv named 'nope'");
    sh(&format!("{tenv} down fs")).ok();
    assert!(!sh(&format!("{tenv} ls")).ok().contains("veth22"));
    sh(&format!("{tenv} down")).ok();
    assert!(sh(&format!("{tenv} ls")).ok().contains("no testenvs are up"));
    let left = sb.run("ns-ls", &["--owned", "-n", "-o", "PID,LABEL,COMMAND", "--no-interfaces"]).ok().to_owned();
    let ours = |l: &&str| l.contains(&hub) || l.contains(&format!("--exit-with {hub_pid}"));
    assert!(!left.lines().any(|l| ours(&l)), "left behind: {left}");
}

#[test]
fn testenv_join_host_from_a_stand_in_host_namespace() {
    let mut sb = sandbox!("testenv_join_host_from_a_stand_in_host_namespace");
    let hub = format!("{}-hub", sb.tag);
    let host = sb.spawn_netns();
    let tenv = scripts().join("testenv").display().to_string();
    // The stand-in host: a namespace of its own, never the machine's root namespace. It has an
    // address outside 10.53.57.0/24, which the selftest namespace reaches only by its default
    // route through the host's veth (as Samba's README for joining VMs sets it up).
    let script = format!(
        "set -e; export NSTOOLS_SELFTEST_LABEL={hub}; ip addr add 192.0.2.1/32 dev lo; ip -6 addr add 2001:db8::1/128 dev lo
         {tenv} up ad_dc:21 && {tenv} join-host && ping -c 1 -W 5 10.53.57.21 && ping -c 1 -W 5 fd00::5357:5f15
         h=$(ns-ls --owned --label {hub} -n -o PID --no-interfaces)
         echo \"ROUTES $(ns-exec -t $h ip -j route show default) $(ns-exec -t $h ip -j -6 route show default)\"
         ns-exec -t $h ping -c 1 -W 5 192.0.2.1 && ns-exec -t $h ping -c 1 -W 5 2001:db8::1
         {tenv} down"
    );
    let out = sb.command("nsenter").args(["-t", &host.to_string(), "--net", "sh", "-c", &script]).output().unwrap();
    let out = Run::of(out, "testenv".into()).ok().to_owned();
    let routes = out.lines().find_map(|l| l.strip_prefix("ROUTES ")).unwrap_or_else(|| panic!("{out}"));
    assert!(
        routes.contains("\"gateway\":\"10.53.57.254\"") && routes.contains("\"gateway\":\"fd00::5357:5ffe\""),
        "{routes}"
    );
    assert!(out.contains("selftest namespace: default route via nstools-host's addresses"), "{out}");
    assert!(out.contains("dns_hub, at 10.53.57.64") && out.contains("nameserver 10.53.57.64"), "{out}");
    assert_eq!(sb.links_in(host), ["lo"], "the host veth is removed by down");
}

#[test]
fn testenv_shape_sets_shows_and_clears_as_root() {
    let mut sb = sandbox!("testenv_shape_sets_shows_and_clears_as_root");
    testenv_shape(&mut sb, None);
}

#[test]
fn testenv_shape_sets_shows_and_clears_as_a_plain_user() {
    let mut sb = sandbox!("testenv_shape_sets_shows_and_clears_as_a_plain_user");
    let Some(user) = plain_user(sb.name()) else { return };
    testenv_shape(&mut sb, Some(user));
}

/// `testenv shape` as root, or as a plain user (testenv then makes its own user namespace).
fn testenv_shape(sb: &mut Sandbox, user: Option<&str>) {
    sb.set_env("NSTOOLS_SELFTEST_LABEL", &format!("{}-hub", sb.tag));
    let tenv = scripts().join("testenv").display().to_string();
    let wrap = sb.workdir("wrap");
    let sh = |script: &str| match user {
        Some(u) => sb.sh_as(u, script),
        None => Run::of(sb.command("sh").args(["-c", script]).output().unwrap(), script.to_owned()),
    };
    let r = sh(&format!("{tenv} shape ad_dc --rate 8mbit"));
    assert_eq!((r.code, r.stderr.as_str()), (1, "testenv: no testenvs are up (start some with: testenv up NAME:N)\n"));
    sh(&format!("{tenv} up ad_dc:21 fs:22")).ok();
    // ns-ls runs once (a wrapper first on PATH counts its runs): one listing has it all.
    let log = wrap.join("runs");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let ns_ls = wrap.join("ns-ls");
    let real = nstools_tests::bin("ns-ls");
    std::fs::write(&ns_ls, format!("#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n", log.display(), real.display()))
        .unwrap();
    std::fs::set_permissions(&ns_ls, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sh(&format!("PATH='{}':\"$PATH\" {tenv} shape ad_dc --rate 8mbit", wrap.display())).ok().to_owned();
    assert_eq!(out, "ad_dc: veth21: --rate 8mbit (what ad_dc sends; testenv ls shows it)\n");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1, "testenv shape runs ns-ls once");
    let ls = sh(&format!("{tenv} ls")).ok().to_owned();
    let line = ls.lines().find(|l| l.contains("⇄ veth21 ")).unwrap();
    assert!(line.ends_with("  [veth21: rate 8Mbit]"), "{ls}");
    assert!(!ls.lines().find(|l| l.contains("⇄ veth22 ")).unwrap().contains('['), "{ls}");
    // Errors: testenv's own (exit 1), and veth-pair's for values (exit 2), one line each.
    let usage = "testenv shape NAME [--delay TIME] [--jitter TIME] [--loss PERCENT] [--rate RATE] | --clear";
    for (args, code, needle) in [
        ("shape nope --rate 8mbit", 1, "testenv: no testenv named 'nope'".to_owned()),
        ("shape ad_dc", 1, format!("testenv: usage: {usage}")),
        ("shape ad_dc --rate", 1, "testenv: --rate needs a value".to_owned()),
        ("shape ad_dc --netns 1 --rate 8mbit", 1, "testenv: unknown option '--netns'".to_owned()),
        ("shape ad_dc --rate 8", 2, "veth-pair: invalid --rate '8': the unit is missing".to_owned()),
        ("shape ad_dc --clear --rate 8mbit", 2, "veth-pair: the argument '--clear' cannot be used".to_owned()),
    ] {
        let r = sh(&format!("{tenv} {args}"));
        assert_eq!(r.code, code, "testenv {args}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "testenv {args}: {}", r.stderr);
        assert!(r.stderr.starts_with(&needle), "testenv {args}: {}", r.stderr);
    }
    assert!(sh(&format!("{tenv} ls")).ok().contains("[veth21: rate 8Mbit]"), "unchanged by the errors");
    let out = sh(&format!("{tenv} shape ad_dc --clear")).ok().to_owned();
    assert_eq!(out, "ad_dc: veth21: impairments removed\n");
    assert!(!sh(&format!("{tenv} ls")).ok().contains('['));
    sh(&format!("{tenv} down")).ok();
}

/// The demo's first run builds the binaries with cargo's own progress showing (it was
/// `--quiet`: a minute of silence).
#[test]
fn demo_shows_its_build() {
    let demo = std::fs::read_to_string(scripts().join("demo")).unwrap();
    let build: Vec<&str> = demo.lines().filter(|l| l.trim_start().starts_with("cargo build")).collect();
    assert_eq!(build, ["        cargo build --release"], "the demo builds with cargo's progress shown");
}

#[test]
fn demo_runs_end_to_end_as_root() {
    let mut sb = sandbox!("demo_runs_end_to_end_as_root");
    let out_dir = sb.workdir("demo");
    let out =
        sb.command(scripts().join("demo")).env("NO_COLOR", "1").env("NSTOOLS_DEMO_OUT", &out_dir).output().unwrap();
    let r = Run::of(out, "demo".into());
    let text = r.ok();
    assert!(text.contains("http://10.53.57.21:8021/ -> 200 hello from the dc testenv"), "{text}");
    assert!(text.contains("http://[fd00::5357:5f15]:8021/ -> 200 hello from the dc testenv"), "{text}");
    assert!(text.contains("── veth21-br ⇄ veth21"), "{text}");
    check_demo_extras(text, &out_dir);
    assert!(text.contains("nothing left"), "{text}");
}

#[test]
fn demo_runs_end_to_end_as_a_plain_user() {
    let mut sb = sandbox!("demo_runs_end_to_end_as_a_plain_user");
    let Some(user) = plain_user(sb.name()) else { return };
    let out_dir = sb.workdir("demo");
    let r = sb.sh_as(
        user,
        &format!("NO_COLOR=1 NSTOOLS_DEMO_OUT='{}' {}", out_dir.display(), scripts().join("demo").display()),
    );
    let text = r.ok();
    assert!(text.contains("(rootless: a user namespace)"), "{text}");
    assert!(text.contains("http://[fd00::5357:5f15]:8021/ -> 200"), "{text}");
    check_demo_extras(text, &out_dir);
}

/// The demo's words as a newcomer reads them (issue 22), its shaped link, topology with the
/// impairment, picture and capture.
fn check_demo_extras(text: &str, out_dir: &Path) {
    // Every line is a step (`==> `) or indented under one; commands a reader can copy (no
    // temporary paths); nothing worded as an error in a demo that passes.
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(line.starts_with("==> ") || line.starts_with("  "), "not indented: {line:?}\n{text}");
        assert!(!line.contains("/tmp."), "a temporary path: {line:?}");
        assert!(!line.to_lowercase().contains("error"), "error wording: {line:?}");
    }
    assert!(
        text.contains("  $ testenv exec client -- python3 scripts/demo-fetch.py http://10.53.57.21:8021/\n"),
        "{text}"
    );
    // 10 MB unshaped, then 1 MB shaped: 8 Mbit/s of which headers take a little.
    let rates: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("mb -> 200, ") && l.contains(" MB in "))
        .filter_map(|l| l.rsplit(": ").next()?.strip_suffix(" Mbit/s")?.parse().ok())
        .collect();
    assert_eq!(rates.len(), 2, "{text}");
    assert!(text.contains("/10mb -> 200, 10.0 MB in ") && text.contains("/1mb -> 200, 1.0 MB in "), "{text}");
    assert!((6.8..=8.2).contains(&rates[1]), "shaped to {} Mbit/s:\n{text}", rates[1]);
    assert!(rates[0] > 4.0 * rates[1], "unshaped {} Mbit/s:\n{text}", rates[0]);
    // Delay: ping times where the kernel has netem, else a note saying what was skipped.
    assert!(
        text.contains("  rtt ")
            || text.contains("  note: this kernel has no netem: delay and loss skipped, rate shown\n"),
        "{text}"
    );
    assert!(text.contains("[veth21: rate 8Mbit]"), "{text}");
    let dot = std::fs::read_to_string(out_dir.join("topology.dot")).unwrap();
    assert!(dot.contains("graph topology {") && dot.contains("rate 8Mbit"), "{dot}");
    let svg = std::fs::read_to_string(out_dir.join("topology.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("selftest0") && svg.contains("rate 8Mbit"),
        "not an SVG of the topology"
    );
    // The capture, read by tshark: IPv4 and IPv6 TCP (the fetches) and ICMP (the ping); ended
    // before the bulk fetch, so that nothing was lost even rootless on a default rmem_max.
    let section = text.split("==> The capture").nth(1).and_then(|s| s.split("==> ").next()).unwrap_or_default();
    assert!(!section.contains("dropped"), "the capture lost packets:\n{text}");
    let summary = section.split("tshark -r").nth(1).unwrap_or_else(|| panic!("no capture summary:\n{text}"));
    for proto in ["ipv6", "tcp", "icmp"] {
        assert!(summary.lines().any(|l| l.trim_start().starts_with(proto)), "no {proto} in the capture:\n{text}");
    }
    let tshark = std::process::Command::new("tshark")
        .arg("-r")
        .arg(out_dir.join("demo.pcap"))
        .arg("-Y")
        .arg("http.request")
        .output()
        .unwrap();
    let requests = String::from_utf8_lossy(&tshark.stdout);
    if requests.lines().count() < 2 {
        // Every packet the capture holds (a few dozen), to tell a request lost from one not decoded.
        let all = std::process::Command::new("tshark").arg("-r").arg(out_dir.join("demo.pcap")).output().unwrap();
        panic!(
            "the two HTTP requests are not both in the capture:\n{requests}\n{}\n{text}",
            String::from_utf8_lossy(&all.stdout)
        );
    }
}

#[test]
fn create_bridge_leaves_no_bridge_when_its_capture_cannot_start() {
    let mut sb = sandbox!("create_bridge_leaves_no_bridge_when_its_capture_cannot_start");
    let work = sb.workdir("pcaps");
    let create = |dir: &Path| {
        let out = sb
            .command(scripts().join("create_bridge.sh"))
            .args(["selftest0", "10.53.57.11", "fd00::5357:5f0b"])
            .env("NSTOOLS_PCAP_DIR", dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::of(out, "create_bridge.sh".into())
    };
    // The capture file cannot be made (a folder has its name), nor the folder (under a file).
    std::fs::create_dir(work.join("selftest0.pcap")).unwrap();
    create(&work).fails(1, "create_bridge.sh: cannot capture on selftest0: cannot capture to");
    assert_eq!(sb.links(), ["lo"], "no bridge left behind");
    std::fs::write(work.join("file"), "").unwrap();
    create(&work.join("file/pcaps")).fails(1, "create_bridge.sh: cannot capture on selftest0: cannot make the folder");
    assert_eq!(sb.links(), ["lo"], "no bridge left behind");
    assert!(sb.tagged_processes().is_empty(), "no capture left running");
}
