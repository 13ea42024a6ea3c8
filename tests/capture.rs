//! Captures (issue 14): `ns-exec --capture`, the drop-ins with `NSTOOLS_PCAP_DIR` (replayed as
//! Samba's selftest calls them, as root and rootless), `testenv capture`. Every file is read by
//! independent readers, tshark and `tcpdump -r`, which must agree: ICMP between two testenvs
//! over IPv4 and IPv6 and a TCP handshake are in it, loopback packets once each, and nothing
//! sent before a SIGTERM is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use nstools_tests::{Run, Sandbox, plain_user, real_root, sandbox, signal, skip, wait_exit, wait_until, workspace};

fn scripts() -> PathBuf {
    workspace().join("scripts")
}

/// TCP port of the handshake checks.
const PORT: u16 = 4455;

/// A TCP server (python3) that prints "listening", takes one connection, reads, closes.
const SERVER: &str = "import socket\n\
s = socket.socket(socket.AF_INET6)\n\
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
s.bind(('::', 4455))\n\
s.listen()\n\
print('listening', flush=True)\n\
c, _ = s.accept()\n\
c.recv(100)\n\
c.close()\n";

/// A TCP client (python3): connect to argv[1], send, close.
const CLIENT: &str = "import socket, sys\n\
s = socket.create_connection((sys.argv[1], 4455), 5)\n\
s.sendall(b'hello')\n\
s.close()\n";

/// The independent readers available: tshark always (a loud skip, a failure under CI, when it
/// is missing); `tcpdump -r` where it can run (as root it changes its user, which a user
/// namespace refuses: then only tshark reads, loudly).
struct Readers {
    tcpdump: bool,
}

