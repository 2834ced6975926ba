//! The in-process store's restart rule: its memory starts empty, so it cannot know which
//! ids a previous incarnation of the process admitted.

/// What the in-process replay store does with an authenticated message stamped before the
/// store started (set with
/// [`SecurityConfig::restart_rule`](crate::security::SecurityConfig::restart_rule)).
///
/// A restarted receiver with an empty memory would otherwise accept, for one window
/// (`skew_ms`), a replay of any message its previous incarnation admitted. The rule
/// applies only while the receiver's clock is at or after the start (a clock set before
/// it, as golden vectors and inspection tools use, is not a restart), and only for the
/// first window: later, a message stamped before the start fails the time check anyway.
///
/// The cost is the race at boot: a message stamped just before the start and delivered
/// after it (queued in the broker while the process restarted) is refused too
/// (`StampedBeforeStart`; a call gets the coarse `Replay` code and may be sent again with
/// a new id, a cast is dropped, which at-most-once casts allow). A shared store
/// ([`ReplayStore`](super::ReplayStore)) has no such gap: replicas and restarts see the
/// same ids, and this rule does not apply to it.
///
/// Not covered: an id stamped after the start by a sender whose clock runs ahead (within
/// `future_skew_ms`), that the previous incarnation admitted shortly before it stopped.
/// Lower `future_skew_ms`, or use a shared store, where that matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartRule {
    /// Refuse what the store cannot know it has not seen: messages stamped before it
    /// started, during its first window (the default: fail closed).
    #[default]
    RefuseBeforeStart,
    /// Accept them: after a restart, a replay of a message admitted within the last window
    /// by the previous incarnation is accepted. For one-shot verifiers (an inspection
    /// tool) and for nodes whose transport cannot redeliver old traffic.
    Off,
}

impl RestartRule {
    /// True when a message stamped `ts`, received at `now_ms` by a store started at
    /// `started_ms`, is refused.
    pub(crate) fn refuses(self, started_ms: u64, ts: u64, now_ms: u64) -> bool {
        self == RestartRule::RefuseBeforeStart && now_ms >= started_ms && ts < started_ms
    }
}
