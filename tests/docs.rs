//! The documentation holds together: every relative link of the README, `docs/` and the other
//! top-level Markdown files points at a file that exists and, with `#anchor`, at a heading in
//! it (GitHub's anchors); the README stays short enough to read in two minutes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::path::{Path, PathBuf};

use nstools_tests::workspace;

/// The Markdown files checked.
fn pages() -> Vec<PathBuf> {
    let root = workspace();
    let mut pages: Vec<PathBuf> =
        ["README.md", "CHANGELOG.md", "BENCHMARKS.md"].iter().map(|p| root.join(p)).filter(|p| p.exists()).collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The links `[text](target)` of a Markdown text, outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans: a link inside backticks is text.
        let mut plain = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_link_points_at_something_that_exists() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let dir = page.parent().unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target: PathBuf = if file.is_empty() { page.clone() } else { dir.join(file) };
            let shown = page.strip_prefix(workspace()).unwrap_or(&page).display().to_string();
            if !target.exists() {
                broken.push(format!("{shown}: {link}: {} does not exist", target.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&text).iter().any(|a| a == anchor) {
                    broken.push(format!("{shown}: {link}: no heading with that anchor in {}", target.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "only {checked} links found: is the parser right?");
}

#[test]
fn the_readme_is_short_and_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    assert!(readme.len() <= 12 * 1024, "README.md is {} bytes; reference material goes to docs/", readme.len());
    let first_block = readme.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<&str> = first_block.lines().map(|l| l.split_whitespace().next().unwrap_or("")).collect();
    assert_eq!(commands, ["scripts/demo", "scripts/test"], "the first commands of the README");
    // The test command is the one CI runs.
    let ci = std::fs::read_to_string(workspace().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "scripts/test"), ".ci/run runs the README's test command");
    assert!(Path::new(&workspace().join("scripts/demo")).exists());
}

#[test]
fn the_parsers_of_this_test() {
    assert_eq!(links("see [a](docs/a.md#x) and `[b](no)` [c](#y)"), ["docs/a.md#x", "#y"]);
    assert_eq!(slug("ns-ls --json"), "ns-ls---json");
    assert_eq!(slug("Which parts need real root, and why"), "which-parts-need-real-root-and-why");
    assert_eq!(slug("`testenv`: Samba-style testenvs"), "testenv-samba-style-testenvs");
}

/// The README's picture of the demo's topology and its alt text name the same namespaces: each
/// box's title (its label; a PID in it as `PID`) is in the alt text (issue 22: the alt text said
/// "selftest namespace" where the box said `nstools-demo-13187`).
#[test]
fn the_topology_pictures_alt_text_names_its_boxes() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let alt = readme
        .lines()
        .find_map(|l| l.strip_prefix("![")?.split_once("](docs/topology.svg)").map(|(alt, _)| alt))
        .expect("the README shows docs/topology.svg");
    let svg = std::fs::read_to_string(workspace().join("docs/topology.svg")).unwrap();
    let texts: Vec<String> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.replace("&#45;", "-")))
        .collect();
    // A box's title is the line above its "pid N, netns M".
    let titles: Vec<String> = texts
        .windows(2)
        .filter(|w| w[1].starts_with("pid "))
        .map(|w| match w[0].rsplit_once('-') {
            Some((head, pid)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => format!("{head}-PID"),
            _ => w[0].clone(),
        })
        .collect();
    assert_eq!(titles.len(), 3, "the demo's three namespaces: {texts:?}");
    for title in titles {
        assert!(alt.contains(&title), "the alt text does not name the box {title:?}: {alt}");
    }
}
