//! The command line that makes a holder, defined once: `ns-unshare` parses its arguments with
//! it, and [`Identity`](super::Identity) reads what a running holder made from its command line
//! with the same definition (so that the two cannot drift apart).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use clap::{Args, ValueEnum};

use super::HolderSpec;
use crate::TargetSpec;
use crate::vocab::NsType;

/// ns-unshare's arguments (its `--help` comes from these).
#[derive(Debug, Args)]
pub struct HolderArgs {
    /// A new network namespace: always made (accepted for util-linux unshare compatibility)
    #[arg(short, long)]
    pub net: bool,

    /// Also a new user namespace (created first: it owns the others)
    #[arg(short = 'U', long)]
    pub user: bool,

    /// Map the caller to root in a new user namespace (implies --user)
    #[arg(short = 'r', long)]
    pub map_root_user: bool,

    /// Also a new mount namespace (private propagation, a fresh /sys)
    #[arg(short, long)]
    pub mount: bool,

    /// Also a new UTS namespace
    #[arg(short, long)]
    pub uts: bool,

    /// Hostname inside (implies --uts)
    #[arg(long, value_name = "NAME", value_parser = parse_hostname)]
    pub hostname: Option<String>,

    /// Also a new IPC namespace
    #[arg(short, long)]
    pub ipc: bool,

    /// Also a new PID namespace, the holder as its PID 1 (with --mount: a fresh /proc)
    #[arg(short, long)]
    pub pid: bool,

    /// Bind SRC over DEST in the new mount namespace (repeatable; implies --mount)
    #[arg(long = "bind-file", value_name = "SRC:DEST", value_parser = parse_bind_file)]
    pub bind_files: Vec<(PathBuf, PathBuf)>,

    /// Leave the loopback interface down
    #[arg(long)]
    pub no_lo: bool,

    /// A label for the namespace, shown by ns-ls
    #[arg(long, value_name = "LABEL")]
    pub name: Option<String>,

    /// Exit when this process exits (no polling: a pidfd): a PID, PID:INODE, or a holder's label
    #[arg(long, value_name = "PID", value_parser = TargetSpec::from_str)]
    pub exit_with: Option<TargetSpec>,

    /// Also persist the network namespace at PATH (a bind mount, e.g. /run/netns/NAME);
    /// remove it with 'umount PATH; rm PATH' (or 'ip netns delete NAME')
    #[arg(long, value_name = "PATH")]
    pub bind: Option<PathBuf>,

    /// Print a JSON object instead of the PID
    #[arg(short = 'J', long, conflicts_with = "print")]
    pub json: bool,

    /// What to print
    #[arg(long, value_enum, default_value_t = Print::Pid)]
    pub print: Print,

    /// Instead of creating: stop these holders (SIGTERM) and wait until they are gone; a PID,
    /// PID:INODE, or a holder's label
    #[arg(long, value_name = "PID", num_args = 1.., value_parser = TargetSpec::from_str, exclusive = true)]
    pub stop: Vec<TargetSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Print {
    /// The holder's PID
    Pid,
    /// PID:INODE, a target that survives PID reuse (ns-exec, veth-pair, nsenter 2.42+)
    #[value(name = "pid:inode")]
    PidInode,
}

fn parse_hostname(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !s.starts_with('-');
    ok.then(|| s.to_owned()).ok_or_else(|| "a hostname is 1-64 letters, digits, '-', '_' or '.'".to_owned())
}

fn parse_bind_file(s: &str) -> Result<(PathBuf, PathBuf), String> {
    match s.split_once(':') {
        Some((src, dest)) if !src.is_empty() && !dest.is_empty() => Ok((src.into(), dest.into())),
        _ => Err("expected SRC:DEST, e.g. /tmp/env/resolv.conf:/etc/resolv.conf".to_owned()),
    }
}

impl HolderArgs {
    /// What to create (no `--exit-with` process yet: the caller opens it).
    pub fn spec(&self) -> HolderSpec {
        HolderSpec {
            user: self.user || self.map_root_user,
            map_root: self.map_root_user,
            mount: self.mount || !self.bind_files.is_empty(),
            uts: self.uts || self.hostname.is_some(),
            hostname: self.hostname.clone(),
            ipc: self.ipc,
            pid: self.pid,
            lo_up: !self.no_lo,
            exit_with: None,
            bind: self.bind.clone(),
            bind_files: self.bind_files.clone(),
        }
    }

