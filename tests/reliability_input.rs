//! Bad input across the five tools and the drop-in scripts: names, CIDRs, targets, bridges,
//! exports files, flags, stdin, commands, and missing privilege. Each case: the documented
//! exit code, one line on stderr naming the problem, nothing on stdout, no panic, and the
//! snapshot unchanged.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use nstools_tests::{Sandbox, netns_of, plain_user, sandbox, wait_until};

use crate::{Cmd, Group, Rng, Watch, expect_failure, verdict};

pub const GROUPS: &[Group] = &[
    ("input/names", names),
    ("input/cidrs", cidrs),
    ("input/targets", targets),
    ("input/bridges", bridges),
    ("input/exports", exports),
    ("input/flags", flags),
    ("input/stdin", stdin),
    ("input/commands", commands),
    ("input/privilege", privilege),
];

fn fail(sb: &Sandbox, w: &Watch, group: &str, what: &str, cmd: Cmd, code: i32, needle: &str) {
    expect_failure(sb, w, group, what, &cmd, code, needle);
}

fn holder(sb: &Sandbox) -> u32 {
    let r = Cmd::new("ns-unshare", &["--name", "input-holder"]).run(sb);
    r.ok().trim().parse().unwrap()
}

fn stop(sb: &Sandbox, pid: u32) {
    Cmd::new("ns-unshare", &["--stop", &pid.to_string()]).run(sb).ok();
}

fn names() {
    let g = "input/names";
    let sb = sandbox!(g);
    let w = Watch::default();
    for (what, name, needle) in [
        ("name too long", "abcdefghijklmnop", "is 16 bytes long; the kernel's limit is 15"),
        ("empty name", "", "must not be empty"),
        ("'.' as a name", ".", "'.' and '..' are reserved"),
        ("'..' as a name", "..", "'.' and '..' are reserved"),
        ("'/' in a name", "a/b", "must not contain '/'"),
        ("':' in a name", "veth0:1", "must not contain ':'"),
        ("space in a name", "veth 0", "contains the control or space character ' '"),
        ("tab in a name", "veth\t0", "'veth\\t0'"),
        ("newline in a name", "veth\n0", "'veth\\n0'"),
        ("escape sequence in a name", "ve\x1b[31mth", "'\\u{1b}'"),
        ("non-ASCII name", "vethé", "non-ASCII character 'é'"),
        ("peer name too long", "abcdefghijklm", "its peer name 'abcdefghijklm-br' would be 16 bytes long"),
    ] {
        fail(&sb, &w, g, what, Cmd::new("veth-pair", &[name]), 2, needle);
    }
    fail(&sb, &w, g, "non-UTF-8 name", Cmd::new("veth-pair", &[]).arg_bytes(b"veth\xff"), 2, "invalid UTF-8");
    fail(
        &sb,
        &w,
        g,
        "bad --peer-name",
        Cmd::new("veth-pair", &["v0", "--peer-name", "v0:br"]),
        2,
        "must not contain ':'",
    );
    fail(&sb, &w, g, "bad bridge name", Cmd::new("br-attach", &["--bridge", "a b", "--create"]), 2, "space");
    fail(&sb, &w, g, "bad interface name", Cmd::new("br-attach", &["--create", ".."]), 2, "reserved");
    fail(&sb, &w, g, "carriage return in a name", Cmd::new("br-attach", &["--bridge", "a\rb", "x"]), 2, "'a\\rb'");
    fail(&sb, &w, g, "empty label", Cmd::new("ns-unshare", &["--name", ""]), 2, "a label is one non-empty line");
    fail(&sb, &w, g, "two-line label", Cmd::new("ns-unshare", &["--name", "a\nb"]), 2, "a label is one non-empty line");
    fail(&sb, &w, g, "bad hostname", Cmd::new("ns-unshare", &["--hostname", "a b"]), 2, "a hostname is 1-64 letters");
    let label = format!("{}-hub", sb.tag);
    fail(
        &sb,
        &w,
        g,
        "testenv name with a space",
        Cmd::new("testenv", &["up", "ad dc:21"]).env("NSTOOLS_SELFTEST_LABEL", &label),
        1,
        "is not NAME:N",
    );
    fail(
        &sb,
        &w,
        g,
        "testenv number of the bridge",
        Cmd::new("testenv", &["up", "x:11"]).env("NSTOOLS_SELFTEST_LABEL", &label),
        1,
        "N must be 2..254 and not 11",
    );
    fail(
        &sb,
        &w,
        g,
        "testenv number out of range",
        Cmd::new("testenv", &["up", "x:300"]).env("NSTOOLS_SELFTEST_LABEL", &label),
        1,
        "N must be 2..254",
    );
}

