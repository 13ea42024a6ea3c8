//! Golden tests: today's outputs of the five tools, pinned before the big refactor (issue 13),
//! so that it can be shown to change none of them. Outputs are a contract: JSON fields, table
//! columns, flags and exit codes are only ever added, never renamed or removed.
//!
//! What is pinned (the fixtures are in `tests/golden/`, one readable file per output):
//!
//! - `listing`: a fixed topology, built inside a fresh PID and mount namespace (so that `ns-ls`
//!   sees only this test's processes, whatever else runs on the machine): a hub holder
//!   (`ns-unshare --name hub`) with the bridge `selftest0` (10.53.57.11/24, fd00::5357:5f0b/112);
//!   two testenv holders `ad_dc` and `fileserver` (the latter with `--uts`, made with `--json`),
//!   each with `vethN` at 10.53.57.N/24 and fd00::5357:5fNN/112 and fixed MACs, `vethN-br`
//!   attached to the bridge; a namespace without a holder (a plain `unshare --net sleep`); and a
//!   namespace that only a `--bind` mount keeps (`/run/netns/golden`, on a tmpfs private to the
//!   test). Then `ns-ls -J`, the default table, every column (`-o`), `-n`, `--no-interfaces`,
//!   `--owned`, `--label`, `--topology` (whole and `-p`), `-t uts` (table and JSON), `-t user`,
//!   and the JSON of `ns-unshare --json` and `veth-pair --json`, and `ns-unshare --print
//!   pid:inode`.
//! - `impaired`: impairments, default routes and the topology as a picture (issues 14, 15), in a
//!   topology of their own: `veth-pair --rate ... --json`, `--shape` on a port and on a testenv's
//!   end, `--peer-default-route --json` from a host holder, a label that DOT must escape, a
//!   namespace titled by its command; then the table, `--topology`, `--topology --dot`,
//!   `ns-ls -p AD -J` and the `UPLINKS` column. (`listing` pins `--topology --dot` of its topology too.)
//! - `errors`: a sample of bad inputs for every tool, each with its exit code and its one line on
//!   stderr (`errors.txt`: `COMMAND => EXIT => STDERR`).
//! - `help`: `-h` and `--help` of every tool (`help/TOOL.txt`, `help/TOOL.long.txt`, at
//!   `COLUMNS=100`, what clap uses when stdout is not a terminal), and `--version`.
//!
//! Comparison: text outputs (tables, topology, errors, help) exactly, after normalisation. JSON
//! outputs as a contract: the golden must be contained in today's output (every golden key
//! present with an equal value, recursively; arrays of the same length, element by element),
//! so a field added later passes (and is printed, for information) while a removed, renamed
//! or changed one fails. In the JSON goldens, normalised numbers are bare placeholders
//! (`"inode": <NS1>`), so that a number that became a string would be seen as a change.
//!
//! Normalised (what the machine or the moment decides, never the tools):
//!
//! - namespace inodes -> `<NS1>`, `<NS2>`... and PIDs -> `<PID1>`... in order of first
//!   appearance, one mapping per test across all its files (so relations stay visible: a veth
//!   peer's `netns` is the `inode` of the namespace it is in). The scenario's PIDs start at
//!   20001 (`ns_last_pid`), so a number in a text is recognised as a PID by its range; PID 1
//!   (the scenario's shell, in the `PID` column and `pid` fields) is normalised where it stands.
//!   Inodes are recognised by their range (the kernel allocates them from 0xF0000000); the
//!   example inode that a message quotes (`such as 4026532841`) is kept.
//! - the order of namespaces: `ns-ls` sorts them by inode, and inodes are recycled (by every
//!   test running in parallel), so namespaces (JSON) and table rows with their interface lines
//!   are put in PID order before comparison (the PIDs are allocated in the scenario's order); a
//!   separate check pins that the raw output is sorted by inode. Table columns are re-aligned
//!   after normalisation with `ns-ls`'s own rule (numbers right, text left, the last column
//!   unpadded), and a check pins that the raw table follows that rule.
//! - MACs that the kernel chose (none is left: the veths' are fixed, the bridge takes its lowest
//!   port's) -> `<MAC1>`...; IPv6 link-local addresses are kept when derived from a fixed MAC
//!   (`fe80::ff:fe35:3915/64` for veth21), others (the bridge's, made from its random MAC at
//!   creation) -> `fe80::<LL1>/64`.
//! - the test's temporary directory -> `<TMP>`, its tag -> `<TAG>`; in `--version`, the
//!   workspace version -> `<VERSION>`.
//! - ifindexes are not normalised: each namespace allocates its own, in the scenario's order.
//!
//! Kept stable instead of normalised: the scenario waits until every link is up and IPv6
//! duplicate address detection is over before listing (`tentative` and `state` settle).
//!
//! Bless (write the fixtures from today's outputs), after checking that a change is meant:
//!
//! ```sh
//! NSTOOLS_BLESS=1 cargo test --release -p nstools-tests --test golden
//! ```
//!
//! Without it a mismatch fails with a diff (`-` expected, `+` actual) and today's normalised
//! outputs are left in `target/tmp/golden-actual/` for a closer look.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_debug_implementations)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nstools_tests::{Sandbox, sandbox};

// ---------------------------------------------------------------------------------------------
// JSON that keeps the order of keys (the goldens read like the tools' output), with bare
// `<PLACEHOLDER>` numbers.

#[derive(Clone, Debug, PartialEq)]
enum J {
    Null,
    Bool(bool),
    /// A number as written (or a placeholder such as `<NS1>`).
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }

    fn num(&self) -> Option<u64> {
        match self {
            J::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    fn arr(&self) -> &[J] {
        match self {
            J::Arr(v) => v,
            _ => &[],
        }
    }

    /// As `serde_json::to_string_pretty` writes it.
    fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(0));
        out
    }

    /// As `serde_json::to_string` writes it.
    fn compact(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None);
        out
    }

    fn write(&self, out: &mut String, indent: Option<usize>) {
        let (open, sep, pad) = match indent {
            Some(n) => (format!("\n{}", "  ".repeat(n + 1)), ": ", format!("\n{}", "  ".repeat(n))),
            None => (String::new(), ":", String::new()),
        };
        let inner = indent.map(|n| n + 1);
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            J::Arr(v) if v.is_empty() => out.push_str("[]"),
            J::Obj(v) if v.is_empty() => out.push_str("{}"),
            J::Arr(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    out.push_str(if i > 0 { "," } else { "" });
                    out.push_str(&open);
                    x.write(out, inner);
                }
                out.push_str(&pad);
                out.push(']');
            }
            J::Obj(v) => {
                out.push('{');
                for (i, (k, x)) in v.iter().enumerate() {
                    out.push_str(if i > 0 { "," } else { "" });
                    out.push_str(&open);
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push_str(sep);
                    x.write(out, inner);
                }
                out.push_str(&pad);
                out.push('}');
            }
        }
    }
}

