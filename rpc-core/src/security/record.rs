//! The replay step of the receive pipeline: record `(principal, id)` in the in-process
//! store at once, or in the shared store within a bounded wait (fail closed).

use super::Security;
use super::reject::RejectReason;
use super::replay::{ReplayCheck, ReplayStoreError};
use crate::principal::Principal;
use crate::wire::Header;

impl Security {
    /// Records in this process's memory; with a shared store registered the synchronous
    /// pipeline cannot wait for it, and refuses.
    pub(super) fn record_now(
        &self,
        principal: &Principal,
        header: &Header,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        match &self.config.replay_store {
            None => self
                .guard
                .check_and_record(principal.as_str(), header.id, header.ts, now_ms),
            Some(_) => Err(self.store_unavailable(&ReplayStoreError::new(
                "a shared replay store needs admit_async",
            ))),
        }
    }

    /// Records in the shared store (awaited, at most `replay_store_timeout`), else in this
    /// process's memory.
    pub(super) async fn record_async(
        &self,
        principal: &Principal,
        header: &Header,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        let Some(store) = &self.config.replay_store else {
            return self
                .guard
                .check_and_record(principal.as_str(), header.id, header.ts, now_ms);
        };
        let check = ReplayCheck {
            principal: principal.as_str(),
            id: header.id,
            ts: header.ts,
            now_ms,
            config: &self.config.replay,
        };
        let wait = self.config.replay_store_timeout;
        match tokio::time::timeout(wait, store.check_and_record(check)).await {
            Ok(Ok(verdict)) => verdict.into_result(),
            Ok(Err(e)) => Err(self.store_unavailable(&e)),
            Err(_) => Err(self.store_unavailable(&ReplayStoreError::new(format!(
                "no answer within {} ms",
                wait.as_millis()
            )))),
        }
    }

    /// Logs (rate-limited) why the store failed; the rejection itself is counted by the
    /// pipeline like any other.
    fn store_unavailable(&self, e: &ReplayStoreError) -> RejectReason {
        if self.store_log_limit.allow() {
            tracing::error!(error = %e, "replay store unavailable: refusing the message");
        }
        RejectReason::ReplayStoreUnavailable
    }
}