impl Readers {
    fn get(test: &str) -> Option<Readers> {
        let has = |p: &str| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success());
        if !has("tshark") {
            skip(test, "tshark is not installed (Debian: tshark)");
            return None;
        }
        let tcpdump = has("tcpdump") && real_root();
        if !tcpdump {
            eprintln!(
                "NOTE {test}: tcpdump -r cannot run here (not installed, or root inside a user namespace); tshark reads alone"
            );
        }
        Some(Readers { tcpdump })
    }

    /// Packets that tshark's display filter and tcpdump's filter select; both must agree.
    fn count(&self, file: &Path, tshark_filter: &str, tcpdump_filter: &str) -> usize {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(file)
            .args(["-Y", tshark_filter, "-T", "fields", "-e", "frame.number"])
            .output()
            .unwrap();
        assert!(out.status.success(), "tshark -r {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        let n = String::from_utf8_lossy(&out.stdout).lines().count();
        if self.tcpdump {
            let out = Command::new("tcpdump").arg("-nr").arg(file).arg(tcpdump_filter).output().unwrap();
            assert!(out.status.success(), "tcpdump -r {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
            let m = String::from_utf8_lossy(&out.stdout).lines().count();
            assert_eq!(n, m, "tshark ({tshark_filter}) and tcpdump ({tcpdump_filter}) disagree on {}", file.display());
        }
        n
    }

    /// Every packet, as tshark prints them (for failure messages).
    fn dump(file: &Path) -> String {
        let out = Command::new("tshark").arg("-r").arg(file).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `n` echo requests and `n` replies from `a` to `b` (IPv4 or IPv6 addresses).
    fn pings(&self, file: &Path, a: &str, b: &str, n: usize) {
        let (ts_req, ts_rep, td_req, td_rep) = if a.contains(':') {
            (
                format!("icmpv6.type == 128 && ipv6.src == {a} && ipv6.dst == {b}"),
                format!("icmpv6.type == 129 && ipv6.src == {b} && ipv6.dst == {a}"),
                format!("icmp6 and ip6[40] == 128 and src host {a} and dst host {b}"),
                format!("icmp6 and ip6[40] == 129 and src host {b} and dst host {a}"),
            )
        } else {
            (
                format!("icmp.type == 8 && ip.src == {a} && ip.dst == {b}"),
                format!("icmp.type == 0 && ip.src == {b} && ip.dst == {a}"),
                format!("icmp[icmptype] == icmp-echo and src host {a} and dst host {b}"),
                format!("icmp[icmptype] == icmp-echoreply and src host {b} and dst host {a}"),
            )
        };
        let got = (self.count(file, &ts_req, &td_req), self.count(file, &ts_rep, &td_rep));
        assert_eq!(got, (n, n), "{}: echo requests and replies {a} -> {b}:\n{}", file.display(), Readers::dump(file));
    }

    /// One TCP handshake to `server` on PORT: SYN, SYN-ACK, then the client's ACK.
    fn handshake(&self, file: &Path, server: &str) {
        // libpcap's tcp[] is IPv4 only: for IPv6 the flags are byte 13 after the 40-byte header.
        let (ip, flags) = if server.contains(':') { ("ipv6", "ip6[6] == 6 and ip6[53]") } else { ("ip", "tcp[13]") };
        let syn = self.count(
            file,
            &format!("tcp.flags == 0x002 && tcp.dstport == {PORT} && {ip}.dst == {server}"),
            &format!("{flags} == 0x02 and dst port {PORT} and dst host {server}"),
        );
        let syn_ack = self.count(
            file,
            &format!("tcp.flags == 0x012 && tcp.srcport == {PORT} && {ip}.src == {server}"),
            &format!("{flags} == 0x12 and src port {PORT} and src host {server}"),
        );
        let ack = self.count(
            file,
            &format!("tcp.flags == 0x010 && tcp.dstport == {PORT} && {ip}.dst == {server}"),
            &format!("{flags} == 0x10 and dst port {PORT} and dst host {server}"),
        );
        assert_eq!((syn, syn_ack), (1, 1), "{}: the handshake:\n{}", file.display(), Readers::dump(file));
        assert!(ack >= 1, "{}: the handshake's last ACK:\n{}", file.display(), Readers::dump(file));
    }
}

/// A work folder with the TCP scripts, writable and readable by every user.
fn workdir(sb: &mut Sandbox, name: &str) -> PathBuf {
    let work = sb.workdir(name);
    std::fs::write(work.join("server.py"), SERVER).unwrap();
    std::fs::write(work.join("client.py"), CLIENT).unwrap();
    work
}

/// `sh -c SCRIPT`, as `user` (with setpriv) or as the caller.
fn sh(sb: &Sandbox, user: Option<&str>, script: &str) -> Command {
    let mut cmd = match user {
        Some(u) => {
            let mut c = sb.command("setpriv");
            c.args(["--reuid", u, "--regid", u, "--init-groups", "sh", "-c", script]).env("HOME", "/tmp");
            c
        }
        None => {
            let mut c = sb.command("sh");
            c.args(["-c", script]);
            c
        }
    };
    cmd.stdin(Stdio::null());
    cmd
}

fn run(sb: &Sandbox, user: Option<&str>, script: &str) -> String {
    let r = Run::of(sh(sb, user, script).output().unwrap(), script.to_owned());
    r.ok().to_owned()
}

/// A TCP server in the namespace of `pid` (entered with ns-exec, rootless too), listening once
/// this returns; it ends after one connection.
fn serve(sb: &Sandbox, user: Option<&str>, work: &Path, pid: u32) -> std::process::Child {
    let mut child = sh(sb, user, &format!("exec ns-exec -t {pid} python3 {}/server.py", work.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    if line != "listening\n" {
        let out = child.wait_with_output().unwrap();
        panic!("the TCP server did not start: {}", String::from_utf8_lossy(&out.stderr));
    }
    child
}

/// Wait for a process to end by itself (the test's leak check kills it otherwise).
fn ended(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id();
    assert!(wait_exit(pid, Duration::from_secs(10)), "process {pid} did not end");
    child.wait().unwrap()
}

/// The bridge and two testenvs, 21 and 22, as testenv's holders (ns-unshare) with veth pairs.
fn two_testenvs(sb: &mut Sandbox) -> (u32, u32) {
    sb.run("br-attach", &["--create", "--addr", "10.53.57.11/24", "--addr", "fd00::5357:5f0b/112"]).ok();
    let mut pids = Vec::new();
    for n in [21, 22] {
        let pid: u32 = sb.run("ns-unshare", &[]).ok().trim().parse().unwrap();
        sb.on_drop(move || {
            signal(pid, Signal::SIGTERM);
            wait_exit(pid, Duration::from_secs(2));
        });
        let (v4, v6) = (format!("10.53.57.{n}/24"), format!("fd00::5357:5f{n:02x}/112"));
        let veth = format!("veth{n}");
        sb.run("veth-pair", &[&veth, "--netns", &pid.to_string(), "--addr", &v4, "--addr", &v6]).ok();
        sb.run("br-attach", &["--timeout", "0", &format!("{veth}-br")]).ok();
        pids.push(pid);
    }
    (pids[0], pids[1])
}

#[test]
fn ns_exec_capture_records_icmp_both_ways_and_a_tcp_handshake() {
    let mut sb = sandbox!("ns_exec_capture_records_icmp_both_ways_and_a_tcp_handshake");
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(&mut sb, "direct");
    let (a, b) = two_testenvs(&mut sb);
    let server = serve(&sb, None, &work, b);
    let file = work.join("a.pcap");
    run(
        &sb,
        None,
        &format!(
            "ns-exec -t {a} --capture {f} -- sh -c 'ping -c 3 -i 0.2 -W 5 10.53.57.22 && ping -c 2 -i 0.2 -W 5 fd00::5357:5f16 && python3 {w}/client.py 10.53.57.22' > /dev/null",
            f = file.display(),
            w = work.display()
        ),
    );
    ended(server);
    readers.pings(&file, "10.53.57.21", "10.53.57.22", 3);
    readers.pings(&file, "fd00::5357:5f15", "fd00::5357:5f16", 2);
    readers.handshake(&file, "10.53.57.22");
    // One interface description per interface seen, named as in the namespace.
    let out = Command::new("tshark").arg("-r").arg(&file).args(["-T", "fields", "-e", "frame.interface_name"]).output();
    let names = String::from_utf8_lossy(&out.unwrap().stdout).into_owned();
    assert!(names.lines().all(|l| l == "veth21"), "{names}");
}

#[test]
fn ns_exec_capture_keeps_loopback_packets_once() {
    let mut sb = sandbox!("ns_exec_capture_keeps_loopback_packets_once");
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(&mut sb, "loopback");
    let file = work.join("lo.pcap");
    run(
        &sb,
        None,
        &format!(
            "unshare --net sh -c 'ip link set lo up
             ns-exec -t $$ --capture {f} -- sh -c \"ping -c 4 -i 0.2 127.0.0.1 && ping -c 3 -i 0.2 ::1 && (python3 {w}/server.py & sleep 0.5; python3 {w}/client.py 127.0.0.1; wait)\"' > /dev/null",
            f = file.display(),
            w = work.display()
        ),
    );
    readers.pings(&file, "127.0.0.1", "127.0.0.1", 4);
    readers.pings(&file, "::1", "::1", 3);
    readers.handshake(&file, "127.0.0.1");
    let all = readers.count(&file, "frame", "");
    assert!(all <= 4 * 2 + 3 * 2 + 12, "nothing is recorded twice: {all} packets:\n{}", Readers::dump(&file));
}

#[test]
fn ns_exec_capture_is_complete_after_sigterm() {
    let mut sb = sandbox!("ns_exec_capture_is_complete_after_sigterm");
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(&mut sb, "sigterm");
    let file = work.join("burst.pcap");
    // 300 echo requests as fast as ping goes, then SIGTERM at once: nothing may be missing.
    let mut child = sb
        .command("unshare")
        .args(["--net", "sh", "-c"])
        .arg(format!(
            "ip link set lo up; exec ns-exec -t $$ --capture {} -- sh -c 'ping -q -c 300 -i 0.002 127.0.0.1 > /dev/null && echo sent && exec sleep 60'",
            file.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "sent\n");
    signal(child.id(), Signal::SIGTERM);
    let status = ended(child);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32), "ns-exec dies of the signal CMD died of");
    readers.pings(&file, "127.0.0.1", "127.0.0.1", 300);
}

#[test]
fn ns_exec_capture_records_every_packet_of_a_flood_that_starts_while_it_rests() {
    let mut sb = sandbox!("ns_exec_capture_records_every_packet_of_a_flood_that_starts_while_it_rests");
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(&mut sb, "flood");
    let file = work.join("flood.pcap");
    // One echo wakes the capture, which then rests (the socket is not polled); the flood starts
    // a moment later, within the rest: what queues meanwhile must all be read, none dropped.
    const FLOOD: usize = 20_000;
    let script = format!(
        "ip link set lo up; exec ns-exec -t $$ --capture {} -- sh -c 'ping -c 1 -W 5 127.0.0.1 > /dev/null && ping -f -q -c {FLOOD} 127.0.0.1 > /dev/null'",
        file.display()
    );
    let out = sb.command("unshare").args(["--net", "sh", "-c"]).arg(&script).stdin(Stdio::null()).output().unwrap();
    let r = Run::of(out, script);
    r.ok();
    assert_eq!(r.stderr, "", "nothing dropped, nothing said");
    readers.pings(&file, "127.0.0.1", "127.0.0.1", FLOOD + 1);
}

/// Run `script` (sh) in the background of a non-interactive shell, which starts it with SIGINT
/// and SIGQUIT ignored: it must print a line once its capture is open, then run until
/// signalled (its stdout and stderr go to a FIFO). The shell then sends it `sig` and prints how it ended; it must end within 10 s.
fn background_job_ends_on(sb: &Sandbox, user: Option<&str>, work: &Path, script: &str, sig: &str) -> String {
    let open = work.join("open");
    let _ = std::fs::remove_file(&open);
    mkfifo(&open);
    let line = format!(
        "{script} > {o} 2>&1 &
         job=$!
         read -r line < {o}
         kill -{sig} $job
         wait $job
         echo \"$line: exit $?\"",
        o = open.display()
    );
    let child = sh(sb, user, &line).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    assert!(wait_exit(pid, Duration::from_secs(10)), "the background capture did not end on SIG{sig}");
    let r = Run::of(child.wait_with_output().unwrap(), line);
    r.ok().trim().to_owned()
}

#[test]
fn ns_exec_capture_in_the_background_ends_on_sigint() {
    let mut sb = sandbox!("ns_exec_capture_in_the_background_ends_on_sigint");
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(&mut sb, "background");
    let file = work.join("bg.pcap");
    // CMD ignores SIGINT and SIGQUIT as the background job's command: the capture ends all the
    // same, CMD with it (SIGTERM), and the file is complete.
    for sig in ["INT", "QUIT"] {
        let out = background_job_ends_on(
            &sb,
            None,
            &work,
            &format!(
                "unshare --net sh -c 'ip link set lo up; exec ns-exec -t $$ --capture {} -- sh -c \"ping -c 2 -i 0.2 127.0.0.1 > /dev/null; echo open; exec sleep 600\"'",
                file.display()
            ),
            sig,
        );
        assert_eq!(out, "open: exit 143", "ns-exec exits as CMD ended: SIGTERM");
        readers.pings(&file, "127.0.0.1", "127.0.0.1", 2);
    }
}

#[test]
fn ns_exec_end_netns_records_what_the_leftovers_send_as_they_end() {
    let mut sb = sandbox!("ns_exec_end_netns_records_what_the_leftovers_send_as_they_end");
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(&mut sb, "leftover");
    let file = work.join("left.pcap");
    // CMD leaves a process behind that answers SIGTERM with one ping, then exits.
    let cmd = work.join("cmd.sh");
    std::fs::write(
        &cmd,
        "setsid sh -c 'trap \"ping -c 1 -W 1 127.0.0.1; exit 0\" TERM; while :; do sleep 0.05; done' > /dev/null 2>&1 &\nsleep 0.3\n",
    )
    .unwrap();
    run(
        &sb,
        None,
        &format!(
            "unshare --net sh -c 'ip link set lo up; exec ns-exec -t $$ --end-netns --capture {} -- sh {}'",
            file.display(),
            cmd.display()
        ),
    );
    readers.pings(&file, "127.0.0.1", "127.0.0.1", 1);
}

/// Run argv[1:] with the tun device tun0 attached (python3), so that it has a carrier.
const TUN: &str = "import fcntl, os, struct, subprocess, sys\n\
fd = os.open('/dev/net/tun', os.O_RDWR)\n\
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'tun0', 0x0001 | 0x1000))\n\
sys.exit(subprocess.run(sys.argv[1:]).returncode)\n";

#[test]
fn ns_exec_capture_files_open_in_every_reader() {
    let mut sb = sandbox!("ns_exec_capture_files_open_in_every_reader");
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(&mut sb, "readers");
    // Nothing up, nothing sent: still one interface description each (loopback), no packet.
    let (empty, lo) = (work.join("empty.pcap"), work.join("lo.pcap"));
    run(
        &sb,
        None,
        &format!(
            "unshare --net sh -c 'ns-exec -t $$ --capture {} -- true && ns-exec -t $$ --capture {} --capture-interface lo -- true'",
            empty.display(),
            lo.display()
        ),
    );
    for file in [&empty, &lo] {
        assert_eq!(readers.count(file, "frame", ""), 0, "{}", file.display());
        let out = Command::new("tshark").arg("-r").arg(file).args(["-T", "fields", "-e", "frame.number"]).output();
        assert!(out.unwrap().status.success());
    }
    // An interface without an Ethernet header (tun) next to loopback: one file both read.
    std::fs::write(work.join("tun.py"), TUN).unwrap();
    let mixed = work.join("mixed.pcap");
    let made = sb.sh(&format!(
        "unshare --net sh -c 'ip link set lo up && ip tuntap add tun0 mode tun && ip addr add 10.9.9.1/24 dev tun0 && ip link set tun0 up || exit 3
         ns-exec -t $$ --capture {f} -- python3 {w}/tun.py sh -c \"ping -c 3 -i 0.3 -W 1 10.9.9.2; ping -c 1 127.0.0.1\" > /dev/null'",
        w = work.display(),
        f = mixed.display()
    ));
    if made.is_err() && !mixed.exists() {
        eprintln!("NOTE {}: no tun device here ({made:?}); the mixed case is not checked", sb.name());
        return;
    }
    assert!(readers.count(&mixed, "icmp.type == 8 && ip.dst == 10.9.9.2", "icmp and dst host 10.9.9.2") >= 1);
    readers.pings(&mixed, "127.0.0.1", "127.0.0.1", 1);
}

#[test]
fn ns_exec_capture_errors_are_one_line_and_nothing_runs() {
    let mut sb = sandbox!("ns_exec_capture_errors_are_one_line_and_nothing_runs");
    let work = workdir(&mut sb, "errors");
    let pid = sb.run("ns-unshare", &[]).ok().trim().to_owned();
    let marker = work.join("ran");
    let m = marker.to_str().unwrap();
    sb.run("ns-exec", &["-t", &pid, "--capture", "/nonexistent/x.pcap", "--", "touch", m])
        .fails(125, "ns-exec: cannot capture to '/nonexistent/x.pcap': No such file or directory (ENOENT)");
    let f = work.join("x.pcap");
    let f = f.to_str().unwrap();
    sb.run("ns-exec", &["-t", &pid, "--capture", f, "--capture-interface", "nope0", "--", "touch", m])
        .fails(125, "no interface 'nope0' here: No such device (ENODEV)");
    assert!(!Path::new(f).exists(), "a file made for a capture that did not start is removed");
    // Started, then a failure before CMD runs (--wd): the file goes too.
    sb.run("ns-exec", &["-t", &pid, "--capture", f, "--wd", "/nonexistent", "--", "touch", m])
        .fails(125, "cannot change directory to /nonexistent");
    assert!(!Path::new(f).exists(), "a file made for a capture whose command never ran is removed");
    if Readers::get(sb.name()).is_some() {
        sb.run("ns-exec", &["-t", &pid, "--capture", f, "--capture-filter", "tcp port", "--", "touch", m])
            .fails(125, "cannot compile the capture filter 'tcp port'");
    }
    sb.run("ns-exec", &["-t", &pid, "--capture-filter", "icmp", "--", "touch", m]).fails(125, "--capture");
    assert!(!marker.exists(), "CMD never ran");
    // Without privilege over the namespace: refused, and the file left as it was.
    if let Some(user) = plain_user(sb.name()) {
        std::fs::write(work.join("old.pcap"), "kept").unwrap();
        std::fs::set_permissions(work.join("old.pcap"), std::fs::Permissions::from_mode(0o666)).unwrap();
        let r = sb.sh_as(user, &format!("ns-exec -t $$ --capture {}/old.pcap -- touch {m}", work.display()));
        r.fails(125, "cannot open a packet socket: Operation not permitted (EPERM)");
        assert_eq!(std::fs::read_to_string(work.join("old.pcap")).unwrap(), "kept");
        assert!(!marker.exists());
    }
    sb.run("ns-unshare", &["--stop", &pid]).ok();
}

// The drop-ins, replayed as selftest calls them.

/// The holder (an ns-unshare process) whose network namespace an isolated testenv's PID entered.
fn holder_of(ns_pid: u32) -> u32 {
    let net = std::fs::read_link(format!("/proc/{ns_pid}/ns/net")).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ns-unshare")
                && std::fs::read_link(format!("/proc/{p}/ns/net")).is_ok_and(|l| l == net)
        })
        .expect("the testenv's holder")
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
}

#[test]
fn drop_ins_record_the_bridge_and_each_testenv_as_root() {
    let mut sb = sandbox!("drop_ins_record_the_bridge_and_each_testenv_as_root");
    replay_with_captures(&mut sb, None, false);
}

#[test]
fn drop_ins_record_the_bridge_and_each_testenv_rootless() {
    let mut sb = sandbox!("drop_ins_record_the_bridge_and_each_testenv_rootless");
    let Some(user) = plain_user(sb.name()) else { return };
    replay_with_captures(&mut sb, Some(user), false);
}

#[test]
fn drop_ins_record_each_testenv_with_full_isolation_rootless() {
    let mut sb = sandbox!("drop_ins_record_each_testenv_with_full_isolation_rootless");
    let Some(user) = plain_user(sb.name()) else { return };
    sb.set_env("NSTOOLS_ISOLATE", "all");
    replay_with_captures(&mut sb, Some(user), true);
}

/// tests/samba-replay.sh with NSTOOLS_PCAP_DIR: as root in the sandbox's namespace, or as a
/// plain user inside 'unshare --net --user --map-root-user' (as 'make test' runs selftest).
fn replay_with_captures(sb: &mut Sandbox, user: Option<&str>, isolated: bool) {
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(sb, "replay");
    let pcaps = work.join("pcaps");
    mkfifo(&work.join("ready"));
    mkfifo(&work.join("go"));
    sb.set_env("NSTOOLS_PCAP_DIR", pcaps.to_str().unwrap());
    let replay = format!(
        "sh {} {} {}",
        workspace().join("tests/samba-replay.sh").display(),
        work.display(),
        scripts().display()
    );
    let line = match user {
        Some(_) => format!("cd {} && exec unshare --net --user --map-root-user {replay}", work.display()),
        None => format!("cd {} && exec {replay}", work.display()),
    };
    let driver = sh(sb, user, &line).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut ready = String::new();
    BufReader::new(std::fs::File::open(work.join("ready")).unwrap()).read_line(&mut ready).unwrap();
    let ids: Vec<u32> = ready.split_whitespace().skip(1).map(|s| s.parse().unwrap()).collect();
    let (mut ns21, mut ns22) = (ids[0], ids[1]);
    if isolated {
        // From outside, an isolated testenv is entered through its holder (as nsenter.sh does).
        (ns21, ns22) = (holder_of(ns21), holder_of(ns22));
    }

    // Meanwhile, from outside: loopback traffic in 21 and a TCP connection from 21 to 22.
    let server = serve(sb, user, &work, ns22);
    run(sb, user, &format!("ns-exec -t {ns21} ping -c 3 -i 0.2 127.0.0.1 > /dev/null"));
    run(sb, user, &format!("ns-exec -t {ns21} python3 {}/client.py 10.53.57.22", work.display()));
    ended(server);

    std::fs::OpenOptions::new().write(true).open(work.join("go")).unwrap().write_all(b"go\n").unwrap();
    let r = Run::of(driver.wait_with_output().unwrap(), "samba-replay.sh".into());
    let text = r.ok().to_owned();
    assert!(!text.contains("FAIL") && text.ends_with("DONE\n"), "{text}\n{}", r.stderr);
    // The bridge's capture ends with its caller (the replay's shell), soon after.
    assert!(wait_until(Duration::from_secs(10), || sb.tagged_processes().is_empty()), "captures still running");

    let mut names: Vec<String> =
        std::fs::read_dir(&pcaps).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["env21.samba.pcap", "env22.samba.pcap", "selftest0.log", "selftest0.pcap"]);
    assert_eq!(std::fs::read_to_string(pcaps.join("selftest0.log")).unwrap(), "", "no capture messages");
    let (env21, env22, bridge) =
        (pcaps.join("env21.samba.pcap"), pcaps.join("env22.samba.pcap"), pcaps.join("selftest0.pcap"));
    // The replay pings once each way: testenv to testenv, testenv to bridge, bridge to testenv.
    for file in [&env21, &env22, &bridge] {
        readers.handshake(file, "10.53.57.22");
    }
    for file in [&env21, &bridge] {
        readers.pings(file, "10.53.57.21", "10.53.57.22", 1);
        readers.pings(file, "fd00::5357:5f15", "fd00::5357:5f16", 1);
        // The last traffic before teardown: the testenv's capture ended after it.
        readers.pings(file, "10.53.57.11", "10.53.57.21", 1);
    }
    for file in [&env22, &bridge] {
        readers.pings(file, "10.53.57.22", "10.53.57.11", 1);
        readers.pings(file, "fd00::5357:5f16", "fd00::5357:5f0b", 1);
    }
    readers.pings(&env21, "127.0.0.1", "127.0.0.1", 3);
    assert_eq!(readers.count(&bridge, "icmp && ip.src == 127.0.0.1", "icmp and src host 127.0.0.1"), 0);
}