fn cidrs() {
    let g = "input/cidrs";
    let sb = sandbox!(g);
    let w = Watch::default();
    for (what, cidr, needle) in [
        ("malformed IPv4", "10.0.0/24", "'10.0.0' is not an IPv4 or IPv6 address"),
        ("malformed IPv6", "fd00:::1/64", "is not an IPv4 or IPv6 address"),
        ("empty address", "", "is not an IPv4 or IPv6 address"),
        ("IPv4 prefix out of range", "10.0.0.1/33", "prefix length /33 is out of range for IPv4 (0-32)"),
        ("IPv6 prefix out of range", "fd00::1/129", "prefix length /129 is out of range for IPv6 (0-128)"),
        ("empty prefix", "10.0.0.1/", "prefix length '' is not a number"),
        ("negative prefix", "10.0.0.1/-1", "prefix length '-1' is not a number"),
        ("trailing garbage", "10.0.0.1/24x", "prefix length '24x' is not a number"),
        ("two prefixes", "10.0.0.1/24/8", "is not a number"),
        ("IPv4-mapped IPv6", "::ffff:10.0.0.1/96", "is an IPv4-mapped IPv6 address; use the IPv4 address 10.0.0.1"),
        ("network address", "10.53.57.0/24", "is the network address of 10.53.57.0/24"),
        ("broadcast address", "10.53.57.255/24", "is the broadcast address of 10.53.57.0/24"),
        ("IPv4 multicast", "224.0.0.1/4", "is a multicast address"),
        ("IPv6 multicast", "ff02::1/64", "is a multicast address"),
        ("unspecified IPv4", "0.0.0.0/0", "unspecified"),
        ("unspecified IPv6", "::/0", "unspecified"),
        ("IPv6 subnet-router anycast", "fd00::5357:0/112", "subnet-router anycast address"),
    ] {
        fail(&sb, &w, g, what, Cmd::new("veth-pair", &["v0", "--addr", cidr]), 2, needle);
    }
    fail(
        &sb,
        &w,
        g,
        "bad --peer-addr",
        Cmd::new("veth-pair", &["v0", "--peer-addr", "10.0.0.256/24"]),
        2,
        "'10.0.0.256'",
    );
    fail(&sb, &w, g, "bad bridge address", Cmd::new("br-attach", &["--create", "--addr", "selftest"]), 2, "'selftest'");
    fail(
        &sb,
        &w,
        g,
        "bad IPv4 to create_bridge.sh",
        Cmd::new("create_bridge.sh", &["selftest0", "10.53.57", "fd00::5357:5f0b"]),
        2,
        "'10.53.57' is not an IPv4 or IPv6 address",
    );
}

