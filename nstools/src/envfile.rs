//! Samba's exports file: `KEY=VALUE` lines, read as data and never evaluated by a shell.
//!
//! Rules: empty lines and lines starting with `#` are skipped; an optional `export ` prefix is
//! accepted; KEY is `[A-Za-z_][A-Za-z0-9_]*`; VALUE is everything after the first `=`, taken
//! literally (quotes, `$`, backticks and all). A line that breaks a rule is an error naming it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::ifname::quote;

/// Longest value the kernel passes to a program (`MAX_ARG_STRLEN`, with room for `KEY=`).
pub const MAX_VALUE: usize = 128 * 1024 - 256;

/// Parse the contents of an exports file.
pub fn parse(bytes: &[u8], shown: &str) -> Result<Vec<(String, OsString)>> {
    let mut vars = Vec::new();
    for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let bad = |why: String| Error::usage(format!("{shown}: line {}", n + 1)).detail(why);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            continue;
        }
        let line = line.strip_prefix(b"export ").unwrap_or(line);
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            return Err(bad(format!("{} is not KEY=VALUE", excerpt(line))));
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        let key_ok = key.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if !key_ok {
            return Err(bad(format!(
                "{} is not a variable name (letters, digits and '_', not starting with a digit)",
                excerpt(key)
            )));
        }
        if value.contains(&0) {
            return Err(bad("the value contains a NUL byte".into()));
        }
        if value.len() > MAX_VALUE {
            return Err(bad(format!("the value is {} bytes long; the kernel passes at most {MAX_VALUE}", value.len())));
        }
        let key = String::from_utf8(key.to_vec()).expect("checked ASCII");
        vars.push((key, OsString::from_vec(value.to_vec())));
    }
    Ok(vars)
}

/// Longest part of a bad line quoted in a message.
const EXCERPT: usize = 60;

/// `bytes` quoted for a message, cut after [`EXCERPT`] characters: the line may be garbage of
/// any length.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}...", quote(&text[..cut])),
        None => quote(&text),
    }
}

/// Read and parse an exports file.
pub fn load(path: &Path) -> Result<Vec<(String, OsString)>> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", quote(&shown)), &e))?;
    parse(&bytes, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_literal_data() {
        let text = b"NETBIOSNAME=LOCALDC\n\n# comment\nexport ENVNAME=ad_dc\nPASSWORD=$(touch /tmp/pwned)`id`;'\"x\nEMPTY=\nEQ=a=b\r\n";
        let vars = parse(text, "exports").unwrap();
        let get = |k: &str| vars.iter().find(|(key, _)| key == k).map(|(_, v)| v.to_string_lossy().into_owned());
        assert_eq!(get("NETBIOSNAME").as_deref(), Some("LOCALDC"));
        assert_eq!(get("ENVNAME").as_deref(), Some("ad_dc"));
        assert_eq!(get("PASSWORD").as_deref(), Some("$(touch /tmp/pwned)`id`;'\"x"));
        assert_eq!(get("EMPTY").as_deref(), Some(""));
        assert_eq!(get("EQ").as_deref(), Some("a=b"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse(b"A=1\nno equals sign\n", "f").unwrap_err().to_string();
        assert_eq!(e, "f: line 2: 'no equals sign' is not KEY=VALUE");
        assert!(parse(b"1A=x", "f").unwrap_err().to_string().contains("line 1: '1A' is not a variable name"));
        assert!(parse(b"A B=x", "f").unwrap_err().to_string().contains("is not a variable name"));
        assert!(parse(b"=x", "f").unwrap_err().to_string().contains("is not a variable name"));
        assert!(parse(b"A=x\0y", "f").unwrap_err().to_string().contains("NUL"));
        let huge = [b"A=".as_slice(), &vec![b'x'; MAX_VALUE + 1]].concat();
        assert!(parse(&huge, "f").unwrap_err().to_string().contains("bytes long"));
        assert!(parse(b"\xff\xfe=1", "f").unwrap_err().to_string().contains("not a variable name"));
        let garbage = parse(&vec![b'y'; 1_000_000], "f").unwrap_err().to_string();
        assert!(
            garbage.len() < 200 && garbage.contains(&format!("'{}'... is not KEY=VALUE", "y".repeat(60))),
            "{garbage}"
        );
        // Binary garbage in a value is still just data.
        assert_eq!(parse(b"A=\xff\xfe", "f").unwrap()[0].1.len(), 2);
    }
}
