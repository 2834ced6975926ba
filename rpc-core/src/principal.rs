//! Principals: who a message is from, as proven by a key (never by a header's claim alone).

use std::fmt;

/// An authenticated identity: `control`, `control:<service>`, `guest:<instance-id>` or `guests`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    /// The control plane as a whole (what a k1 or k2 seal proves).
    pub fn control() -> Self {
        Self("control".to_owned())
    }

    /// A control-plane service, e.g. `control:conductor`.
    pub fn service(name: &str) -> Option<Self> {
        Self::parse(&format!("control:{name}"))
    }

    /// A guest instance, e.g. `guest:7f3a...`.
    pub fn guest(instance_id: &str) -> Option<Self> {
        Self::parse(&format!("guest:{instance_id}"))
    }

    /// The guests as a group (the broadcast key's owner).
    pub fn guests() -> Self {
        Self("guests".to_owned())
    }

    /// Parses a principal: `control`, `control:<name>`, `guest:<id>` or `guests`, where the
    /// name or id is non-empty, printable ASCII and holds no `/`.
    pub fn parse(s: &str) -> Option<Self> {
        is_valid(s).then(|| Self(s.to_owned()))
    }

    /// The instance id of `s` when it is a valid `guest:<id>` principal, without building
    /// one (what a claimed, unproven `src` names).
    pub fn guest_id_of(s: &str) -> Option<&str> {
        s.strip_prefix("guest:").filter(|_| is_valid(s))
    }

    /// True for `control` and every `control:<service>`.
    pub fn is_control_plane(&self) -> bool {
        self.0 == "control" || self.0.starts_with("control:")
    }

    /// The instance id, for a `guest:<id>` principal.
    pub fn guest_id(&self) -> Option<&str> {
        self.0.strip_prefix("guest:")
    }

    /// The principal as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True for `control`, `control:<name>`, `guest:<id>` and `guests`, where the name or id is
/// non-empty, printable ASCII and holds no `/`.
fn is_valid(s: &str) -> bool {
    let ok_tail = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_graphic() && c != b'/');
    match s {
        "control" | "guests" => true,
        _ => match s.split_once(':') {
            Some(("control", tail)) | Some(("guest", tail)) => ok_tail(tail),
            _ => false,
        },
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_id_of_reads_only_valid_guest_principals() {
        assert_eq!(Principal::guest_id_of("guest:7f3a"), Some("7f3a"));
        for other in [
            "guest:",
            "guest:a/b",
            "guest:a b",
            "guests",
            "control",
            "control:x",
        ] {
            assert_eq!(Principal::guest_id_of(other), None, "{other}");
            let parsed = Principal::parse(other);
            assert_eq!(
                parsed.as_ref().and_then(Principal::guest_id),
                None,
                "{other}"
            );
        }
    }
}