fn targets() {
    let g = "input/targets";
    let mut sb = sandbox!(g);
    let h = holder(&sb);
    let hs = h.to_string();
    let w = Watch::default().ns("holder", h).fds(h);
    let dead = {
        let mut c = sb.command("true").spawn().unwrap();
        let id = c.id();
        c.wait().unwrap();
        id.to_string()
    };
    let zparent = sb.spawn(&["sh", "-c", "sleep 0 & exec sleep infinity"], "sleep");
    assert!(wait_until(Duration::from_secs(5), || nstools_tests::zombie_child_of(zparent).is_some()));
    let z = nstools_tests::zombie_child_of(zparent).unwrap().to_string();
    let anchor = sb.anchor().to_string();
    let wrong = format!("{h}:{}", netns_of(h) + 1);
    let dir = sb.workdir("targets");
    let file = dir.join("file");
    std::fs::write(&file, "not a namespace\n").unwrap();
    let (file, dirs) = (file.display().to_string(), dir.display().to_string());

    fail(&sb, &w, g, "missing PID", Cmd::new("veth-pair", &["v0", "--netns", &dead]), 1, "no process with PID");
    fail(&sb, &w, g, "zombie", Cmd::new("ns-exec", &["-t", &z, "true"]), 125, &format!("process {z} has exited"));
    fail(&sb, &w, g, "zombie", Cmd::new("veth-pair", &["v0", "--peer-netns", &z]), 1, "has exited");
    let kthread = std::fs::read_to_string("/proc/2/stat").is_ok_and(|s| s.contains("(kthreadd)"));
    if kthread {
        fail(
            &sb,
            &w,
            g,
            "kernel thread",
            Cmd::new("ns-exec", &["-t", "2", "true"]),
            125,
            "process 2 is a kernel thread",
        );
        fail(
            &sb,
            &w,
            g,
            "kernel thread",
            Cmd::new("br-attach", &["--netns", "2", "--create"]),
            1,
            "is a kernel thread",
        );
        fail(&sb, &w, g, "kernel thread", Cmd::new("ns-unshare", &["--exit-with", "2"]), 1, "is a kernel thread");
    } else {
        nstools_tests::skip("input/targets kernel thread", "PID 2 is not kthreadd here (a PID namespace?)");
    }
    fail(
        &sb,
        &w,
        g,
        "PID:INODE mismatch",
        Cmd::new("veth-pair", &["v0", "--netns", &wrong]),
        1,
        "is no longer in network namespace",
    );
    fail(
        &sb,
        &w,
        g,
        "PID:INODE mismatch",
        Cmd::new("ns-exec", &["-t", &wrong, "true"]),
        125,
        "the PID was probably reused",
    );
    fail(
        &sb,
        &w,
        g,
        "nsfs path of another type",
        Cmd::new("ns-exec", &["-t", &format!("/proc/{h}/ns/uts"), "true"]),
        125,
        "is a uts namespace, not a network namespace",
    );
    fail(&sb, &w, g, "regular file", Cmd::new("ns-exec", &["-t", &file, "true"]), 125, "is not a namespace file");
    fail(&sb, &w, g, "directory", Cmd::new("veth-pair", &["v0", "--netns", &dirs]), 1, "is not a namespace file");
    fail(
        &sb,
        &w,
        g,
        "missing path",
        Cmd::new("br-attach", &["--netns", "/nonexistent/ns", "--create"]),
        1,
        "No such file",
    );
    fail(
        &sb,
        &w,
        g,
        "unknown name",
        Cmd::new("br-attach", &["--netns", "nosuchns", "--create"]),
        1,
        "no network namespace named 'nosuchns'",
    );
    fail(&sb, &w, g, "two-line name", Cmd::new("ns-exec", &["-t", "1\n2", "true"]), 125, "'1\\n2'");
    fail(&sb, &w, g, "PID 0", Cmd::new("ns-exec", &["-t", "0", "true"]), 125, "'0' is not a valid PID");
    fail(&sb, &w, g, "negative PID", Cmd::new("veth-pair", &["v0", "--netns=-5"]), 2, "is not a valid PID");
    fail(
        &sb,
        &w,
        g,
        "PID too large",
        Cmd::new("veth-pair", &["v0", "--netns", "99999999999"]),
        2,
        "is not a valid PID",
    );
    fail(
        &sb,
        &w,
        g,
        "INODE not a number",
        Cmd::new("ns-exec", &["-t", &format!("{h}:x"), "true"]),
        125,
        "INODE must be",
    );
    fail(
        &sb,
        &w,
        g,
        "missing PID",
        Cmd::new("ns-unshare", &["--exit-with", &dead]),
        1,
        "--exit-with: no process with PID",
    );
    fail(&sb, &w, g, "not a holder", Cmd::new("ns-unshare", &["--stop", &anchor]), 1, "is not an ns-unshare holder");
    fail(&sb, &w, g, "missing PID", Cmd::new("ns-unshare", &["--stop", &dead]), 1, "no process with PID");
    fail(&sb, &w, g, "path instead of PID", Cmd::new("ns-unshare", &["--stop", &file]), 2, "give the PID");
    fail(&sb, &w, g, "missing PID", Cmd::new("ns-ls", &["-p", &dead]), 1, "no process with PID");
    fail(
        &sb,
        &w,
        g,
        "missing interface",
        Cmd::new("veth-pair", &["--delete", "v0", "--netns", &hs]),
        1,
        "v0 does not exist",
    );
    fail(&sb, &w, g, "not a veth", Cmd::new("veth-pair", &["--delete", "lo", "--netns", &hs]), 1, "not a veth");
    fail(&sb, &w, g, "missing PID", Cmd::new("mk_nsenter.sh", &[&dead, &file]), 1, "no process");
    // The names are taken: EEXIST, naming which one.
    sb.must(&format!("ip link add v1 type veth peer name v1x && ip link add v2-br type veth peer name v2x && ip link add v3 netns /proc/{h}/ns/net type veth peer name v3x"));
    let w = Watch::default().ns("holder", h).fds(h);
    fail(&sb, &w, g, "name taken", Cmd::new("veth-pair", &["v1"]), 1, "cannot create v1: File exists (EEXIST)");
    fail(&sb, &w, g, "peer name taken", Cmd::new("veth-pair", &["v2"]), 1, "its peer v2-br already exists");
    fail(&sb, &w, g, "name taken there", Cmd::new("veth-pair", &["v3", "--netns", &hs]), 1, "File exists (EEXIST)");
    stop(&sb, h);
}

