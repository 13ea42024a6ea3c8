//! Interface names: the kernel's rules (`dev_valid_name`), checked before any request so that
//! a bad name gets a message naming the problem instead of a bare EINVAL.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Longest interface name in bytes (`IFNAMSIZ` - 1).
pub const MAX_LEN: usize = 15;

/// A valid interface name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

/// Quote a user-given string for a message: `'name'`, control characters escaped.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.escape_debug())
}

/// Why `name` is not a valid interface name, if it is not.
fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name == "." || name == ".." {
        return Some("'.' and '..' are reserved".into());
    }
    if let Some(c) = name.chars().find(|c| !c.is_ascii()) {
        return Some(format!("contains the non-ASCII character '{c}'; use ASCII letters, digits, '-', '_' or '.'"));
    }
    if let Some(c) = name.chars().find(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return Some(format!("contains the control or space character {:?}", c));
    }
    if name.contains('/') {
        return Some("must not contain '/'".into());
    }
    if name.contains(':') {
        return Some("must not contain ':' (reserved for alias labels)".into());
    }
    if name.len() > MAX_LEN {
        return Some(format!("is {} bytes long; the kernel's limit is {MAX_LEN}", name.len()));
    }
    None
}

impl IfName {
    /// Check `name` against the kernel's rules.
    pub fn new(name: &str) -> Result<Self> {
        match problem(name) {
            None => Ok(IfName(name.to_owned())),
            Some(why) => Err(Error::usage(format!("invalid interface name {}", quote(name))).detail(why)),
        }
    }

    /// The default name of a veth peer: `NAME-br`.
    pub fn peer_of(&self) -> Result<Self> {
        let peer = format!("{}-br", self.0);
        IfName::new(&peer).map_err(|_| {
            Error::usage(format!("invalid interface name {}", quote(&self.0))).detail(format!(
                "its peer name {} would be {} bytes long, over the kernel's limit of {MAX_LEN}; \
                 use a name of at most {} bytes or pass --peer-name",
                quote(&peer),
                peer.len(),
                MAX_LEN - 3
            ))
        })
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IfName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        IfName::new(s)
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for IfName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(name: &str) -> String {
        IfName::new(name).unwrap_err().to_string()
    }

    #[test]
    fn accepts_kernel_valid_names() {
        for ok in ["veth21", "veth21-br", "selftest0", "a", "x.y_z-1", "123456789012345"] {
            assert_eq!(IfName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_with_reason() {
        assert_eq!(why(""), "invalid interface name '': must not be empty");
        assert!(why("1234567890123456").contains("16 bytes long; the kernel's limit is 15"));
        assert!(why(".").contains("reserved"));
        assert!(why("..").contains("reserved"));
        assert!(why("a/b").contains("'/'"));
        assert!(why("a:b").contains("':'"));
        assert!(why("a b").contains("space"));
        assert!(why("a\tb").contains("\\t"));
        assert!(why("a\nb").contains("'a\\nb'"));
        assert!(why("vé").contains("non-ASCII"));
        for name in ["", ".", "a/b", "a b", "a\nb", "1234567890123456"] {
            let e = IfName::new(name).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn peer_name() {
        assert_eq!(IfName::new("veth21").unwrap().peer_of().unwrap().as_str(), "veth21-br");
        assert_eq!(IfName::new("123456789012").unwrap().peer_of().unwrap().as_str(), "123456789012-br");
        let e = IfName::new("1234567890123").unwrap().peer_of().unwrap_err().to_string();
        assert!(e.contains("--peer-name"), "{e}");
    }
}