#[test]
fn unset_nstools_pcap_dir_runs_no_capture() {
    let mut sb = sandbox!("unset_nstools_pcap_dir_runs_no_capture");
    let work = workdir(&mut sb, "unset");
    std::fs::write(work.join("exports.sh"), "NETBIOSNAME=PLAIN\nSERVER_IP=10.53.57.31\n").unwrap();
    let s = scripts();
    // The daemon shows how its parent (the testenv's PID) was started.
    // (Each run its own pair: the kernel removes the first one's asynchronously.)
    let start = |pcap_dir: Option<&Path>, n: u32| {
        let pcap = pcap_dir.map_or(String::new(), |d| format!("NSTOOLS_PCAP_DIR={}", d.display()));
        run(
            &sb,
            None,
            &format!(
                "set -e; cd {w}; export {pcap} ENVNAME=plain.smbd
                 {s}/create_bridge.sh selftest0 10.53.57.11 fd00::5357:5f0b
                 unshare --net {s}/start_in_ns.sh veth{n} exports.sh $$ sh -c 'tr \"\\0\" \" \" < /proc/$PPID/cmdline' &
                 {s}/add_bridge_iface.sh veth{n}-br selftest0 > /dev/null
                 wait $!",
                w = work.display(),
                s = s.display()
            ),
        )
    };
    let out = start(None, 31);
    assert!(out.contains("ns-exec -t ") && out.contains(" --end-netns -- sh -c"), "{out}");
    assert!(!out.contains("--capture"), "{out}");
    assert!(sb.tagged_processes().is_empty(), "nothing runs in the background");
    let mut left: Vec<_> = std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["client.py", "exports.sh", "nsenter.sh", "server.py"], "no capture file");
    // Set: the testenv's PID records.
    let pcaps = work.join("pcaps");
    let out = start(Some(&pcaps), 32);
    assert!(out.contains(&format!("--capture {}/plain.smbd.pcap -- veth-pair veth32 ", pcaps.display())), "{out}");
    assert!(pcaps.join("plain.smbd.pcap").exists() && pcaps.join("selftest0.pcap").exists());
}

