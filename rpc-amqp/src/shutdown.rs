//! A quiet, ordered close: the channel tasks (listeners, reply inboxes, the publisher
//! pool) stop first, cancel their consumers and close their channels, and only then does
//! the connection close.
//!
//! Why: lapin runs the `basic.cancel` of a dropped consumer and the `channel.close` of a
//! dropped channel as background futures; one that meets a connection already closing
//! fails, and lapin reports that as a connection error at ERROR level. Cancelling and
//! closing explicitly, awaited and before the connection close, leaves nothing for those
//! futures to do.

use std::sync::Arc;
use std::time::Duration;

use lapin::Channel;
use lapin::options::BasicCancelOptions;
use lapin::types::ShortString;
use tokio::sync::watch;

/// How long each step of a clean close (cancel, channel close, draining the tasks) may
/// take before it is given up: a close must not hang on a dead broker.
pub(crate) const CLOSE_STEP: Duration = Duration::from_secs(2);

/// The closing signal and the count of channel tasks still running.
#[derive(Debug)]
pub(crate) struct Shutdown {
    closing: watch::Sender<bool>,
    live: Arc<watch::Sender<usize>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            closing: watch::channel(false).0,
            live: Arc::new(watch::channel(0).0),
        }
    }
}

/// Held by a running channel task; the close waits until every one is dropped.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<watch::Sender<usize>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Shutdown {
    /// Tells every task to stop.
    pub(crate) fn begin(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once the close began.
    pub(crate) async fn closing(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Counts a task until the guard is dropped.
    pub(crate) fn track(&self) -> TaskGuard {
        self.live.send_modify(|n| *n += 1);
        TaskGuard(self.live.clone())
    }

    /// Waits (up to `bound`) until no task runs any more.
    pub(crate) async fn drained(&self, bound: Duration) {
        let mut rx = self.live.subscribe();
        let _ = tokio::time::timeout(bound, rx.wait_for(|n| *n == 0)).await;
    }
}

/// Cancels the consumers `tags` of `ch` (awaited), then closes `ch`, each step bounded by
/// [`CLOSE_STEP`]; on a channel already gone it does nothing. Call it before dropping the
/// consumers, so that their drop has no `basic.cancel` left to send.
pub(crate) async fn close_channel(ch: &Channel, tags: &[ShortString], why: &str) {
    for tag in tags {
        if !ch.status().connected() {
            return;
        }
        let cancel = ch.basic_cancel(tag.clone(), BasicCancelOptions::default());
        if let Ok(Err(e)) = tokio::time::timeout(CLOSE_STEP, cancel).await {
            tracing::debug!(error = %e, "cancelling a consumer failed");
        }
    }
    if ch.status().connected() {
        let close = ch.close(200, why.into());
        if let Ok(Err(e)) = tokio::time::timeout(CLOSE_STEP, close).await {
            tracing::debug!(error = %e, "closing a channel failed");
        }
    }
}