    /// The arguments of a holder's command line (`argv[0]` first), parsed by clap; `None` if
    /// they are not ns-unshare's (another version's, say).
    pub fn of_cmdline(args: &[String]) -> Option<HolderArgs> {
        let matches = definition().clone().try_get_matches_from(args).ok()?;
        <HolderArgs as clap::FromArgMatches>::from_arg_matches(&matches).ok()
    }
}

/// The definition above as a clap command, built once.
fn definition() -> &'static clap::Command {
    static COMMAND: OnceLock<clap::Command> = OnceLock::new();
    COMMAND.get_or_init(|| {
        let mut command = HolderArgs::augment_args(clap::Command::new("ns-unshare"));
        command.build();
        command
    })
}

/// The namespace types the flags of [`HolderArgs`] ask for, by argument id (the field's name):
/// what [`HolderArgs::spec`] makes of them (a unit test holds the two together).
const MAKES: [(&str, NsType); 8] = [
    ("user", NsType::User),
    ("map_root_user", NsType::User),
    ("mount", NsType::Mnt),
    ("bind_files", NsType::Mnt),
    ("uts", NsType::Uts),
    ("hostname", NsType::Uts),
    ("ipc", NsType::Ipc),
    ("pid", NsType::Pid),
];

/// A holder's command line, read quickly: `ns-ls` reads every holder's, and a clap parse costs
/// about 0.1 ms. Each word is matched against the definition's names (long and short) and
/// whether they take a value, so a value is never taken for a flag.
#[derive(Debug, Default)]
pub(super) struct Cmdline {
    /// The ids of the arguments given, with their values.
    given: Vec<(&'static str, Option<String>)>,
}

impl Cmdline {
    pub fn read(args: &[String]) -> Cmdline {
        let defs: Vec<&'static clap::Arg> = definition().get_arguments().collect();
        let takes = |arg: &clap::Arg| arg.get_action().takes_values();
        let mut given = Vec::new();
        let mut words = args.iter().skip(1);
        while let Some(word) = words.next() {
            if word == "--" {
                break;
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, inline) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v.to_owned())));
                let Some(arg) = defs.iter().find(|a| a.get_long() == Some(name)) else { continue };
                let value = if takes(arg) { inline.or_else(|| words.next().cloned()) } else { None };
                given.push((arg.get_id().as_str(), value));
            } else if let Some(shorts) = word.strip_prefix('-') {
                for (i, c) in shorts.char_indices() {
                    let Some(arg) = defs.iter().find(|a| a.get_short() == Some(c)) else { continue };
                    if takes(arg) {
                        let rest = &shorts[i + c.len_utf8()..];
                        let value = if rest.is_empty() { words.next().cloned() } else { Some(rest.to_owned()) };
                        given.push((arg.get_id().as_str(), value));
                        break;
                    }
                    given.push((arg.get_id().as_str(), None));
                }
            }
        }
        Cmdline { given }
    }

    /// The value of the argument `id` (the last one given).
    pub fn value(&self, id: &str) -> Option<&str> {
        self.given.iter().rev().find(|(i, _)| *i == id).and_then(|(_, v)| v.as_deref())
    }

    /// The namespace types the holder made: the network namespace, and what its flags add.
    pub fn made(&self) -> Vec<NsType> {
        let mut made = vec![NsType::Net];
        for (id, kind) in MAKES {
            if self.given.iter().any(|(i, _)| *i == id) && !made.contains(&kind) {
                made.push(kind);
            }
        }
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of the definition, alone: the quick reading makes of it what clap's
    /// parse and [`HolderArgs::spec`] make (a namespace flag added to one but not to `MAKES`
    /// fails here).
    #[test]
    fn the_quick_reading_agrees_with_the_definition() {
        for arg in definition().get_arguments() {
            let Some(long) = arg.get_long().filter(|_| !["help", "version"].contains(&arg.get_id().as_str())) else {
                continue;
            };
            let mut argv = vec!["ns-unshare".to_owned(), format!("--{long}")];
            if arg.get_action().takes_values() {
                let possible = arg.get_possible_values();
                let sample = match arg.get_id().as_str() {
                    _ if !possible.is_empty() => possible[0].get_name().to_owned(),
                    "bind_files" => "a:b".to_owned(),
                    "exit_with" | "stop" => "1".to_owned(),
                    _ => "x".to_owned(),
                };
                argv.push(sample);
            }
            let parsed = HolderArgs::of_cmdline(&argv).unwrap_or_else(|| panic!("{argv:?} does not parse"));
            let mut want = parsed.spec().types();
            let mut got = Cmdline::read(&argv).made();
            want.sort_by_key(|t| t.as_str());
            got.sort_by_key(|t| t.as_str());
            assert_eq!(got, want, "{argv:?}");
        }
    }
}