fn bridges() {
    let g = "input/bridges";
    let sb = sandbox!(g);
    sb.must(
        "ip link add nb0 type veth peer name nb0x && ip link add br-a type bridge && ip link add p1 type veth peer name p1x \
         && ip link set p1 master br-a && ip link add br-b type bridge",
    );
    let w = Watch::default();
    fail(&sb, &w, g, "missing bridge", Cmd::new("br-attach", &["p1x"]), 1, "bridge selftest0 does not exist");
    fail(&sb, &w, g, "missing bridge", Cmd::new("add_bridge_iface.sh", &["p1x", "selftest0"]), 1, "--create");
    fail(
        &sb,
        &w,
        g,
        "not a bridge",
        Cmd::new("br-attach", &["--bridge", "nb0", "p1x"]),
        1,
        "nb0 is not a bridge: it is a veth device",
    );
    fail(
        &sb,
        &w,
        g,
        "--create over a non-bridge",
        Cmd::new("br-attach", &["--create", "--bridge", "nb0"]),
        1,
        "nb0 is not a bridge",
    );
    fail(
        &sb,
        &w,
        g,
        "port enslaved elsewhere",
        Cmd::new("br-attach", &["--bridge", "br-b", "p1"]),
        1,
        "it is already attached to br-a",
    );
    fail(
        &sb,
        &w,
        g,
        "bridge as its own port",
        Cmd::new("br-attach", &["--bridge", "br-a", "br-a"]),
        2,
        "its own bridge port",
    );
    fail(
        &sb,
        &w,
        g,
        "missing port, no wait",
        Cmd::new("br-attach", &["--bridge", "br-a", "--timeout", "0", "nothere"]),
        1,
        "nothere does not exist",
    );
    fail(
        &sb,
        &w,
        g,
        "missing port, timeout",
        Cmd::new("br-attach", &["--bridge", "br-a", "--timeout", "0.2", "nothere"]),
        124,
        "nothere did not appear within 0.2 s",
    );
    // Fully undone: the bridge this run created, and the port it attached, go again.
    fail(
        &sb,
        &w,
        g,
        "timeout undoes its bridge",
        Cmd::new(
            "br-attach",
            &["--create", "--bridge", "br-new", "--addr", "10.9.9.1/24", "--timeout", "0.2", "p1x", "nothere"],
        ),
        124,
        "nothere did not appear",
    );
    fail(
        &sb,
        &w,
        g,
        "second port fails, first undone",
        Cmd::new("br-attach", &["--create", "--bridge", "br-new", "p1x", "p1"]),
        1,
        "cannot attach p1 to br-new: it is already attached to br-a (EBUSY)",
    );
    fail(
        &sb,
        &w,
        g,
        "timeout, script",
        Cmd::new("add_bridge_iface.sh", &["nothere", "br-a"]).env("NSTOOLS_ATTACH_TIMEOUT", "0.2"),
        124,
        "nothere did not appear within 0.2 s",
    );
    fail(
        &sb,
        &w,
        g,
        "negative timeout",
        Cmd::new("br-attach", &["--timeout", "-1", "x"]),
        2,
        "unexpected argument '-1'",
    );
    fail(
        &sb,
        &w,
        g,
        "timeout not a number",
        Cmd::new("br-attach", &["--timeout", "soon", "x"]),
        2,
        "'soon' is not a number of seconds",
    );
    fail(&sb, &w, g, "usage", Cmd::new("add_bridge_iface.sh", &["p1x"]), 1, "usage: add_bridge_iface.sh IFACE BRIDGE");
    fail(
        &sb,
        &w,
        g,
        "usage",
        Cmd::new("create_bridge.sh", &["selftest0"]),
        1,
        "usage: create_bridge.sh BRIDGE IPV4 IPV6",
    );
}

