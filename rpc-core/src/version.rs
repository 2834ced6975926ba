//! Interface versions: `"major.minor"`; a server serves every minor up to its own.

use std::fmt;

/// An interface version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible changes bump the major.
    pub major: u32,
    /// Compatible additions bump the minor.
    pub minor: u32,
}

impl Version {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Parses `"N.N"`: two decimals without signs or leading zeros.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        let num = |t: &str| {
            let canonical = !t.is_empty()
                && t.bytes().all(|c| c.is_ascii_digit())
                && (t == "0" || !t.starts_with('0'));
            canonical.then(|| t.parse::<u32>().ok()).flatten()
        };
        Some(Self::new(num(a)?, num(b)?))
    }

    /// True when a server at `self` can serve a request for `requested`: same major, and a
    /// minor no newer than its own.
    pub fn can_serve(&self, requested: Version) -> bool {
        self.major == requested.major && requested.minor <= self.minor
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}