/// Parse JSON (plus bare `<PLACEHOLDER>` numbers).
fn parse_json(text: &str) -> Result<J, String> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
                self.i += 1;
            }
        }
        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("invalid JSON at byte {}: {what}", self.i))
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                self.err(&format!("expected '{}'", c as char))
            }
        }
        fn value(&mut self) -> Result<J, String> {
            self.ws();
            let rest = &self.b[self.i..];
            for (word, v) in [("null", J::Null), ("true", J::Bool(true)), ("false", J::Bool(false))] {
                if rest.starts_with(word.as_bytes()) {
                    self.i += word.len();
                    return Ok(v);
                }
            }
            match rest.first() {
                Some(b'"') => self.string().map(J::Str),
                Some(b'[') => {
                    self.i += 1;
                    let mut v = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(J::Arr(v));
                    }
                    loop {
                        v.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(J::Arr(v));
                            }
                            _ => return self.err("expected ',' or ']'"),
                        }
                    }
                }
                Some(b'{') => {
                    self.i += 1;
                    let mut v = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(J::Obj(v));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        v.push((k, self.value()?));
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(J::Obj(v));
                            }
                            _ => return self.err("expected ',' or '}'"),
                        }
                    }
                }
                Some(b'<') => {
                    let end = rest.iter().position(|&c| c == b'>').map_or_else(|| self.err("unclosed '<'"), Ok)?;
                    self.i += end + 1;
                    Ok(J::Num(String::from_utf8_lossy(&rest[..=end]).into_owned()))
                }
                Some(c) if *c == b'-' || c.is_ascii_digit() => {
                    let n = rest.iter().take_while(|c| b"+-.eE0123456789".contains(c)).count();
                    self.i += n;
                    Ok(J::Num(String::from_utf8_lossy(&rest[..n]).into_owned()))
                }
                _ => self.err("expected a value"),
            }
        }
        fn hex4(&mut self) -> Result<u32, String> {
            let h = self.b.get(self.i..self.i + 4).and_then(|h| std::str::from_utf8(h).ok());
            let v = h.and_then(|h| u32::from_str_radix(h, 16).ok());
            self.i += 4;
            v.map_or_else(|| self.err("bad \\u escape"), Ok)
        }
        fn string(&mut self) -> Result<String, String> {
            self.eat(b'"')?;
            let mut out = Vec::new();
            loop {
                let Some(&c) = self.b.get(self.i) else { return self.err("unterminated string") };
                self.i += 1;
                match c {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let Some(&e) = self.b.get(self.i) else { return self.err("unterminated escape") };
                        self.i += 1;
                        let ch = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let mut cp = self.hex4()?;
                                if (0xD800..0xDC00).contains(&cp) && self.b[self.i..].starts_with(b"\\u") {
                                    self.i += 2;
                                    let low = self.hex4()?;
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                                }
                                char::from_u32(cp).unwrap_or('\u{FFFD}')
                            }
                            _ => return self.err("bad escape"),
                        };
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    _ => out.push(c),
                }
            }
        }
    }
    let mut p = P { b: text.as_bytes(), i: 0 };
    let v = p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return p.err("trailing characters");
    }
    Ok(v)
}

/// Is `golden` contained in `actual`? Differences go to `diffs`, fields only `actual` has to
/// `added`.
fn contained(golden: &J, actual: &J, path: &str, diffs: &mut Vec<String>, added: &mut Vec<String>) {
    match (golden, actual) {
        (J::Obj(g), J::Obj(a)) => {
            for (k, gv) in g {
                let p = format!("{path}.{k}");
                match a.iter().find(|(ak, _)| ak == k) {
                    Some((_, av)) => contained(gv, av, &p, diffs, added),
                    None => diffs.push(format!("{p}: removed (golden: {})", gv.compact())),
                }
            }
            for (k, av) in a.iter().filter(|(k, _)| !g.iter().any(|(gk, _)| gk == k)) {
                added.push(format!("{path}.{k} = {}", av.compact()));
            }
        }
        (J::Arr(g), J::Arr(a)) if g.len() == a.len() => {
            for (i, (gv, av)) in g.iter().zip(a).enumerate() {
                contained(gv, av, &format!("{path}[{i}]"), diffs, added);
            }
        }
        (J::Arr(g), J::Arr(a)) => {
            diffs.push(format!("{path}: {} elements instead of {}: {}", a.len(), g.len(), actual.compact()));
        }
        _ if golden == actual => {}
        _ => diffs.push(format!("{path}: golden {}, actual {}", golden.compact(), actual.compact())),
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation.

/// First PID of the scenarios (`ns_last_pid` is set to one less).
const PID_BASE: u64 = 20001;
/// MACs the scenario sets (`--mac`, `--peer-mac`).
const FIXED_MACS: [&str; 4] = ["02:00:00:35:39:15", "02:00:00:35:39:95", "02:00:00:35:39:16", "02:00:00:35:39:96"];
/// The example inode that a message quotes, kept as it is.
const EXAMPLE: &str = "such as 4026532841";
/// Columns that `ns-ls` right-aligns.
const NUMERIC_COLUMNS: [&str; 5] = ["NS", "NPROCS", "PID", "HOLDER", "IFACES"];

#[derive(Default)]
struct Norm {
    /// Literal replacements (the temporary directory, the tag).
    literals: Vec<(String, String)>,
    /// The last PID the scenario allocated.
    pid_last: u64,
    pids: Vec<u64>,
    inodes: Vec<u64>,
    macs: Vec<String>,
    lls: Vec<String>,
}

fn placeholder<T: PartialEq + Clone>(seen: &mut Vec<T>, v: &T, name: &str) -> String {
    let i = seen.iter().position(|x| x == v).unwrap_or_else(|| {
        seen.push(v.clone());
        seen.len() - 1
    });
    format!("<{name}{}>", i + 1)
}

/// A namespace inode: the kernel's proc inode numbers start at 0xF0000000, below it the
/// initial namespaces' fixed ones (0xEFFFFFF9 to 0xEFFFFFFF).
fn is_inode(n: u64) -> bool {
    (0xEFFF_FFF0..=0xFFFF_FFFF).contains(&n)
}

/// The link-local address the kernel derives from `mac` (EUI-64).
fn link_local_of(mac: &str) -> Option<String> {
    let b: Vec<u16> = mac.split(':').map(|x| u16::from_str_radix(x, 16).ok()).collect::<Option<_>>()?;
    if b.len() != 6 {
        return None;
    }
    let a = std::net::Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        (b[0] ^ 2) << 8 | b[1],
        b[2] << 8 | 0xff,
        0xfe00 | b[3],
        b[4] << 8 | b[5],
    );
    Some(format!("{a}/64"))
}

/// Replace each number in `s` (a run of digits, not part of a word) for which `f` says so.
fn replace_numbers(s: &str, mut f: impl FnMut(u64) -> Option<String>) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            let next = b[i..].iter().position(u8::is_ascii_digit).map_or(b.len(), |n| i + n);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let run = &s[start..i];
        let word = (start > 0 && b[start - 1].is_ascii_alphabetic()) || b.get(i).is_some_and(u8::is_ascii_alphabetic);
        match run.parse::<u64>().ok().filter(|_| !word).and_then(&mut f) {
            Some(r) => out.push_str(&r),
            None => out.push_str(run),
        }
    }
    out
}

impl Norm {
    fn is_pid(&self, n: u64) -> bool {
        (PID_BASE..=self.pid_last).contains(&n)
    }

    fn pid(&mut self, n: u64) -> String {
        placeholder(&mut self.pids, &n, "PID")
    }

    fn ns(&mut self, n: u64) -> String {
        placeholder(&mut self.inodes, &n, "NS")
    }

    fn literals(&self, s: &str) -> String {
        let mut s = s.to_owned();
        for (from, to) in &self.literals {
            s = s.replace(from.as_str(), to);
        }
        s
    }

    /// Inodes and scenario PIDs in free text, by their ranges; literals.
    fn text(&mut self, s: &str) -> String {
        let s = self.literals(s);
        let parts: Vec<String> = s
            .split(EXAMPLE)
            .map(|part| {
                replace_numbers(part, |n| {
                    if is_inode(n) {
                        Some(self.ns(n))
                    } else if self.is_pid(n) {
                        Some(self.pid(n))
                    } else {
                        None
                    }
                })
            })
            .collect();
        parts.join(EXAMPLE)
    }

