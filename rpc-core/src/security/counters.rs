//! Counters the application can read: rejections by reason, authorization refusals, and
//! what Permissive let through.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::reject::RejectReason;

/// Security counters of one node (shared by its clients and servers).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    rejected: [AtomicU64; RejectReason::ALL.len()],
    accepted_unauthenticated: AtomicU64,
    accepted_unsealed: AtomicU64,
    accepted: AtomicU64,
    skipped_unknown_algorithm: AtomicU64,
    forbidden: AtomicU64,
}

/// A point-in-time copy of a node's security counters
/// ([`Security::counters`](super::Security::counters)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Rejections by reason (only reasons seen).
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Messages accepted without authentication (Permissive or Off).
    pub accepted_unauthenticated: u64,
    /// Messages accepted unsealed (Permissive or Off).
    pub accepted_unsealed: u64,
    /// Messages accepted in all.
    pub accepted: u64,
    /// Signature items skipped because their algorithm is unknown here.
    pub skipped_unknown_algorithm: u64,
    /// Calls admitted by the pipeline but refused by authorization (`Forbidden`: a
    /// method's [`Access`](crate::Access), an `authorize` check, or a handler's own refusal).
    pub forbidden: u64,
}

impl CounterSnapshot {
    /// Total rejections.
    pub fn total_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Rejections for one reason.
    pub fn rejected_for(&self, reason: RejectReason) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }
}

fn index(reason: RejectReason) -> usize {
    RejectReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0)
}

impl Counters {
    /// Counts one rejection.
    pub fn reject(&self, reason: RejectReason) {
        self.rejected[index(reason)].fetch_add(1, Ordering::Relaxed);
        crate::observe::record_rejection(reason);
    }

    /// Counts one accepted message and what it lacked.
    pub fn accept(&self, authenticated: bool, sealed: bool) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        if !authenticated {
            self.accepted_unauthenticated
                .fetch_add(1, Ordering::Relaxed);
        }
        if !sealed {
            self.accepted_unsealed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one authorization refusal (`Forbidden`).
    pub fn forbid(&self) {
        self.forbidden.fetch_add(1, Ordering::Relaxed);
        crate::observe::record_forbidden();
    }

    /// Counts a skipped signature item.
    pub fn skipped_algorithm(&self) {
        self.skipped_unknown_algorithm
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counters now.
    pub fn snapshot(&self) -> CounterSnapshot {
        let rejected = RejectReason::ALL
            .iter()
            .zip(&self.rejected)
            .filter_map(|(r, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((*r, n))
            })
            .collect();
        CounterSnapshot {
            rejected,
            accepted_unauthenticated: self.accepted_unauthenticated.load(Ordering::Relaxed),
            accepted_unsealed: self.accepted_unsealed.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            skipped_unknown_algorithm: self.skipped_unknown_algorithm.load(Ordering::Relaxed),
            forbidden: self.forbidden.load(Ordering::Relaxed),
        }
    }
}
