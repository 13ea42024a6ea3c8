//! Security: exports values are data, generated nsenter.sh quotes everything, PID:INODE refuses
//! a recycled PID, setuid is refused, and a plain user cannot touch the machine's own
//! interfaces through any tool.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use nstools_tests::{netns_of, plain_user, sandbox, wait_until};

use crate::{Cmd, Group, Snapshot, Watch, assert_unchanged, check_failure, count_runs, shorten, verdict};

pub const GROUPS: &[Group] = &[
    ("security/exports-are-data", exports_are_data),
    ("security/nsenter-sh-quoting", nsenter_sh_quoting),
    ("security/pid-reuse", pid_reuse),
    ("security/setuid", setuid),
    ("security/rootless-containment", rootless_containment),
];

/// Values a careless or hostile exports file may hold; `@P` is replaced by a file that must
/// never be created.
const NASTY: [&str; 9] = [
    "$(touch @P)",
    "`touch @P`",
    "x; touch @P",
    "x | touch @P",
    "x && touch @P",
    "'; touch @P; '",
    "\"; touch @P; \"",
    "${IFS}$(touch${IFS}@P)",
    "* ? [a] ~ \\ \\n $HOME",
];

fn exports_are_data() {
    let g = "security/exports-are-data";
    let mut sb = sandbox!(g);
    let dir = sb.workdir("data");
    let pwned = dir.join("pwned").display().to_string();
    let values: Vec<String> = NASTY.iter().map(|v| v.replace("@P", &pwned)).collect();
    let mut text =
        String::from("NETBIOSNAME=$(touch @P)\nENVNAME=`touch @P`\nSERVER_IP=10.53.57.21\n").replace("@P", &pwned);
    for (i, v) in values.iter().enumerate() {
        text.push_str(&format!("V{i}={v}\n"));
    }
    let exports = dir.join("exports.sh");
    std::fs::write(&exports, &text).unwrap();
    let e = exports.display().to_string();
    let env = sb.spawn_netns().to_string();
    let dump = "for i in 0 1 2 3 4 5 6 7 8; do eval \"printf '%s\\n' \\\"\\$V$i\\\"\"; done";
    verdict(g, "ns-exec --env-file: every value reaches the command as written", || {
        let r = Cmd::new("ns-exec", &["-t", &env, "--env-file", &e, "sh", "-c", dump]).run(&sb);
        let got: Vec<&str> = r.ok().lines().collect();
        assert_eq!(got, values.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!Path::new(&pwned).exists(), "a value was evaluated");
        format!("{} values with $( ), backticks, ;, |, &&, quotes, globs: literal", values.len())
    });
    verdict(g, "nsenter-helper.sh: every value exported and printed as written", || {
        let r = Cmd::new("nsenter-helper.sh", &[&e]).env("SHELL", "/bin/sh").stdin(dump.as_bytes().to_vec()).run(&sb);
        let text = r.ok();
        for (i, v) in values.iter().enumerate() {
            assert!(text.contains(&format!("V{i}={v}\n")), "V{i} printed as {text}");
            assert!(text.contains(&format!("\n{v}\n")), "V{i} exported as {text}");
        }
        assert!(!Path::new(&pwned).exists(), "a value was evaluated");
        "printed and exported literally".to_owned()
    });
    verdict(g, "start_in_ns.sh: the banner shows the values as written", || {
        let cmd = Cmd::new("start_in_ns.sh", &["veth21", &e, &env, "true"]).wrap(&["unshare", "--net"]);
        let r = cmd.run(&sb);
        let text = r.ok();
        let banner = format!("Created namespace for $(touch {pwned}) (`touch {pwned}`) PID ");
        assert!(text.contains(&banner), "{text}");
        assert!(!Path::new(&pwned).exists(), "a value was evaluated");
        shorten(text.lines().nth(1).unwrap_or(""), 100)
    });
}