fn exports() {
    let g = "input/exports";
    let mut sb = sandbox!(g);
    let h = holder(&sb);
    let hs = h.to_string();
    let w = Watch::default().ns("holder", h).fds(h);
    let dir = sb.workdir("exports");
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let mut rng = Rng::new(7);
    let garbage: Vec<u8> = (0..4096).map(|_| rng.below(256) as u8).collect();
    let garbage = file("garbage", &garbage);
    let no_eq = file("no-eq", b"NETBIOSNAME=LOCALDC\nSERVER_IP 10.53.57.21\n");
    let huge_value = file("huge-value", &[b"A=".as_slice(), &vec![b'x'; 200_000]].concat());
    let huge_line = file("huge-line", &vec![b'y'; 1_000_000]);
    let bad_key = file("bad-key", b"$(touch /tmp/pwned)=1\n");
    let no_ip = file("no-ip", b"NETBIOSNAME=X\nENVNAME=x\n");
    let unreadable = file("unreadable", b"A=1\n");
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    let missing = dir.join("missing").display().to_string();
    let d = dir.display().to_string();
    let ns_exec = |f: &str| Cmd::new("ns-exec", &["-t", &hs, "--env-file", f, "true"]);

    fail(&sb, &w, g, "missing file", ns_exec(&missing), 125, "No such file or directory (ENOENT)");
    fail(&sb, &w, g, "a directory", ns_exec(&d), 125, "Is a directory (EISDIR)");
    fail(&sb, &w, g, "binary garbage", ns_exec(&garbage), 125, "garbage: line ");
    fail(&sb, &w, g, "line without '='", ns_exec(&no_eq), 125, "line 2: 'SERVER_IP 10.53.57.21' is not KEY=VALUE");
    fail(&sb, &w, g, "huge value", ns_exec(&huge_value), 125, "the value is 200000 bytes long");
    verdict(g, "ns-exec: huge line without '=': message stays short", || {
        let r = ns_exec(&huge_line).run(&sb);
        crate::check_failure(&r, "ns-exec", 125, "is not KEY=VALUE");
        assert!(r.stderr.len() < 400, "the message quotes the whole line: {} bytes", r.stderr.len());
        format!("{} bytes: {}", r.stderr.len(), crate::shorten(r.stderr.trim_end(), 120))
    });
    fail(&sb, &w, g, "shell code as a key", ns_exec(&bad_key), 125, "is not a variable name");
    fail(
        &sb,
        &w,
        g,
        "missing file",
        Cmd::new("nsenter-helper.sh", &[&missing]).env("SHELL", "/bin/true"),
        1,
        "cannot read",
    );
    fail(
        &sb,
        &w,
        g,
        "binary garbage",
        Cmd::new("nsenter-helper.sh", &[&garbage]).env("SHELL", "/bin/true"),
        1,
        "is not KEY=VALUE",
    );
    fail(
        &sb,
        &w,
        g,
        "huge line without '='",
        Cmd::new("nsenter-helper.sh", &[&huge_line]).env("SHELL", "/bin/true"),
        1,
        "line 1 is not KEY=VALUE",
    );
    fail(&sb, &w, g, "missing file", Cmd::new("start_in_ns.sh", &["veth21", &missing, &hs, "true"]), 1, "cannot read");
    fail(
        &sb,
        &w,
        g,
        "no SERVER_IP",
        Cmd::new("start_in_ns.sh", &["veth21", &no_ip, &hs, "true"]),
        1,
        "defines no SERVER_IP",
    );
    fail(&sb, &w, g, "folder missing", Cmd::new("mk_nsenter.sh", &[&hs, "/nonexistent/exports.sh"]), 1, "cannot write");
    if let Some(user) = plain_user(g) {
        fail(&sb, &w, g, "unreadable file", ns_exec(&unreadable).user(user), 125, "Permission denied (EACCES)");
        fail(&sb, &w, g, "unreadable file", Cmd::new("nsenter-helper.sh", &[&unreadable]).user(user), 1, "cannot read");
    }
    // nsenter-helper.sh's message for garbage is one printable line, the line shortened.
    verdict(g, "nsenter-helper.sh: garbage is shown printable and short", || {
        let r = Cmd::new("nsenter-helper.sh", &[&huge_line]).env("SHELL", "/bin/true").run(&sb);
        crate::check_failure(&r, "nsenter-helper.sh", 1, "is not KEY=VALUE");
        assert!(r.stderr.len() < 400, "{} bytes", r.stderr.len());
        let r = Cmd::new("nsenter-helper.sh", &[&garbage]).env("SHELL", "/bin/true").run(&sb);
        assert!(r.stderr.trim_end().chars().all(|c| !c.is_control()), "control characters: {:?}", r.stderr);
        crate::shorten(r.stderr.trim_end(), 120)
    });
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    stop(&sb, h);
}