// testenv capture.

#[test]
fn testenv_capture_records_the_bridge_and_a_testenv_as_root() {
    let mut sb = sandbox!("testenv_capture_records_the_bridge_and_a_testenv_as_root");
    testenv_capture(&mut sb, None);
}

#[test]
fn testenv_capture_records_the_bridge_and_a_testenv_rootless() {
    let mut sb = sandbox!("testenv_capture_records_the_bridge_and_a_testenv_rootless");
    let Some(user) = plain_user(sb.name()) else { return };
    testenv_capture(&mut sb, Some(user));
}

fn testenv_capture(sb: &mut Sandbox, user: Option<&str>) {
    let Some(readers) = Readers::get(sb.name()) else { return };
    let work = workdir(sb, "testenv");
    sb.set_env("NSTOOLS_SELFTEST_LABEL", &format!("{}-hub", sb.tag));
    let tenv = scripts().join("testenv").display().to_string();
    run(sb, user, &format!("{tenv} up a:21 b:22"));
    // Until SIGTERM; open once it says so.
    let start = |args: &str| {
        let mut child = sh(sb, user, &format!("cd {} && exec {tenv} capture {args}", work.display()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("capturing on "), "{line}");
        child
    };
    let bridge = start("-w bridge.pcap");
    let a = start("a -w a.pcap -- icmp or icmp6");
    run(sb, user, &format!("{tenv} exec a -- ping -c 2 -i 0.2 -W 5 10.53.57.22 > /dev/null"));
    run(sb, user, &format!("{tenv} exec a -- ping -c 2 -i 0.2 -W 5 fd00::5357:5f16 > /dev/null"));
    let server = sh(sb, user, &format!("exec {tenv} exec b -- python3 {}/server.py", work.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = server;
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    run(sb, user, &format!("{tenv} exec a -- python3 {}/client.py fd00::5357:5f16", work.display()));
    ended(server);
    for child in [bridge, a] {
        signal(child.id(), Signal::SIGTERM);
        ended(child);
    }
    let (bridge, a) = (work.join("bridge.pcap"), work.join("a.pcap"));
    for file in [&bridge, &a] {
        readers.pings(file, "10.53.57.21", "10.53.57.22", 2);
        readers.pings(file, "fd00::5357:5f15", "fd00::5357:5f16", 2);
    }
    readers.handshake(&bridge, "fd00::5357:5f16");
    assert_eq!(readers.count(&a, "tcp", "tcp"), 0, "the filter keeps ICMP only");
    // As a background job (SIGINT ignored), Ctrl-C's signal ends it all the same.
    let script = format!("cd {} && exec {tenv} capture a -w bg.pcap", work.display());
    let out = background_job_ends_on(sb, user, &work, &script, "INT");
    assert_eq!(out, format!("capturing on testenv a (every interface) into bg.pcap; Ctrl-C ends it: exit 143"));
    readers.count(&work.join("bg.pcap"), "frame", "");
    run(sb, user, &format!("{tenv} down"));
}
