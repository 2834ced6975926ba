//! The replay-store hook: where a node records the ids it admitted, so that replicas of a
//! service (competing consumers on one topic) and restarts of one share what was seen.
//!
//! The default store is this process's memory ([`ReplayGuard`](super::ReplayGuard)), called
//! synchronously. A shared store (Redis, in `sealrpc-replay-redis`) is registered with
//! [`SecurityConfig::replay_store`](crate::security::SecurityConfig::replay_store); the
//! receive pipeline then awaits it, within a bounded wait, and refuses the message
//! (`ReplayStoreUnavailable`) when it does not answer in time: never admitted unchecked.
//!
//! A store applies, as one atomic step per id, what the in-process ledger does under its
//! lock: forget ids stamped before the window (`now_ms - skew_ms`), look the id up (and the
//! principal's watermark), decide by the quota (see [`ReplayConfig`] and
//! [`quota_rule`]), evict the largest guest's oldest id when the quota says so, and record
//! the id with its `ts`, until `ts + skew_ms`.

use async_trait::async_trait;

use super::ReplayConfig;
use crate::security::reject::RejectReason;
use crate::wire::MessageId;

/// One id to check and record: everything a store needs, including the limits in force.
#[derive(Debug, Clone, Copy)]
pub struct ReplayCheck<'a> {
    /// The authenticated principal (`guest:<id>` is a guest; anything else control plane).
    pub principal: &'a str,
    /// The message id.
    pub id: MessageId,
    /// The message's `ts` (unix ms), already checked against the window.
    pub ts: u64,
    /// The receiver's clock (unix ms).
    pub now_ms: u64,
    /// The window and the quota (the receiver's [`ReplayConfig`]).
    pub config: &'a ReplayConfig,
}

impl ReplayCheck<'_> {
    /// True when the principal is a guest (its ids count against the guests' room).
    pub fn is_guest(&self) -> bool {
        self.principal.starts_with("guest:")
    }

    /// Ids stamped before this are forgotten: they can no longer pass the time check.
    pub fn oldest(&self) -> u64 {
        self.now_ms.saturating_sub(self.config.skew_ms)
    }

    /// The last instant (unix ms) at which this id could still pass the time check: the
    /// store must remember it until then.
    pub fn keep_until(&self) -> u64 {
        self.ts.saturating_add(self.config.skew_ms)
    }
}

/// What a store made of one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayVerdict {
    /// Not seen before: recorded now.
    Recorded,
    /// Seen within the window (`Replay`).
    Replay,
    /// No room for this principal, or stamped at or before its watermark
    /// (`ReplayGuardFull`, fail closed).
    Full,
    /// Stamped before the store started, which it cannot tell from a replay
    /// (`StampedBeforeStart`, the in-process store's restart rule).
    BeforeStart,
}

impl ReplayVerdict {
    /// `Ok` for [`Recorded`](Self::Recorded), else the rejection reason.
    pub fn into_result(self) -> Result<(), RejectReason> {
        match self {
            ReplayVerdict::Recorded => Ok(()),
            ReplayVerdict::Replay => Err(RejectReason::Replay),
            ReplayVerdict::Full => Err(RejectReason::ReplayGuardFull),
            ReplayVerdict::BeforeStart => Err(RejectReason::StampedBeforeStart),
        }
    }

    /// The verdict a rejection reason of the in-process guard stands for.
    pub(crate) fn from_result(result: Result<(), RejectReason>) -> Self {
        match result {
            Ok(()) => ReplayVerdict::Recorded,
            Err(RejectReason::Replay) => ReplayVerdict::Replay,
            Err(RejectReason::StampedBeforeStart) => ReplayVerdict::BeforeStart,
            Err(_) => ReplayVerdict::Full,
        }
    }
}

/// A store that could not answer (unreachable, timed out, a script error): the message is
/// refused. The text names the failure's kind only, never an address or a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replay store unavailable: {0}")]
pub struct ReplayStoreError(String);

impl ReplayStoreError {
    /// An error described by `what` (keep addresses and credentials out of it).
    pub fn new(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

/// Where a node records the ids it admitted (rustls-style provider hook).
///
/// `check_and_record` must be atomic per id across every node sharing the store: of two
/// concurrent checks of the same `(principal, id)`, exactly one is `Recorded`. It applies
/// the quota of [`ReplayConfig`] (the same rule as [`quota_rule`]) so that guests cannot
/// take the control plane's room, nor a guest under its fair share's.
#[async_trait]
pub trait ReplayStore: Send + Sync + std::fmt::Debug {
    /// Checks `check.id` for `check.principal` and records it if fresh.
    async fn check_and_record(
        &self,
        check: ReplayCheck<'_>,
    ) -> Result<ReplayVerdict, ReplayStoreError>;
}

/// The quota rule in plain numbers, for stores that implement it elsewhere (a script): the
/// decision for a principal holding `own` ids when control-plane principals hold `control`,
/// guests `guests`, and `guest_holders` guests hold at least one. Returns
/// `Some(false)` to admit, `Some(true)` to admit after the largest guest gives up its
/// oldest id, `None` to refuse.
pub fn quota_rule(
    config: &ReplayConfig,
    guest: bool,
    own: usize,
    control: usize,
    guests: usize,
    guest_holders: usize,
) -> Option<bool> {
    use super::quota::{Decision, Holdings};
    let h = Holdings {
        own,
        control,
        guests,
        guest_holders,
    };
    let quota = config.quota();
    let decision = if guest {
        quota.guest(&h)
    } else {
        quota.control(&h)
    };
    match decision {
        Decision::Admit => Some(false),
        Decision::EvictLargestGuest => Some(true),
        Decision::Refuse => None,
    }
}