fn flags() {
    let g = "input/flags";
    let sb = sandbox!(g);
    let h = holder(&sb);
    let hs = h.to_string();
    let w = Watch::default().ns("holder", h).fds(h);
    let unknown = "unexpected argument '--bogus'";
    fail(&sb, &w, g, "unknown flag", Cmd::new("veth-pair", &["v0", "--bogus"]), 2, unknown);
    fail(&sb, &w, g, "unknown flag", Cmd::new("br-attach", &["--bogus"]), 2, unknown);
    fail(&sb, &w, g, "unknown flag", Cmd::new("ns-unshare", &["--bogus"]), 2, unknown);
    fail(&sb, &w, g, "unknown flag", Cmd::new("ns-ls", &["--bogus"]), 2, unknown);
    fail(&sb, &w, g, "unknown flag", Cmd::new("ns-exec", &["--bogus", "-t", &hs]), 125, unknown);
    fail(
        &sb,
        &w,
        g,
        "no name",
        Cmd::new("veth-pair", &[]),
        2,
        "the following required arguments were not provided: <NAME>",
    );
    fail(
        &sb,
        &w,
        g,
        "--delete with --addr",
        Cmd::new("veth-pair", &["v0", "--delete", "--addr", "10.0.0.1/24"]),
        2,
        "cannot be used with",
    );
    fail(&sb, &w, g, "--missing-ok without --delete", Cmd::new("veth-pair", &["v0", "--missing-ok"]), 2, "--delete");
    fail(
        &sb,
        &w,
        g,
        "same name both ends",
        Cmd::new("veth-pair", &["v0", "--peer-name", "v0"]),
        2,
        "both ends would have the same name",
    );
    fail(&sb, &w, g, "MTU out of range", Cmd::new("veth-pair", &["v0", "--mtu", "10"]), 2, "10 is not in 68..=65535");
    fail(&sb, &w, g, "bad MAC", Cmd::new("veth-pair", &["v0", "--mac", "zz"]), 2, "invalid MAC address 'zz'");
    fail(
        &sb,
        &w,
        g,
        "--json with --print",
        Cmd::new("ns-unshare", &["--json", "--print", "pid:inode"]),
        2,
        "cannot be used with",
    );
    fail(
        &sb,
        &w,
        g,
        "--stop with others",
        Cmd::new("ns-unshare", &["--stop", &hs, "--name", "x"]),
        2,
        "cannot be used with",
    );
    fail(&sb, &w, g, "bad --print", Cmd::new("ns-unshare", &["--print", "inode"]), 2, "invalid value 'inode'");
    fail(&sb, &w, g, "bad --bind-file", Cmd::new("ns-unshare", &["--bind-file", "nocolon"]), 2, "expected SRC:DEST");
    fail(&sb, &w, g, "--exit-with 0", Cmd::new("ns-unshare", &["--exit-with", "0"]), 2, "'0' is not a valid PID");
    fail(
        &sb,
        &w,
        g,
        "--bind over an existing file",
        Cmd::new("ns-unshare", &["--bind", "/etc/hostname"]),
        1,
        "File exists (EEXIST)",
    );
    fail(&sb, &w, g, "--topology with --json", Cmd::new("ns-ls", &["--topology", "--json"]), 2, "cannot be used with");
    fail(&sb, &w, g, "unknown type", Cmd::new("ns-ls", &["-t", "bogus"]), 2, "[possible values: net, user");
    fail(&sb, &w, g, "unknown column", Cmd::new("ns-ls", &["-o", "NS,BOGUS"]), 2, "unknown column 'BOGUS'");
    fail(&sb, &w, g, "PID 0", Cmd::new("ns-ls", &["-p", "0"]), 2, "0 is not in 1..=");
    fail(&sb, &w, g, "nothing to do", Cmd::new("br-attach", &[]), 2, "nothing to do");
    fail(&sb, &w, g, "--addr without --create", Cmd::new("br-attach", &["--addr", "10.0.0.1/24", "x"]), 2, "--create");
    fail(
        &sb,
        &w,
        g,
        "--all with a path",
        Cmd::new("ns-exec", &["-t", "/proc/self/ns/net", "--all", "true"]),
        125,
        "--all needs a PID target",
    );
    fail(
        &sb,
        &w,
        g,
        "--uts with a path",
        Cmd::new("ns-exec", &["-t", "/proc/self/ns/net", "--uts", "true"]),
        125,
        "give a PID",
    );
    fail(&sb, &w, g, "unknown command", Cmd::new("testenv", &["bogus"]), 1, "unknown command 'bogus'");
    fail(
        &sb,
        &w,
        g,
        "missing testenv",
        Cmd::new("testenv", &["exec", "nope", "--", "true"]).env("NSTOOLS_SELFTEST_LABEL", &format!("{}-hub", sb.tag)),
        1,
        "no testenv named 'nope'",
    );
    fail(&sb, &w, g, "usage", Cmd::new("mk_nsenter.sh", &[&hs]), 1, "usage: mk_nsenter.sh PID EXPORTS");
    fail(&sb, &w, g, "usage", Cmd::new("start_in_ns.sh", &["veth21"]), 1, "usage: start_in_ns.sh");
    stop(&sb, h);
}

