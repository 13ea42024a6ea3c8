//! Packaging: man pages and completions generated from the clap definitions mention every flag;
//! every --help has examples (Samba and ad hoc) and the exit status; --version; scripts/install.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::path::Path;
use std::process::Command;

use nstools_tests::{Run, bin, bin_dir, workspace};

fn tools() -> Vec<clap::Command> {
    vec![ns_unshare::command(), veth_pair::command(), br_attach::command(), ns_exec::command(), ns_ls::command()]
}

/// Every long flag of a tool (`--help` and `--version` included).
fn long_flags(cmd: &clap::Command) -> Vec<String> {
    let mut cmd = cmd.clone();
    cmd.build();
    cmd.get_arguments().filter_map(|a| a.get_long().map(str::to_owned)).collect()
}

fn generate(out: &Path) {
    let generator = bin_dir().join("nstools-gen");
    assert!(generator.exists(), "{} is missing: cargo build --release (scripts/test does)", generator.display());
    let r = Run::of(Command::new(generator).arg(out).output().unwrap(), "nstools-gen".into());
    r.ok();
}

#[test]
fn man_pages_and_completions_mention_every_flag() {
    let out = std::env::temp_dir().join(format!("nstools-gen-{}", std::process::id()));
    generate(&out);
    for cmd in tools() {
        let name = cmd.get_name().to_owned();
        let flags = long_flags(&cmd);
        assert!(flags.len() >= 5, "{name}: {flags:?}");
        let man = std::fs::read_to_string(out.join(format!("man/man1/{name}.1"))).unwrap().replace("\\-", "-");
        for section in [
            ".TH",
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH \"EXAMPLES\"",
            ".SH \"EXIT STATUS\"",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(man.contains(section), "{name}.1 lacks {section}");
        }
        let bash = std::fs::read_to_string(out.join(format!("completions/bash/{name}"))).unwrap();
        let zsh = std::fs::read_to_string(out.join(format!("completions/zsh/_{name}"))).unwrap();
        let fish = std::fs::read_to_string(out.join(format!("completions/fish/{name}.fish"))).unwrap();
        for flag in &flags {
            assert!(man.contains(&format!("--{flag}")), "{name}.1 does not mention --{flag}");
            assert!(bash.contains(&format!("--{flag}")), "bash completion of {name} lacks --{flag}");
            assert!(zsh.contains(&format!("--{flag}")), "zsh completion of {name} lacks --{flag}");
            assert!(fish.contains(&format!("-l {flag}")), "fish completion of {name} lacks --{flag}");
        }
        // The bash completion is valid bash.
        let check = Command::new("bash").arg("-n").arg(out.join(format!("completions/bash/{name}"))).status().unwrap();
        assert!(check.success(), "bash -n on {name}'s completion");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn help_has_samba_and_ad_hoc_examples_and_exit_status() {
    for cmd in tools() {
        let name = cmd.get_name().to_owned();
        let out = Command::new(bin(&name)).arg("--help").output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        let examples = help.split("Examples:").nth(1).unwrap_or_else(|| panic!("{name} --help has no Examples"));
        assert!(examples.contains("Samba") || examples.contains("samba"), "{name}: a Samba example");
        assert!(examples.contains("Ad hoc") || examples.contains("ad hoc"), "{name}: an ad-hoc example");
        assert!(help.contains("Exit status:"), "{name}: the exit status is documented");
        let version = Command::new(bin(&name)).arg("--version").output().unwrap();
        assert_eq!(String::from_utf8(version.stdout).unwrap(), format!("{name} {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn install_puts_tools_scripts_man_pages_and_completions_in_place() {
    let stage = std::env::temp_dir().join(format!("nstools-install-{}", std::process::id()));
    let out = Command::new(workspace().join("scripts/install")).arg("/usr").env("DESTDIR", &stage).output().unwrap();
    Run::of(out, "install".into()).ok();
    let root = stage.join("usr");
    for cmd in tools() {
        let name = cmd.get_name().to_owned();
        for path in [
            format!("bin/{name}"),
            format!("share/man/man1/{name}.1"),
            format!("share/bash-completion/completions/{name}"),
            format!("share/zsh/site-functions/_{name}"),
            format!("share/fish/vendor_completions.d/{name}.fish"),
        ] {
            assert!(root.join(&path).exists(), "{path} not installed");
        }
        let v = Command::new(root.join(format!("bin/{name}"))).arg("--version").output().unwrap();
        assert!(v.status.success());
        if cfg!(target_env = "gnu") && std::env::var_os("NSTOOLS_STATIC").is_none_or(|v| v != "0") {
            // Linked statically: no program interpreter (the dynamic loader) to run at each start.
            let elf = std::fs::read(root.join(format!("bin/{name}"))).unwrap();
            assert!(!has_interpreter(&elf), "bin/{name} is dynamically linked");
        }
    }
    for script in [
        "start_in_ns.sh",
        "create_bridge.sh",
        "add_bridge_iface.sh",
        "mk_nsenter.sh",
        "nsenter-helper.sh",
        "nstools-common.sh",
        "testenv",
    ] {
        assert!(root.join("bin").join(script).exists(), "{script} not on PATH");
    }
    assert!(root.join("share/nstools/selftest-ns/start_in_ns.sh").exists());
    // The installed testenv finds the installed tools.
    let usage = Command::new(root.join("bin/testenv")).arg("help").output().unwrap();
    assert!(String::from_utf8_lossy(&usage.stdout).contains("testenv COMMAND"));
    std::fs::remove_dir_all(&stage).unwrap();
    let bad = Command::new(workspace().join("scripts/install")).arg("relative/path").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// Whether a 64-bit little-endian ELF file names a program interpreter (a `PT_INTERP` program
/// header): dynamically linked executables do, static ones (static-pie included) do not.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    assert!(elf.starts_with(b"\x7fELF\x02\x01"), "not a 64-bit little-endian ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == PT_INTERP
    })
}
