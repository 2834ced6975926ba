//! One epoch counter (control plane, broadcast key, or one guest) and its acceptance rule.

use serde::{Deserialize, Serialize};

use sealrpc_core::security::KeyError;

use super::INITIAL_EPOCH;

/// One epoch counter and when it last moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochState {
    /// The current epoch.
    pub epoch: u64,
    /// When the current epoch became current (unix ms), if it was reached by a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at_ms: Option<u64>,
}

impl EpochState {
    pub(crate) const fn initial() -> Self {
        Self {
            epoch: INITIAL_EPOCH,
            rotated_at_ms: None,
        }
    }

    pub(crate) fn rotate(&mut self, now_ms: u64) -> u64 {
        self.epoch = self.epoch.saturating_add(1);
        self.rotated_at_ms = Some(now_ms);
        self.epoch
    }

    /// True while the previous epoch is still accepted.
    pub fn previous_in_grace(&self, now_ms: u64, grace_ms: u64) -> bool {
        self.epoch > 0
            && self
                .rotated_at_ms
                .is_some_and(|t| now_ms < t.saturating_add(grace_ms))
    }

    pub(crate) fn check(&self, epoch: u64, now_ms: u64, grace_ms: u64) -> Result<(), KeyError> {
        if epoch == self.epoch {
            Ok(())
        } else if epoch > self.epoch {
            Err(KeyError::UnknownKey)
        } else if epoch + 1 == self.epoch && self.previous_in_grace(now_ms, grace_ms) {
            Ok(())
        } else {
            Err(KeyError::Stale)
        }
    }
}