fn stdin() {
    let g = "input/stdin";
    let sb = sandbox!(g);
    let h = holder(&sb);
    let w = Watch::default().ns("holder", h).fds(h);
    let trailing = format!("no network namespace named '{h} x'");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty stdin", b"".to_vec(), "no target: stdin was empty"),
        ("blank line", b"\n".to_vec(), "no target: stdin was empty"),
        ("PID then garbage lines", format!("{h}\ngarbage\n").into_bytes(), "expected exactly one line"),
        ("PID with trailing garbage", format!("{h} x\n").into_bytes(), &trailing),
        ("no PID", b"not-a-pid\n".to_vec(), "no network namespace named 'not-a-pid'"),
        ("PID 0", b"0\n".to_vec(), "invalid target '0'"),
        ("binary", b"\xff\xfe\x00\x01\n".to_vec(), "it is not text"),
        ("NUL after the PID", format!("{h}\0x\n").into_bytes(), "not a valid namespace name"),
        ("over 4 kB", vec![b'1'; 5000], "expected exactly one line"),
        ("JSON without target", b"{\"x\":1}\n".to_vec(), "the JSON has no \"target\""),
        ("broken JSON", b"{\"pid\": \n".to_vec(), "invalid JSON"),
    ];
    for (what, input, needle) in cases {
        fail(&sb, &w, g, what, Cmd::new("ns-exec", &["true"]).stdin(input), 125, needle);
    }
    stop(&sb, h);
}