fn nsenter_sh_quoting() {
    let g = "security/nsenter-sh-quoting";
    let mut sb = sandbox!(g);
    let work = sb.workdir("quote");
    let pwned = work.join("pwned");
    let odd = format!("it's a \"dir\" $(touch {p}) `touch {p}`; & | < > * ? ~ \\ x", p = pwned.display());
    let dir = work.join(&odd);
    std::fs::create_dir_all(&dir).unwrap();
    let exports = dir.join("exports.sh");
    std::fs::write(&exports, "NETBIOSNAME=ODD\n").unwrap();
    let env = sb.spawn_netns();
    verdict(g, "mk_nsenter.sh: nsenter.sh quotes every path, and runs", || {
        let r = Cmd::new("mk_nsenter.sh", &[&env.to_string(), &exports.display().to_string()]).run(&sb);
        let path = r.ok().trim().to_owned();
        assert_eq!(path, dir.join("nsenter.sh").display().to_string());
        let script = std::fs::read_to_string(&path).unwrap();
        let exec = script.lines().find(|l| l.starts_with("exec ")).unwrap();
        // Every argument but the target is in single quotes; the target is PID:INODE.
        assert!(exec.contains(&format!(" -t {env}:{} ", netns_of(env))) && exec.contains(" -- '"), "{exec}");
        assert!(exec.contains("it'\\''s a \"dir\" $(touch "), "{exec}");
        sb.must(&format!("sh -n {}", shell_quote(&path)));
        let r = Cmd::new(&path, &[]).env("SHELL", "/bin/true").run(&sb);
        assert!(r.ok().contains("Entered ODD namespace"), "{:?}", r.stdout);
        assert!(!pwned.exists(), "a path was evaluated");
        shorten(exec, 110)
    });
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A real PID reuse: in a fresh PID namespace, `ns_last_pid` makes the next process get the
/// PID of one that exited; its `PID:INODE` target must then be refused by every tool.
fn pid_reuse() {
    let g = "security/pid-reuse";
    let mut sb = sandbox!(g);
    let script = r#"
        set -u
        inode() { stat -L -c %i "/proc/$1/ns/net"; }
        mine=$(inode $$)
        unshare --net sleep 1000 & a=$!
        while [ "$(inode $a 2>/dev/null)" = "$mine" ] || [ -z "$(inode $a 2>/dev/null)" ]; do :; done
        ino=$(inode $a)
        ns-exec -t "$a:$ino" true || { echo "SETUP the live target was refused"; exit 1; }
        kill $a; wait $a
        echo $((a - 1)) > /proc/sys/kernel/ns_last_pid
        unshare --net sleep 1000 & b=$!
        [ "$b" = "$a" ] || { echo "SETUP PID $a was not reused (got $b)"; exit 1; }
        while [ "$(inode $b 2>/dev/null)" = "$mine" ] || [ -z "$(inode $b 2>/dev/null)" ]; do :; done
        echo "REUSED $a $ino $(inode $b)"
        t="$a:$ino"
        for cmd in "ns-exec -t $t true" "veth-pair v0 --netns $t" "veth-pair v0 --peer-netns $t" \
                   "br-attach --netns $t --create" "ns-unshare --stop $t"; do
            err=$($cmd 2>&1 >/dev/null); rc=$?
            echo "RESULT $rc $err"
        done
        kill $b; wait $b
        exit 0
    "#;
    let mut results = Vec::new();
    verdict(g, "PID:INODE targets refuse a recycled PID (real reuse through ns_last_pid)", || {
        let out = sb.must(&format!("unshare --pid --fork --mount-proc sh -c {}", shell_quote(script)));
        count_runs(7);
        assert!(out.contains("REUSED "), "{out}");
        for l in out.lines().filter_map(|l| l.strip_prefix("RESULT ")) {
            let (rc, err) = l.split_once(' ').unwrap();
            assert_ne!(rc, "0", "a recycled PID was accepted: {l}");
            assert!(err.contains("is no longer in network namespace") && !err.contains('\n'), "{l}");
            results.push(rc.to_owned());
        }
        assert_eq!(results.len(), 5, "{out}");
        format!("5 tools refused PID {} (exit {})", out.split_whitespace().nth(1).unwrap_or("?"), results.join("/"))
    });
    // Between look-up and use the tools hold the process (pidfd) and the namespace (nsfs fd).
    verdict(g, "holders and waiting tools hold a pidfd and the namespace, not a PID", || {
        let watched = sb.spawn(&["sleep", "infinity"], "sleep");
        let env = sb.spawn_netns();
        let h = Cmd::new("ns-unshare", &["--exit-with", &watched.to_string()]).run(&sb).ok().trim().to_owned();
        let fds = |pid: &str| nstools_tests::open_fds(pid.parse().unwrap_or(0));
        assert!(fds(&h).iter().any(|f| f == "anon_inode:[pidfd]"), "holder: {:?}", fds(&h));
        let mut waiting = sb
            .tool("br-attach")
            .args(["--netns", &env.to_string(), "--create", "--timeout", "30", "never0"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        count_runs(2);
        let w = waiting.id().to_string();
        let want = format!("net:[{}]", netns_of(env));
        assert!(wait_until(Duration::from_secs(5), || fds(&w).contains(&want)), "br-attach: {:?}", fds(&w));
        let _ = waiting.kill();
        let _ = waiting.wait();
        Cmd::new("ns-unshare", &["--stop", &h]).run(&sb).ok();
        "ns-unshare --exit-with holds a pidfd; br-attach --netns PID holds the namespace's nsfs fd".to_owned()
    });
}

fn setuid() {
    let g = "security/setuid";
    let mut sb = sandbox!(g);
    let Some(user) = plain_user(g) else { return };
    let dir = sb.workdir("setuid");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let w = Watch::default();
    for (tool, mode, code) in [
        ("ns-unshare", 0o4755, 1),
        ("veth-pair", 0o4755, 1),
        ("br-attach", 0o4755, 1),
        ("ns-exec", 0o4755, 125),
        ("ns-ls", 0o4755, 1),
        ("ns-unshare", 0o2755, 1),
    ] {
        let copy = dir.join(format!("{tool}-{mode:o}"));
        std::fs::copy(nstools_tests::bin(tool), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(mode)).unwrap();
        let what = if mode == 0o4755 { "set-user-ID root" } else { "set-group-ID root" };
        verdict(g, &format!("{tool}: {what} is refused"), || {
            let before = Snapshot::take(&sb, &w);
            let r = Cmd::new(&copy.display().to_string(), &["--help"]).user(user).run(&sb);
            let line = check_failure(&r, tool, code, "refusing to run set-user-ID or set-group-ID");
            assert!(line.starts_with(&format!("{tool}: ")), "{line}");
            assert_unchanged(&sb, &w, &before, Duration::ZERO);
            shorten(line, 110)
        });
    }
    // Nothing needs setuid: a plain user builds and enters a namespace rootless.
    verdict(g, "no tool needs setuid: rootless use works as a plain user", || {
        for tool in ["ns-unshare", "veth-pair", "br-attach", "ns-exec", "ns-ls"] {
            let mode = std::fs::metadata(nstools_tests::bin(tool)).unwrap().permissions().mode();
            assert_eq!(mode & 0o6000, 0, "{tool} is installed set-ID");
        }
        let r = Cmd::new("sh", &["-c", "ns-unshare --map-root-user --exit-with $$ | ns-exec sh -c 'veth-pair v0 --addr 10.0.0.1/24 && ip -br addr show v0'"])
            .user(user)
            .run(&sb);
        assert!(r.ok().contains("10.0.0.1/24"), "{:?}", r.stdout);
        "ns-unshare --map-root-user | ns-exec veth-pair: works".to_owned()
    });
}

/// A plain user, in the machine's own network namespace, tries every tool against it; each
/// attempt fails with a permission error and a hint, and the namespace is unchanged. (Safe
/// whatever the tools do: an unprivileged user cannot change it.)
fn rootless_containment() {
    let g = "security/rootless-containment";
    let sb = sandbox!(g);
    let Some(user) = plain_user(g) else { return };
    // This process's main thread never left the namespace the tests were started in.
    let me = std::process::id();
    let w = Watch::default().ns("root", me);
    let root_ns = format!("--net=/proc/{me}/ns/net");
    let attempt = |what: &str, script: &str, code: i32, needle: &str| {
        let case = format!("plain user: {what}");
        verdict(g, &case, || {
            let before = Snapshot::take(&sb, &w);
            let full = format!("exec 3</proc/self/ns/net; {script}");
            let r = Cmd::new(
                "nsenter",
                &[&root_ns, "setpriv", "--reuid", user, "--regid", user, "--init-groups", "sh", "-c", &full],
            )
            .env("HOME", "/tmp")
            .run(&sb);
            let line = check_failure(&r, "nsenter", code, needle);
            assert_unchanged(&sb, &w, &before, Duration::from_secs(2));
            format!("exit {code}, root namespace unchanged: {}", shorten(line, 120))
        });
    };
    let h = "h=$(ns-unshare --map-root-user --exit-with $$) &&";
    let eperm = "Operation not permitted (EPERM)";
    attempt("veth-pair in the root namespace", "exec veth-pair rel0", 1, eperm);
    attempt("br-attach --create in the root namespace", "exec br-attach --create --bridge relbr0", 1, eperm);
    attempt(
        "create_bridge.sh in the root namespace",
        &format!("exec {} relbr0 10.99.0.1 fd99::1", crate::program_path("create_bridge.sh")),
        1,
        eperm,
    );
    // The root namespace is already the user's own: ns-exec enters nothing (as nsenter skips
    // its own namespaces), and what runs there has no more privilege than before.
    attempt(
        "ns-exec into the root namespace, veth-pair there",
        "exec ns-exec -t /proc/self/fd/3 veth-pair rel0",
        1,
        eperm,
    );
    attempt("ns-unshare without a user namespace", "exec ns-unshare", 1, eperm);
    attempt(
        "veth-pair from its own user namespace, peer into the root namespace",
        &format!("{h} exec ns-exec -t $h veth-pair rel0 --peer-netns /proc/self/fd/3"),
        1,
        eperm,
    );
    attempt(
        "veth-pair from its own user namespace, end in the root namespace",
        &format!("{h} exec ns-exec -t $h veth-pair rel0 --netns /proc/self/fd/3"),
        1,
        eperm,
    );
    attempt(
        "br-attach from its own user namespace into the root namespace",
        &format!("{h} exec ns-exec -t $h br-attach --netns /proc/self/fd/3 --create --bridge relbr0"),
        1,
        eperm,
    );
    attempt(
        "ns-exec from its own user namespace back into the root namespace",
        &format!("{h} exec ns-exec -t $h ns-exec -t /proc/self/fd/3 true"),
        125,
        eperm,
    );
    attempt(
        "ns-unshare --bind of its namespace over a root-owned path",
        "exec ns-unshare --map-root-user --bind /run/netns/rel0",
        1,
        "Permission denied (EACCES)",
    );
    attempt("veth-pair --delete in the root namespace", "exec veth-pair --delete lo", 1, "not a veth");
}
