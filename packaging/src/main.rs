//! nstools-gen: write the man pages and the bash, zsh and fish completions of the five tools,
//! generated from their clap definitions (so they always match `--help`).
//!
//!     nstools-gen OUTDIR
//!
//! writes `OUTDIR/man/man1/TOOL.1`, `OUTDIR/completions/bash/TOOL`,
//! `OUTDIR/completions/zsh/_TOOL` and `OUTDIR/completions/fish/TOOL.fish`.
//! `scripts/install` runs it and installs the results.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

/// The tools, with their clap definitions.
fn tools() -> Vec<clap::Command> {
    vec![ns_unshare::command(), veth_pair::command(), br_attach::command(), ns_exec::command(), ns_ls::command()]
}

/// Escape text for roff: backslashes, and lines that would start with a control character.
fn roff_text(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e");
            if l.starts_with('.') || l.starts_with('\'') { format!("\\&{l}") } else { l }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `after_long_help` text split at its headings ("Examples:", "Exit status:"...) into man
/// page sections.
fn extra_sections(cmd: &clap::Command) -> Vec<(String, String)> {
    let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else { return Vec::new() };
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.to_string().lines() {
        let heading = (!line.starts_with(' ') && line.ends_with(':') && !line.is_empty())
            .then(|| line.trim_end_matches(':').to_owned())
            .or_else(|| line.split_once(" (").filter(|_| line.starts_with("Columns")).map(|(h, _)| h.to_owned()));
        match heading {
            Some(h) => sections.push((h.to_uppercase(), String::new())),
            None => match sections.last_mut() {
                Some((_, body)) => {
                    body.push_str(line);
                    body.push('\n');
                }
                None => sections.push(("NOTES".into(), format!("{line}\n"))),
            },
        }
    }
    sections
}

fn man_page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let name = cmd.get_name().to_owned();
    let bare = cmd.clone().after_help(None::<&str>).after_long_help(None::<&str>);
    let man = clap_mangen::Man::new(bare).manual("nstools").source(format!("nstools {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    for (heading, body) in extra_sections(cmd) {
        writeln!(out, ".SH \"{heading}\"\n.nf\n{}\n.fi", roff_text(body.trim_end()))?;
    }
    let others: Vec<String> = tools()
        .iter()
        .map(|c| c.get_name().to_owned())
        .filter(|n| *n != name)
        .map(|n| format!("\\fB{n}\\fR(1)"))
        .collect();
    writeln!(
        out,
        ".SH \"SEE ALSO\"\n{}, \\fBip\\fR(8), \\fBunshare\\fR(1), \\fBnsenter\\fR(1), \\fBlsns\\fR(8)",
        others.join(", ")
    )?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn generate(out: &Path) -> Result<(), String> {
    for cmd in tools() {
        let name = cmd.get_name().to_owned();
        let page = man_page(&cmd).map_err(|e| format!("cannot render the man page of {name}: {e}"))?;
        write(&out.join(format!("man/man1/{name}.1")), &page)?;
        for (shell, file) in
            [(Shell::Bash, name.clone()), (Shell::Zsh, format!("_{name}")), (Shell::Fish, format!("{name}.fish"))]
        {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut buf);
            write(&out.join(format!("completions/{shell}/{file}")), &buf)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: nstools-gen OUTDIR (writes OUTDIR/man/man1/*.1 and OUTDIR/completions/{{bash,zsh,fish}}/*)");
        return ExitCode::from(2);
    };
    match generate(&PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nstools-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