    /// Mask what normalisation would replace (to sort by everything else).
    fn mask(&self, s: &str) -> String {
        replace_numbers(&self.literals(s), |n| (is_inode(n) || self.is_pid(n)).then(|| "#".to_owned()))
    }

    fn mac(&mut self, mac: &str) -> String {
        if FIXED_MACS.contains(&mac) || mac == "00:00:00:00:00:00" {
            mac.to_owned()
        } else {
            placeholder(&mut self.macs, &mac.to_owned(), "MAC")
        }
    }

    /// A link-local address stays when derived from the fixed MAC of its interface.
    fn link_local(&mut self, cidr: &str, mac: Option<&str>) -> String {
        let derived = mac.filter(|m| FIXED_MACS.contains(m)).and_then(link_local_of);
        if derived.as_deref() == Some(cidr) {
            return cidr.to_owned();
        }
        let prefix = cidr.rsplit_once('/').map_or("", |(_, p)| p);
        format!("fe80::{}/{prefix}", placeholder(&mut self.lls, &cidr.to_owned(), "LL"))
    }

    /// Normalise a JSON value (`key`: the key it is under; `mac`: the MAC of the interface).
    fn json(&mut self, j: &J, key: &str, mac: Option<&str>) -> J {
        match j {
            J::Num(raw) => match raw.parse::<u64>() {
                Ok(n) if key == "pid" || key == "holder" => J::Num(self.pid(n)),
                Ok(n) if is_inode(n) => J::Num(self.ns(n)),
                _ => j.clone(),
            },
            J::Str(s) if key == "mac" => J::Str(self.mac(s)),
            J::Str(s) if key == "cidr" && s.starts_with("fe80:") => J::Str(self.link_local(s, mac)),
            J::Str(s) => J::Str(self.text(s)),
            J::Arr(v) => J::Arr(v.iter().map(|x| self.json(x, key, mac)).collect()),
            J::Obj(kv) => {
                let own = j.get("mac").and_then(J::str).map(str::to_owned);
                let mac = own.as_deref().or(mac);
                J::Obj(kv.iter().map(|(k, v)| (k.clone(), self.json(v, k, mac))).collect())
            }
            J::Null | J::Bool(_) => j.clone(),
        }
    }

    /// Put the listing's namespaces and bridges in PID order (see the module documentation).
    fn canonical(&self, j: &J) -> J {
        let J::Obj(kv) = j else { return j.clone() };
        let sorted = |v: &[J]| {
            let mut v = v.to_vec();
            v.sort_by_cached_key(|x| (x.get("pid").and_then(J::num).unwrap_or(u64::MAX), self.mask(&x.compact())));
            J::Arr(v)
        };
        J::Obj(
            kv.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("namespaces" | "bridges", J::Arr(a)) => (k.clone(), sorted(a)),
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        )
    }
}

/// Split a table row into its cells; only COMMAND may contain spaces.
fn row_cells(line: &str, columns: &[&str]) -> Option<Vec<String>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (c == ' ', start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    let n = columns.len();
    let Some(c) = columns.iter().position(|c| *c == "COMMAND") else {
        return (spans.len() == n).then(|| spans.iter().map(|&(s, e)| line[s..e].to_owned()).collect());
    };
    let right = n - 1 - c;
    if spans.len() < n {
        return None;
    }
    let mut cells: Vec<String> = spans[..c].iter().map(|&(s, e)| line[s..e].to_owned()).collect();
    cells.push(line[spans[c].0..spans[spans.len() - right - 1].1].to_owned());
    cells.extend(spans[spans.len() - right..].iter().map(|&(s, e)| line[s..e].to_owned()));
    Some(cells)
}