fn commands() {
    let g = "input/commands";
    let mut sb = sandbox!(g);
    let h = holder(&sb);
    let hs = h.to_string();
    let w = Watch::default().ns("holder", h).fds(h);
    let dir = sb.workdir("commands");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\necho hi\n").unwrap();
    let bad_interp = dir.join("bad-interpreter");
    std::fs::write(&bad_interp, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&bad_interp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (plain, bad_interp, d) =
        (plain.display().to_string(), bad_interp.display().to_string(), dir.display().to_string());
    fail(
        &sb,
        &w,
        g,
        "not found",
        Cmd::new("ns-exec", &["-t", &hs, "no-such-command-x"]),
        127,
        "'no-such-command-x': command not found",
    );
    fail(
        &sb,
        &w,
        g,
        "not found (path)",
        Cmd::new("ns-exec", &["-t", &hs, "/nonexistent/cmd"]),
        127,
        "command not found",
    );
    fail(&sb, &w, g, "empty command name", Cmd::new("ns-exec", &["-t", &hs, ""]), 127, "command not found");
    fail(&sb, &w, g, "not executable", Cmd::new("ns-exec", &["-t", &hs, &plain]), 126, "Permission denied (EACCES)");
    fail(&sb, &w, g, "a directory", Cmd::new("ns-exec", &["-t", &hs, &d]), 126, "Permission denied (EACCES)");
    fail(&sb, &w, g, "missing interpreter", Cmd::new("ns-exec", &["-t", &hs, &bad_interp]), 126, "interpreter");
    fail(
        &sb,
        &w,
        g,
        "missing working directory",
        Cmd::new("ns-exec", &["-t", &hs, "--wd", "/nonexistent", "true"]),
        125,
        "cannot change directory to /nonexistent",
    );
    fail(&sb, &w, g, "not found, testenv", Cmd::new("testenv", &["exec", "x"]), 1, "usage: testenv exec NAME -- CMD");
    stop(&sb, h);
}

/// Without privilege, and without user namespaces: a clear hint, never a panic.
fn privilege() {
    let g = "input/privilege";
    let mut sb = sandbox!(g);
    let Some(user) = plain_user(g) else { return };
    let anchor = sb.anchor().to_string();
    let w = Watch::default();
    let hint_net = "needs CAP_NET_ADMIN";
    fail(&sb, &w, g, "no privilege", Cmd::new("veth-pair", &["v0"]).user(user), 1, hint_net);
    fail(&sb, &w, g, "no privilege", Cmd::new("br-attach", &["--create"]).user(user), 1, hint_net);
    fail(
        &sb,
        &w,
        g,
        "no privilege",
        Cmd::new("create_bridge.sh", &["selftest0", "10.53.57.11", "fd00::5357:5f0b"]).user(user),
        1,
        hint_net,
    );
    fail(&sb, &w, g, "no privilege", Cmd::new("ns-unshare", &[]).user(user), 1, "add --map-root-user");
    fail(
        &sb,
        &w,
        g,
        "no privilege",
        Cmd::new("ns-unshare", &["--map-root-user", "--bind", "/run/netns/x"]).user(user),
        1,
        "Permission denied (EACCES)",
    );
    fail(
        &sb,
        &w,
        g,
        "another user's process",
        Cmd::new("ns-exec", &["-t", &anchor, "true"]).user(user),
        125,
        "belongs to another user",
    );
    fail(
        &sb,
        &w,
        g,
        "another user's process",
        Cmd::new("veth-pair", &["v0", "--netns", &anchor]).user(user),
        1,
        "belongs to another user",
    );
    fail(
        &sb,
        &w,
        g,
        "another user's process",
        Cmd::new("ns-ls", &["-p", &anchor]).user(user),
        1,
        "Permission denied (EACCES)",
    );
    fail(
        &sb,
        &w,
        g,
        "another user's holder",
        Cmd::new("ns-unshare", &["--stop", &anchor]).user(user),
        1,
        "belongs to another user",
    );
    // No user namespaces: inside one whose user.max_user_namespaces is 0, without capabilities.
    let no_userns: &[&str] = &[
        "unshare",
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        "echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --inh-caps=-all --bounding-set=-all \"$0\" \"$@\"",
    ];
    let disabled = "user namespaces are disabled";
    fail(
        &sb,
        &w,
        g,
        "no user namespaces",
        Cmd::new("ns-unshare", &["--map-root-user"]).user(user).wrap(no_userns),
        1,
        disabled,
    );
    fail(
        &sb,
        &w,
        g,
        "no user namespaces",
        Cmd::new("ns-unshare", &[]).user(user).wrap(no_userns),
        1,
        "add --map-root-user",
    );
    fail(&sb, &w, g, "no user namespaces", Cmd::new("veth-pair", &["v0"]).user(user).wrap(no_userns), 1, hint_net);
}
