//! [`Filter`]: which notifications a listener's handler sees, by event type and publisher
//! (oslo's `NotificationFilter`, with glob patterns instead of regexes).

/// A glob over a name: `*` matches any run of characters (none included), everything else
/// itself. `trove.instance.usage` is exact, `trove.instance.*` a prefix, `*` anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// The pattern `glob`.
    pub fn new(glob: impl Into<String>) -> Self {
        Self(glob.into())
    }

    /// True when `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let Some(first) = parts.next() else {
            return name.is_empty();
        };
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty(); // no `*`: exact
        };
        for part in middle {
            match rest.find(part) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// What a listener accepts: every set pattern must match (unset: anything). Filtered-out
/// notifications are acknowledged and dropped, never handed to the handler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    event_type: Option<Pattern>,
    publisher_id: Option<Pattern>,
}

impl Filter {
    /// Accepts everything.
    pub fn any() -> Self {
        Self::default()
    }

    /// Accepts event types matching `glob`.
    pub fn event_type(glob: impl Into<String>) -> Self {
        Self::default().and_event_type(glob)
    }

    /// Accepts publishers matching `glob`.
    pub fn publisher_id(glob: impl Into<String>) -> Self {
        Self::default().and_publisher_id(glob)
    }

    /// Also requires the event type to match `glob`.
    pub fn and_event_type(mut self, glob: impl Into<String>) -> Self {
        self.event_type = Some(Pattern::new(glob));
        self
    }

    /// Also requires the publisher id to match `glob`.
    pub fn and_publisher_id(mut self, glob: impl Into<String>) -> Self {
        self.publisher_id = Some(Pattern::new(glob));
        self
    }

    /// True when a notification of `event_type` from `publisher_id` passes.
    pub fn accepts(&self, event_type: &str, publisher_id: &str) -> bool {
        self.event_type
            .as_ref()
            .is_none_or(|p| p.matches(event_type))
            && self
                .publisher_id
                .as_ref()
                .is_none_or(|p| p.matches(publisher_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |g: &str, n: &str| Pattern::new(g).matches(n);
        assert!(m("trove.instance.usage", "trove.instance.usage"));
        assert!(!m("trove.instance.usage", "trove.instance.usage2"));
        assert!(m("trove.instance.*", "trove.instance.usage"));
        assert!(m("trove.instance.*", "trove.instance."));
        assert!(!m("trove.instance.*", "trove.backup.create"));
        assert!(m("*", ""));
        assert!(m("*.usage", "trove.instance.usage"));
        assert!(m("a*b*c", "aXbYc"));
        assert!(!m("a*b*c", "aXcYb"));
        assert!(!m("ab*ba", "aba"), "prefix and suffix may not overlap");
        assert!(!m("", "x"));
    }

    #[test]
    fn filters_combine() {
        let f = Filter::event_type("trove.*").and_publisher_id("guestagent.*");
        assert!(f.accepts("trove.instance.usage", "guestagent.7f3a"));
        assert!(!f.accepts("nova.instance.usage", "guestagent.7f3a"));
        assert!(!f.accepts("trove.instance.usage", "taskmanager.h1"));
        assert!(Filter::any().accepts("x", "y"));
    }
}