/// Lay rows out as `ns-ls` does: numbers right-aligned, text left, the last column unpadded.
fn layout(columns: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> =
        (0..columns.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, v) in row.iter().enumerate() {
                let w = widths[c];
                if c + 1 == row.len() {
                    line.push_str(v);
                } else if NUMERIC_COLUMNS.contains(&columns[c]) {
                    write!(line, "{v:>w$} ").unwrap();
                } else {
                    write!(line, "{v:<w$} ").unwrap();
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

impl Norm {
    /// Normalise an `ns-ls` table (see the module documentation); `problems` gets what breaks
    /// today's rules (order by inode, alignment).
    fn table(&mut self, raw: &str, columns: &[&str], headings: bool, problems: &mut Vec<String>) -> String {
        let mut lines = raw.lines();
        let header: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        if headings {
            let first = lines.next().unwrap_or_default();
            if first.split_whitespace().collect::<Vec<_>>() != columns {
                problems.push(format!("header {first:?} is not {columns:?}"));
            }
        }
        // Blocks: a namespace row and its interface lines (indented by two spaces).
        let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
        for line in lines {
            match blocks.last_mut() {
                Some((_, ifaces)) if line.starts_with("  ") => ifaces.push(line.to_owned()),
                _ => blocks.push((line.to_owned(), Vec::new())),
            }
        }
        let mut rows = Vec::new();
        for (row, _) in &blocks {
            match row_cells(row, columns) {
                Some(cells) => rows.push(cells),
                None => {
                    problems.push(format!("cannot split {row:?} into {columns:?}"));
                    return raw.to_owned();
                }
            }
        }
        // Today's rules: the raw table is laid out as `layout` does, rows sorted by inode.
        let all: Vec<Vec<String>> = headings.then(|| header.clone()).into_iter().chain(rows.iter().cloned()).collect();
        let expected: Vec<String> = layout(columns, &all);
        let got: Vec<&str> = headings
            .then(|| raw.lines().next().unwrap_or_default())
            .into_iter()
            .chain(blocks.iter().map(|(r, _)| r.as_str()))
            .collect();
        if expected != got {
            problems
                .push(format!("the table is not aligned as before:\n{}", diff(&expected.join("\n"), &got.join("\n"))));
        }
        if let Some(ns) = columns.iter().position(|c| *c == "NS") {
            let inodes: Vec<u64> = rows.iter().filter_map(|r| r[ns].parse().ok()).collect();
            if !inodes.is_sorted() {
                problems.push(format!("rows are not sorted by inode: {inodes:?}"));
            }
        }
        // PID order, then normalise and lay out again.
        let pid_col = columns.iter().position(|c| *c == "PID");
        let mut order: Vec<usize> = (0..blocks.len()).collect();
        order.sort_by_cached_key(|&i| {
            let pid = pid_col.and_then(|c| rows[i][c].parse::<u64>().ok()).unwrap_or(u64::MAX);
            (pid, self.mask(&format!("{}\n{}", blocks[i].0, blocks[i].1.join("\n"))))
        });
        let mut out_rows = Vec::new();
        let mut out_ifaces = Vec::new();
        for &i in &order {
            let cells: Vec<String> = rows[i]
                .iter()
                .zip(columns)
                .map(|(v, col)| match (*col, v.parse::<u64>()) {
                    ("NS", Ok(n)) => self.ns(n),
                    ("PID" | "HOLDER", Ok(n)) => self.pid(n),
                    _ => self.text(v),
                })
                .collect();
            out_rows.push(cells);
            out_ifaces.push(blocks[i].1.iter().map(|l| self.text(l)).collect::<Vec<_>>());
        }
        let all: Vec<Vec<String>> = headings.then_some(header).into_iter().chain(out_rows).collect();
        let laid = layout(columns, &all);
        let mut out = String::new();
        let mut laid = laid.into_iter();
        if headings {
            writeln!(out, "{}", laid.next().unwrap_or_default()).unwrap();
        }
        for (row, ifaces) in laid.zip(out_ifaces) {
            writeln!(out, "{row}").unwrap();
            for l in ifaces {
                writeln!(out, "{l}").unwrap();
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures: compare, or bless.

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn blessing() -> bool {
    std::env::var_os("NSTOOLS_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Expected vs actual, line by line (`-` expected, `+` actual), with two lines of context.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, a[i]));
            i += 1;
        } else {
            ops.push(('+', i, b[j]));
            j += 1;
        }
    }
    let near = |k: usize| ops[k.saturating_sub(2)..(k + 3).min(ops.len())].iter().any(|o| o.0 != ' ');
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line_no, line)) in ops.iter().enumerate() {
        if *op == ' ' && !near(k) {
            skipped = true;
            continue;
        }
        if skipped || k == 0 {
            writeln!(out, "@@ expected line {} @@", line_no + 1).unwrap();
            skipped = false;
        }
        writeln!(out, "{op}{line}").unwrap();
    }
    if out.is_empty() && expected != actual {
        out.push_str("(the same lines; they differ in the final newline)\n");
    }
    out
}

/// Information for whoever runs the tests, shown even when the test passes (cargo test captures
/// `eprintln!`, not direct writes).
fn note(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The fixtures a test checks, and what did not match.
struct Goldens {
    test: &'static str,
    mismatches: Vec<String>,
}

impl Goldens {
    fn new(test: &'static str) -> Goldens {
        Goldens { test, mismatches: Vec::new() }
    }

    fn fail(&mut self, what: String) {
        self.mismatches.push(what);
    }

    fn keep_actual(name: &str, text: &str) {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden-actual");
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(path, text);
    }

    /// Bless, or read the fixture (`None` after noting that it is missing).
    fn expected(&mut self, name: &str, actual: &str) -> Option<String> {
        let path = golden_dir().join(name);
        if blessing() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            note(&format!("golden: blessed {}", path.display()));
            return None;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) => {
                Self::keep_actual(name, actual);
                self.fail(format!("tests/golden/{name}: cannot read it ({e}); bless it with NSTOOLS_BLESS=1"));
                None
            }
        }
    }

    /// Exact comparison.
    fn text(&mut self, name: &str, actual: &str) {
        let Some(expected) = self.expected(name, actual) else { return };
        if expected != actual {
            Self::keep_actual(name, actual);
            self.fail(format!("tests/golden/{name} differs (- expected, + actual):\n{}", diff(&expected, actual)));
        }
    }

    /// The golden must be contained in `actual` (fields may be added, never removed or changed).
    fn json(&mut self, name: &str, actual: &J) {
        let text = format!("{}\n", actual.pretty());
        let Some(expected) = self.expected(name, &text) else { return };
        let golden = match parse_json(&expected) {
            Ok(g) => g,
            Err(e) => return self.fail(format!("tests/golden/{name}: {e}")),
        };
        let (mut diffs, mut added) = (Vec::new(), Vec::new());
        contained(&golden, actual, "", &mut diffs, &mut added);
        if !added.is_empty() {
            note(&format!(
                "golden: {name}: fields added since the golden (fine: fields are only ever added):\n  {}",
                added.join("\n  ")
            ));
        }
        if !diffs.is_empty() {
            Self::keep_actual(name, &text);
            self.fail(format!(
                "tests/golden/{name}: fields removed, renamed or changed:\n  {}\n(- expected, + actual):\n{}",
                diffs.join("\n  "),
                diff(&expected, &text)
            ));
        }
    }

    fn finish(self) {
        if !self.mismatches.is_empty() {
            panic!(
                "{}: {} golden mismatch(es); if the change is meant, bless with: NSTOOLS_BLESS=1 cargo test --release -p nstools-tests --test golden\n\n{}",
                self.test,
                self.mismatches.len(),
                self.mismatches.join("\n\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios: shell scripts run as PID 1 of a fresh PID namespace, with a mount namespace
// of their own (a fresh /proc: ns-ls sees only their processes).

const PRELUDE: &str = r#"set -eu
D=$1
OUT=$D/out
mkdir -p "$OUT"
exec < /dev/null
# The tools under test, then the system's directories only: a directory of the caller's PATH
# that cannot be searched would turn ns-exec's "command not found" (127) into EACCES (126).
PATH=$GOLDEN_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# PIDs from PID_BASE on (below 32768, the smallest pid_max): a number in that range is
# a PID (normalised), never a count, an index or part of an address.
echo $((PID_BASE - 1)) > /proc/sys/kernel/ns_last_pid || {
    echo "scenario: cannot set kernel.ns_last_pid (a kernel without CONFIG_CHECKPOINT_RESTORE?)" >&2
    exit 1
}
# nsfs bind mounts (ip netns, other tests' --bind) were copied into this mount namespace with
# the rest: remove them, or ns-ls would list their namespaces.
for m in $(sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .* - nsfs .*/\1/p' /proc/self/mountinfo | sort -r); do
    umount -l "$(printf '%b' "$m")" 2>/dev/null || true
done
if grep -q ' - nsfs ' /proc/self/mountinfo; then
    grep ' - nsfs ' /proc/self/mountinfo > "$OUT/foreign-nsfs"
fi
# /run/netns of our own.
mount -t tmpfs golden /run

# cap ID CMD...: run CMD, keep its argv, stdout, stderr and exit code.
cap() {
    id=$1
    shift
    printf '%s\n' "$@" > "$OUT/$id.argv"
    rc=0
    "$@" > "$OUT/$id.out" 2> "$OUT/$id.err" || rc=$?
    echo "$rc" > "$OUT/$id.rc"
}
# step ID CMD...: cap, and it must succeed.
step() {
    cap "$@"
    [ "$(cat "$OUT/$1.rc")" = 0 ] || { echo "scenario: $* failed: $(cat "$OUT/$1.err")" >&2; exit 1; }
}
# started PID: wait until the background 'unshare --net sleep infinity' runs sleep.
started() {
    i=0
    until [ "$(tr '\0' ' ' < "/proc/$1/cmdline")" = "sleep infinity " ]; do
        i=$((i + 1))
        [ "$i" -lt 500 ] || { echo "scenario: process $1 did not start sleep" >&2; exit 1; }
        sleep 0.01
    done
}
# settle PID...: wait until every link (but lo) is up and IPv6 duplicate address detection is
# over in the network namespaces of PID...: the state and the tentative flags are then final.
settle() {
    i=0
    while :; do
        busy=
        for p in "$@"; do
            [ -z "$(nsenter -t "$p" --net ip -6 -o addr show tentative)" ] || busy=1
            ! nsenter -t "$p" --net ip -o link show | grep -v ': lo:' | grep -qv ' state UP ' || busy=1
        done
        [ -n "$busy" ] || return 0
        i=$((i + 1))
        [ "$i" -lt 400 ] || { echo "scenario: the links did not settle" >&2; exit 1; }
        sleep 0.05
    done
}
"#;

const EPILOGUE: &str = r#"
cat /proc/sys/kernel/ns_last_pid > "$OUT/last-pid"
"#;

/// One command's outcome in a scenario.
struct Capture {
    argv: Vec<String>,
    stdout: String,
    stderr: String,
    code: i32,
}

struct Scenario {
    dir: PathBuf,
    norm: Norm,
}

impl Scenario {
    /// Run `body` as PID 1 of a new PID namespace (with a new mount namespace and /proc). `None`
    /// if the machine has nsfs mounts that cannot be hidden (after a loud skip) and
    /// `need_clean_mounts`.
    fn run(sb: &mut Sandbox, name: &str, body: &str, need_clean_mounts: bool) -> Option<Scenario> {
        let dir = sb.workdir(name);
        let script = dir.join("scenario.sh");
        let prelude = PRELUDE.replace("PID_BASE", &PID_BASE.to_string());
        std::fs::write(&script, format!("{prelude}\n{body}\n{EPILOGUE}")).unwrap();
        sb.must(&format!(
            "GOLDEN_BIN='{}' unshare --pid --mount --fork --mount-proc sh {} {}",
            nstools_tests::bin_dir().display(),
            script.display(),
            dir.display()
        ));
        let out = dir.join("out");
        if let Ok(foreign) = std::fs::read_to_string(out.join("foreign-nsfs"))
            && need_clean_mounts
        {
            nstools_tests::skip(
                sb.name(),
                &format!(
                    "nsfs mounts of the machine could not be hidden from the listing (locked, rootless): {foreign}"
                ),
            );
            return None;
        }
        let last = std::fs::read_to_string(out.join("last-pid")).unwrap().trim().parse().unwrap();
        let dir_text = dir.display().to_string();
        let norm = Norm {
            literals: vec![(dir_text, "<TMP>".into()), (sb.tag.clone(), "<TAG>".into())],
            pid_last: last,
            ..Norm::default()
        };
        Some(Scenario { dir: out, norm })
    }

    fn capture(&self, id: &str) -> Capture {
        let read = |ext: &str| {
            std::fs::read(self.dir.join(format!("{id}.{ext}")))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| panic!("{id}.{ext}: {e}"))
        };
        Capture {
            argv: read("argv").lines().map(str::to_owned).collect(),
            stdout: read("out"),
            stderr: read("err"),
            code: read("rc").trim().parse().unwrap(),
        }
    }

    /// A capture that must have succeeded, quietly.
    fn ok(&self, id: &str) -> Capture {
        let c = self.capture(id);
        assert!(c.code == 0 && c.stderr.is_empty(), "{id}: `{}` failed ({}): {}", c.argv.join(" "), c.code, c.stderr);
        c
    }

    /// `$ COMMAND` (normalised), the first line of a text golden.
    fn header(&mut self, c: &Capture) -> String {
        let shown: Vec<String> = c.argv.iter().map(|a| shell_quote(a)).collect();
        format!("$ {}\n", self.norm.text(&shown.join(" ")))
    }
}

fn shell_quote(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c)) {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------------------------
// The listing of a fixed topology.

const LISTING: &str = r#"
HUB=$(ns-unshare --name hub)
ns-exec -t "$HUB" br-attach --create --addr 10.53.57.11/24 --addr fd00::5357:5f0b/112
AD=$(ns-unshare --name ad_dc)
step ns-unshare.json ns-unshare --json --name fileserver --uts --hostname fileserver
FS=$(sed 's/.*"pid":\([0-9]*\).*/\1/' "$OUT/ns-unshare.json.out")
step veth-pair.json ns-exec -t "$HUB" veth-pair veth21 --netns "$AD" --addr 10.53.57.21/24 --addr fd00::5357:5f15/112 \
    --mac 02:00:00:35:39:15 --peer-mac 02:00:00:35:39:95 --json
ns-exec -t "$HUB" br-attach --timeout 0 veth21-br
ns-exec -t "$HUB" veth-pair veth22 --netns "$FS" --addr 10.53.57.22/24 --addr fd00::5357:5f16/112 \
    --mac 02:00:00:35:39:16 --peer-mac 02:00:00:35:39:96
ns-exec -t "$HUB" br-attach --timeout 0 veth22-br
# A namespace without a holder.
unshare --net sleep infinity &
PLAIN=$!
started "$PLAIN"
# A namespace that only its bind mount keeps.
step ns-unshare.pid-inode ns-unshare --bind /run/netns/golden --print pid:inode
BOUND=$(cat "$OUT/ns-unshare.pid-inode.out")
ns-unshare --stop "${BOUND%%:*}"
settle "$HUB" "$AD" "$FS"

step ns-ls.json ns-ls -J
step ns-ls.table ns-ls
step ns-ls.columns.table ns-ls -o NS,TYPE,NPROCS,PID,HOLDER,LABEL,COMMAND,BIND,IFACES
step ns-ls.noheadings.table ns-ls -n
step ns-ls.no-interfaces.table ns-ls --no-interfaces
step ns-ls.owned.table ns-ls --owned -o NS,PID,HOLDER,LABEL,IFACES --no-interfaces
step ns-ls.label.table ns-ls --label fileserver -n -o PID --no-interfaces
step ns-ls.topology ns-ls --topology
step ns-ls.topology-p ns-ls --topology -p "$AD"
step ns-ls.dot ns-ls --topology --dot
step ns-ls.uts.table ns-ls -t uts
step ns-ls.uts.json ns-ls -t uts -J
step ns-ls.user.table ns-ls -t user

ns-unshare --stop "$HUB" "$AD" "$FS"
kill "$PLAIN"
"#;

/// Tables: (capture and fixture, columns, headings).
const TABLES: [(&str, &str, bool); 8] = [
    ("ns-ls.table", "NS,TYPE,NPROCS,PID,LABEL,COMMAND", true),
    ("ns-ls.columns.table", "NS,TYPE,NPROCS,PID,HOLDER,LABEL,COMMAND,BIND,IFACES", true),
    ("ns-ls.noheadings.table", "NS,TYPE,NPROCS,PID,LABEL,COMMAND", false),
    ("ns-ls.no-interfaces.table", "NS,TYPE,NPROCS,PID,LABEL,COMMAND", true),
    ("ns-ls.owned.table", "NS,PID,HOLDER,LABEL,IFACES", true),
    ("ns-ls.label.table", "PID", false),
    ("ns-ls.uts.table", "NS,TYPE,NPROCS,PID,LABEL,COMMAND", true),
    ("ns-ls.user.table", "NS,TYPE,NPROCS,PID,LABEL,COMMAND", true),
];

#[test]
fn listing_of_a_fixed_topology() {
    let mut sb = sandbox!("listing_of_a_fixed_topology");
    let Some(mut sc) = Scenario::run(&mut sb, "golden-listing", LISTING, true) else { return };
    let mut g = Goldens::new("listing_of_a_fixed_topology");

    // ns-ls -J: today's pretty-printing exactly, sorted by inode, only what the test made.
    let c = sc.ok("ns-ls.json");
    let raw = parse_json(&c.stdout).unwrap();
    if format!("{}\n", raw.pretty()) != c.stdout {
        g.fail("ns-ls -J is no longer printed as serde_json's pretty printer does".into());
    }
    let namespaces = raw.get("namespaces").map(J::arr).unwrap_or_default();
    let inodes: Vec<u64> = namespaces.iter().filter_map(|n| n.get("inode").and_then(J::num)).collect();
    if !inodes.is_sorted() {
        g.fail(format!("ns-ls -J: namespaces are not sorted by inode: {inodes:?}"));
    }
    let mut what: Vec<String> = namespaces
        .iter()
        .map(|n| {
            let f = |k| n.get(k).and_then(J::str).unwrap_or("-").to_owned();
            let binds = n.get("binds").map(J::compact).unwrap_or_default();
            format!("{} {} {binds}", f("label"), sc.norm.mask(&f("command")))
        })
        .collect();
    what.sort();
    assert_eq!(
        what,
        [
            "- - [\"/run/netns/golden\"]",
            "- sh <TMP>/scenario.sh <TMP> []",
            "- sleep infinity []",
            "ad_dc ns-unshare --name ad_dc []",
            "fileserver ns-unshare --json --name fileserver --uts --hostname fileserver []",
            "hub ns-unshare --name hub []",
        ],
        "ns-ls inside the scenario's PID namespace lists exactly what the test made"
    );
    let canonical = sc.norm.canonical(&raw);
    let listing = sc.norm.json(&canonical, "", None);
    g.json("ns-ls.json", &listing);

    // The JSON of ns-unshare and veth-pair: one line each, as serde_json writes it.
    for id in ["ns-unshare.json", "veth-pair.json"] {
        let c = sc.ok(id);
        let raw = parse_json(&c.stdout).unwrap();
        if format!("{}\n", raw.compact()) != c.stdout {
            g.fail(format!("{id}: no longer one compact line: {:?}", c.stdout));
        }
        let j = sc.norm.json(&raw, "", None);
        g.json(id, &j);
    }
    let c = sc.ok("ns-unshare.pid-inode");
    let text = format!("{}{}", sc.header(&c), sc.norm.text(&c.stdout));
    g.text("ns-unshare.pid-inode", &text);

    // Tables, topology, other types.
    let mut problems = Vec::new();
    for (id, columns, headings) in TABLES {
        let c = sc.ok(id);
        let columns: Vec<&str> = columns.split(',').collect();
        let mut p = Vec::new();
        let table = sc.norm.table(&c.stdout, &columns, headings, &mut p);
        problems.extend(p.into_iter().map(|p| format!("{id}: {p}")));
        let text = format!("{}{table}", sc.header(&c));
        g.text(id, &text);
        if id == "ns-ls.uts.table" {
            let c = sc.ok("ns-ls.uts.json");
            let raw = parse_json(&c.stdout).unwrap();
            let canonical = sc.norm.canonical(&raw);
            let j = sc.norm.json(&canonical, "", None);
            g.json("ns-ls.uts.json", &j);
        }
    }
    for p in problems {
        g.fail(p);
    }
    for id in ["ns-ls.topology", "ns-ls.topology-p", "ns-ls.dot"] {
        let c = sc.ok(id);
        let text = format!("{}{}", sc.header(&c), sc.norm.text(&c.stdout));
        g.text(id, &text);
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Impairments, default routes and the topology as a picture (issues 14 and 15): added outputs,
// in a topology of their own so that the listing above stays as it was.

const IMPAIRED: &str = r#"
HUB=$(ns-unshare --name hub)
ns-exec -t "$HUB" br-attach --create --addr 10.53.57.11/24 --addr fd00::5357:5f0b/112
AD=$(ns-unshare --name ad_dc)
# A label that needs escaping in DOT.
ODD=$(ns-unshare --name 'odd"lab\el')
HOST=$(ns-unshare --name host)
step veth-pair.impaired.json ns-exec -t "$HUB" veth-pair veth21 --netns "$AD" --addr 10.53.57.21/24 \
    --mac 02:00:00:35:39:15 --peer-mac 02:00:00:35:39:95 --rate 8mbit --json
ns-exec -t "$HUB" br-attach --timeout 0 veth21-br
ns-exec -t "$HUB" veth-pair veth22 --netns "$ODD" --addr 10.53.57.22/24 --mac 02:00:00:35:39:16 --peer-mac 02:00:00:35:39:96
ns-exec -t "$HUB" br-attach --timeout 0 veth22-br
step veth-pair.shape ns-exec -t "$HUB" veth-pair --shape veth22-br --rate 100mbit
step veth-pair.shape-peer ns-exec -t "$HUB" veth-pair --shape veth22 --netns "$ODD" --rate 1gbit
# A namespace without a holder: titled by its command.
unshare --net sleep infinity &
PLAIN=$!
started "$PLAIN"
ns-exec -t "$HUB" veth-pair veth23 --netns "$PLAIN" --addr 10.53.57.23/24
ns-exec -t "$HUB" br-attach --timeout 0 veth23-br
# A host joined as testenv join-host joins one: the hub routes by default through it.
step veth-pair.gateways.json ns-exec -t "$HOST" veth-pair host0 --peer-netns "$HUB" --addr 10.53.57.254/24 \
    --addr fd00::5357:5ffe/112 --peer-default-route --json
ns-exec -t "$HUB" br-attach --timeout 0 host0-br
settle "$HUB" "$AD" "$ODD" "$PLAIN" "$HOST"

step ns-ls.impaired.table ns-ls
step ns-ls.impaired.topology ns-ls --topology
step ns-ls.impaired.dot ns-ls --topology --dot
step ns-ls.impaired.json ns-ls -p "$AD" -J
step ns-ls.uplinks.table ns-ls -o NS,PID,LABEL,UPLINKS --no-interfaces

ns-unshare --stop "$HUB" "$AD" "$ODD" "$HOST"
kill "$PLAIN"
"#;

#[test]
fn impairments_routes_and_the_topology_as_dot() {
    let mut sb = sandbox!("impairments_routes_and_the_topology_as_dot");
    let Some(mut sc) = Scenario::run(&mut sb, "golden-impaired", IMPAIRED, true) else { return };
    let mut g = Goldens::new("impairments_routes_and_the_topology_as_dot");
    for id in ["veth-pair.impaired.json", "veth-pair.gateways.json"] {
        let c = sc.ok(id);
        let raw = parse_json(&c.stdout).unwrap();
        let j = sc.norm.json(&raw, "", None);
        g.json(id, &j);
    }
    for id in ["veth-pair.shape", "veth-pair.shape-peer"] {
        let c = sc.ok(id);
        let text = format!("{}{}", sc.header(&c), sc.norm.text(&c.stdout));
        g.text(id, &text);
    }
    for (id, columns) in
        [("ns-ls.impaired.table", "NS,TYPE,NPROCS,PID,LABEL,COMMAND"), ("ns-ls.uplinks.table", "NS,PID,LABEL,UPLINKS")]
    {
        let c = sc.ok(id);
        let columns: Vec<&str> = columns.split(',').collect();
        let mut problems = Vec::new();
        let table = sc.norm.table(&c.stdout, &columns, true, &mut problems);
        let text = format!("{}{table}", sc.header(&c));
        g.text(id, &text);
        for p in problems {
            g.fail(format!("{id}: {p}"));
        }
    }
    for id in ["ns-ls.impaired.topology", "ns-ls.impaired.dot"] {
        let c = sc.ok(id);
        let text = format!("{}{}", sc.header(&c), sc.norm.text(&c.stdout));
        g.text(id, &text);
    }
    let c = sc.ok("ns-ls.impaired.json");
    let raw = parse_json(&c.stdout).unwrap();
    let j = sc.norm.json(&sc.norm.canonical(&raw), "", None);
    g.json("ns-ls.impaired.json", &j);
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Namespaces joined directly by veth pairs, no bridge (issue 22): the README's own example
// (`veth-pair v0 --netns lab ...` from the namespace ns-ls then runs in, `host`, whose end is
// listed first; then `--shape v0 --netns lab`) and two holders joined to each other; and a process whose command line holds control characters,
// escaped in the table as lsns escapes them. Added outputs, in a topology of their own.

const PAIRS: &str = r#"
HOST=$(ns-unshare --name host)
LAB=$(ns-unshare --name lab)
ns-exec -t "$HOST" veth-pair v0 --netns lab --addr 192.0.2.1/24 --peer-addr 192.0.2.2/24 \
    --mac 02:00:00:00:02:01 --peer-mac 02:00:00:00:02:02
ns-exec -t "$HOST" veth-pair --shape v0 --netns lab --rate 8mbit
A=$(ns-unshare --name alpha)
B=$(ns-unshare --name beta)
ns-exec -t "$B" veth-pair b0 --netns "$A" --addr 198.51.100.1/24 --peer-addr 198.51.100.2/24 \
    --mac 02:00:00:00:03:01 --peer-mac 02:00:00:00:03:02
# A command line with a newline, an escape and a backslash-x of its own.
unshare --net sh -c 'sleep infinity; : "$0"' "$(printf 'line one\nline two \033[1mbold\\x41')" &
ODD=$!
i=0
until pgrep -P "$ODD" -x sleep > /dev/null; do
    i=$((i + 1))
    [ "$i" -lt 500 ] || { echo "scenario: process $ODD did not start sleep" >&2; exit 1; }
    sleep 0.01
done
settle "$HOST" "$LAB" "$A" "$B"

step ns-ls.pairs.topology ns-exec -t "$HOST" ns-ls --topology
step ns-ls.pairs.topology-p ns-ls --topology -p "$B"
step ns-ls.pairs.dot ns-exec -t "$HOST" ns-ls --topology --dot
step ns-ls.pairs.json ns-exec -t "$HOST" ns-ls -J
step ns-ls.control.table ns-ls --no-interfaces

ns-unshare --stop "$HOST" "$LAB" "$A" "$B"
kill "$ODD"
"#;

#[test]
fn veth_pairs_without_a_bridge_and_control_characters() {
    let mut sb = sandbox!("veth_pairs_without_a_bridge_and_control_characters");
    let Some(mut sc) = Scenario::run(&mut sb, "golden-pairs", PAIRS, true) else { return };
    let mut g = Goldens::new("veth_pairs_without_a_bridge_and_control_characters");
    for id in ["ns-ls.pairs.topology", "ns-ls.pairs.topology-p", "ns-ls.pairs.dot"] {
        let c = sc.ok(id);
        let text = format!("{}{}", sc.header(&c), sc.norm.text(&c.stdout));
        g.text(id, &text);
    }
    let c = sc.ok("ns-ls.pairs.json");
    let raw = parse_json(&c.stdout).unwrap();
    let j = sc.norm.json(&sc.norm.canonical(&raw), "", None);
    g.json("ns-ls.pairs.json", &j);
    // JSON keeps the command line as it is; the table escapes it, one row a line.
    let odd = "sh -c sleep infinity; : \"$0\" line one\nline two \u{1b}[1mbold\\x41";
    let commands: Vec<&str> = raw
        .get("namespaces")
        .map(J::arr)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.get("command").and_then(J::str))
        .collect();
    assert!(commands.contains(&odd), "ns-ls -J keeps the real command line: {commands:?}");
    let c = sc.ok("ns-ls.control.table");
    assert!(
        c.stdout.contains("line one\\x0aline two \\x1b[1mbold\\x5cx41\n"),
        "the table escapes control characters as lsns does:\n{}",
        c.stdout
    );
    let columns = ["NS", "TYPE", "NPROCS", "PID", "LABEL", "COMMAND"];
    let mut problems = Vec::new();
    let table = sc.norm.table(&c.stdout, &columns, true, &mut problems);
    g.text("ns-ls.control.table", &format!("{}{table}", sc.header(&c)));
    for p in problems {
        g.fail(format!("ns-ls.control.table: {p}"));
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Error messages and exit codes.

const ERRORS_SETUP: &str = r#"
HUB=$(ns-unshare --name hub)
HUB_NS=$(stat -L -c %i "/proc/$HUB/ns/net")
ns-exec -t "$HUB" br-attach --create --addr 10.53.57.11/24
AD=$(ns-unshare --name ad_dc)
ns-exec -t "$HUB" veth-pair veth21 --netns "$AD"
ns-exec -t "$HUB" br-attach --timeout 0 veth21-br
unshare --net sleep infinity &
PLAIN=$!
started "$PLAIN"
ns-unshare --stop "$(ns-unshare --bind /run/netns/golden)"
printf 'A=1\nnot a line\n' > "$D/bad.env"
printf 'echo hi\n' > "$D/noexec"
chmod 644 "$D/noexec"
echo "$HUB $AD $PLAIN" > "$OUT/hub-ad-plain"
"#;

const ERRORS_TEARDOWN: &str = r#"
ns-unshare --stop "$HUB" "$AD"
kill "$PLAIN"
"#;

/// Bad inputs: (what feeds stdin, if anything; the command, in the scenario's shell: `$HUB` and
/// `$AD` are holders (the hub holds the bridge selftest0 with the port veth21-br, whose peer
/// veth21 is in ad_dc), `$HUB_NS` the hub's network namespace inode, `$PLAIN` a process that is
/// not a holder, `$D` a directory with `bad.env` (a bad line 2) and `noexec` (mode 644);
/// `/run/netns/golden` is a namespace kept by its bind mount). Chosen so that no message
/// depends on the machine.
const ERROR_CASES: &[(&str, &str)] = &[
    // ns-unshare
    ("", "ns-unshare --bogus"),
    ("", "ns-unshare --json --print pid:inode"),
    ("", "ns-unshare --print bogus"),
    ("", "ns-unshare --exit-with 0"),
    ("", "ns-unshare --exit-with abc"),
    ("", "ns-unshare --exit-with 2147483646"),
    ("", "ns-unshare --hostname 'bad name'"),
    ("", "ns-unshare --bind-file nocolon"),
    ("", "ns-unshare --name ''"),
    ("", "ns-unshare --stop"),
    ("", "ns-unshare --stop 2147483646"),
    ("", "ns-unshare --stop \"$PLAIN\""),
    ("", "ns-unshare --stop \"$HUB:1\""),
    ("", "ns-unshare --stop golden"),
    ("", "ns-unshare --stop \"$HUB\" --name x"),
    ("", "ns-unshare --bind /run/netns/golden"),
    ("", "ns-unshare --bind \"$D/nodir/x\""),
    // veth-pair
    ("", "veth-pair"),
    ("", "veth-pair abcdefghijklmnop"),
    ("", "veth-pair ''"),
    ("", "veth-pair a/b"),
    ("", "veth-pair 'a b'"),
    ("", "veth-pair a:b"),
    ("", "veth-pair .."),
    ("", "veth-pair abcdefghijklm"),
    ("", "veth-pair v0 --peer-name x/y"),
    ("", "veth-pair v0 --peer-name v0"),
    ("", "veth-pair v0 --addr 10.0.0/24"),
    ("", "veth-pair v0 --addr 10.0.0.1/33"),
    ("", "veth-pair v0 --addr fd00::1/129"),
    ("", "veth-pair v0 --addr 10.0.0.0/24"),
    ("", "veth-pair v0 --addr 10.0.0.255/24"),
    ("", "veth-pair v0 --addr 224.0.0.1/24"),
    ("", "veth-pair v0 --addr ::/64"),
    ("", "veth-pair v0 --peer-addr ::ffff:10.0.0.1/120"),
    ("", "veth-pair v0 --mac 01:00:00:00:00:00"),
    ("", "veth-pair v0 --mac zz"),
    ("", "veth-pair v0 --mtu 10"),
    ("", "veth-pair v0 --bogus"),
    ("", "veth-pair v0 --netns 0"),
    ("", "veth-pair v0 --netns 1:x"),
    ("", "veth-pair v0 --netns 2147483646"),
    ("", "veth-pair v0 --netns \"$AD:$HUB_NS\""),
    ("", "veth-pair v0 --peer-netns /proc/self/status"),
    ("", "veth-pair v0 --netns /run/netns"),
    ("", "veth-pair v0 --netns /proc/self/ns/uts"),
    ("", "veth-pair v0 --netns no-such-netns"),
    ("", "veth-pair --delete v0 --addr 10.0.0.1/24"),
    ("", "veth-pair v0 --missing-ok"),
    ("", "veth-pair --delete nosuch0"),
    ("", "veth-pair --delete selftest0 --netns \"$HUB\""),
    ("", "veth-pair v0 --delay 100"),
    ("", "veth-pair v0 --delay 61s"),
    ("", "veth-pair v0 --jitter 10ms"),
    ("", "veth-pair v0 --delay 5ms --jitter 10ms"),
    ("", "veth-pair v0 --loss 101%"),
    ("", "veth-pair v0 --rate 7kbit"),
    ("", "veth-pair v0 --rate 10mbps2"),
    ("", "veth-pair v0 --peer-default-route"),
    ("", "veth-pair v0 --addr 10.0.0.1/24 --peer-default-route"),
    ("", "veth-pair --delete v0 --rate 1mbit"),
    ("", "veth-pair v0 --clear"),
    ("", "veth-pair --shape v0"),
    ("", "veth-pair --shape v0 --clear --rate 1mbit"),
    ("", "veth-pair --shape v0 --peer-addr 10.0.0.1/24 --rate 1mbit"),
    ("", "veth-pair --shape v0 --json --rate 1mbit"),
    ("", "veth-pair --shape nosuch0 --rate 1mbit"),
    ("", "veth-pair --shape nosuch0 --clear"),
    ("", "veth-pair --shape veth21 --netns \"$AD\" --rate 7kbit"),
    // br-attach
    ("", "br-attach"),
    ("", "br-attach --addr 10.0.0.1/24"),
    ("", "br-attach --timeout abc x0"),
    ("", "br-attach --timeout -1 x0"),
    ("", "br-attach --bridge '' x0"),
    ("", "br-attach --create --addr 10.0.0.1/33"),
    ("", "br-attach --netns \"$HUB\" --bridge nosuch veth21-br"),
    ("", "br-attach --netns \"$HUB\" --bridge veth21-br lo"),
    ("", "br-attach --netns \"$HUB\" --timeout 0 nosuch0"),
    ("", "br-attach --netns \"$HUB\" selftest0"),
    ("", "br-attach --netns \"$HUB\" --create --bridge lo"),
    ("", "br-attach --netns \"$AD:1\" x0"),
    ("", "br-attach --netns 2147483646 x0"),
    ("", "br-attach --netns no-such-netns x0"),
    // ns-exec
    ("", "ns-exec -t \"$HUB\" nosuchcmd-golden"),
    ("", "ns-exec -t \"$HUB\" \"$D/noexec\""),
    ("", "ns-exec -t \"$HUB\" /"),
    ("", "ns-exec -t 2147483646 true"),
    ("", "ns-exec -t \"$HUB:1\" true"),
    ("", "ns-exec -t /proc/self/status true"),
    ("", "ns-exec -t no-such-netns true"),
    ("", "ns-exec -t 0 true"),
    ("", "ns-exec -t 1:x true"),
    ("", "ns-exec --bogus"),
    ("", "ns-exec -t \"$HUB\" --env-file \"$D/missing\" true"),
    ("", "ns-exec -t \"$HUB\" --env-file \"$D/bad.env\" true"),
    ("", "ns-exec -t golden --all true"),
    ("", "ns-exec -t \"$HUB\" --wd \"$D/nosuchdir\" true"),
    ("", "ns-exec true"),
    ("printf '1\\n2\\n'", "ns-exec true"),
    ("printf '{bad json\\n'", "ns-exec true"),
    ("printf '{\"pid\":null}\\n'", "ns-exec true"),
    ("printf '{\"target\":\"2147483646:1\"}\\n'", "ns-exec true"),
    ("printf '..\\n'", "ns-exec true"),
    ("printf '\\377\\376\\n'", "ns-exec true"),
    ("printf '2147483646\\n'", "ns-exec true"),
    ("head -c 5000 /dev/zero | tr '\\0' x", "ns-exec true"),
    // ns-ls
    ("", "ns-ls -o NS,BOGUS"),
    ("", "ns-ls -o ''"),
    ("", "ns-ls -t bogus"),
    ("", "ns-ls -t"),
    ("", "ns-ls -p 0"),
    ("", "ns-ls -p 2147483646"),
    ("", "ns-ls --topology --json"),
    ("", "ns-ls --topology -o NS"),
    ("", "ns-ls --bogus"),
    ("", "ns-ls --dot"),
    ("", "ns-ls --topology --dot --json"),
];

const ERRORS_HEADER: &str = "\
# Bad inputs: for each, the command, its exit code and its one line on stderr (nothing on stdout).
# tests/golden.rs (error_messages_and_exit_codes) runs them in a fixed scenario: <PID1> is the
# holder 'hub' with the bridge selftest0 and its port veth21-br, <PID2> the holder 'ad_dc'
# with veth21, <PID3> a process that is no holder; /run/netns/golden is a namespace kept by its
# bind mount; <TMP> a directory with bad.env (line 2 is bad) and noexec (mode 644).
# COMMAND => EXIT => STDERR
";

#[test]
fn error_messages_and_exit_codes() {
    let mut sb = sandbox!("error_messages_and_exit_codes");
    let mut body = String::from(ERRORS_SETUP);
    for (i, (stdin, cmd)) in ERROR_CASES.iter().enumerate() {
        if stdin.is_empty() {
            writeln!(body, "cap e{i:03} {cmd}").unwrap();
        } else {
            writeln!(body, "{stdin} | cap e{i:03} {cmd}").unwrap();
        }
    }
    body.push_str(ERRORS_TEARDOWN);
    let Some(mut sc) = Scenario::run(&mut sb, "golden-errors", &body, false) else { return };
    // The holders first, in that order (see ERRORS_HEADER); then every case.
    let setup = std::fs::read_to_string(sc.dir.join("hub-ad-plain")).unwrap();
    for pid in setup.split_whitespace().filter_map(|p| p.parse().ok()) {
        sc.norm.pid(pid);
    }
    let mut g = Goldens::new("error_messages_and_exit_codes");
    let mut text = String::from(ERRORS_HEADER);
    for (i, (stdin, _)) in ERROR_CASES.iter().enumerate() {
        let c = sc.capture(&format!("e{i:03}"));
        let mut shown = sc.header(&c)[2..].trim_end().to_owned();
        if !stdin.is_empty() {
            shown = format!("{stdin} | {shown}");
        }
        let stderr = sc.norm.text(c.stderr.strip_suffix('\n').unwrap_or(&c.stderr)).replace('\n', "\\n");
        write!(text, "{shown} => {} => {stderr}", c.code).unwrap();
        if !c.stdout.is_empty() {
            write!(text, " (stdout: {:?})", sc.norm.text(&c.stdout)).unwrap();
        }
        text.push('\n');
    }
    g.text("errors.txt", &text);
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// --help, -h, --version.

const TOOLS: [&str; 5] = ["ns-unshare", "veth-pair", "br-attach", "ns-exec", "ns-ls"];

#[test]
fn help_and_version() {
    let mut g = Goldens::new("help_and_version");
    let mut versions = String::new();
    for tool in TOOLS {
        for (flag, file) in [("-h", format!("help/{tool}.txt")), ("--help", format!("help/{tool}.long.txt"))] {
            let out = Command::new(nstools_tests::bin(tool))
                .arg(flag)
                .env("COLUMNS", "100")
                .env("NO_COLOR", "1")
                .env_remove("CLICOLOR_FORCE")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(0) || !stderr.is_empty() {
                g.fail(format!("{tool} {flag}: exit {:?}, stderr {stderr:?}", out.status.code()));
            }
            g.text(&file, &String::from_utf8_lossy(&out.stdout));
        }
        let out = Command::new(nstools_tests::bin(tool)).arg("--version").stdin(Stdio::null()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).replace(env!("CARGO_PKG_VERSION"), "<VERSION>");
        write!(versions, "$ {tool} --version\n{stdout}").unwrap();
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            g.fail(format!("{tool} --version: exit {:?}, stderr {:?}", out.status.code(), out.stderr));
        }
    }
    g.text("help/versions.txt", &versions);
    g.finish();
}
