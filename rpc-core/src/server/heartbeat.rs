//! Heartbeats for monitored calls (oslo's `call_monitor_timeout`): while the handler of a
//! call that asked for them (`monitor` in its body) runs, the server sends the caller a
//! heartbeat, a reply-kind message sealed and signed like the reply, at the interval asked.

use std::future::Future;
use std::time::Duration;

use tower::ServiceExt;

use super::answer::Reply;
use crate::layer::{Seal, TransportSender};
use crate::security::Peer;
use crate::wire::{Header, Kind};

/// The shortest heartbeat interval a server honours: a caller asking for more cannot make
/// it send more than a few messages a second per call.
pub(crate) const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);

/// The heartbeats one call gets.
pub(crate) struct Beats {
    sender: Seal<TransportSender>,
    heartbeat: Reply,
    interval: Duration,
}

impl Beats {
    /// The heartbeats for `request`, if it is a call that asked for them and has a route
    /// for its reply.
    pub(crate) fn plan(
        sender: Option<&Seal<TransportSender>>,
        request: &Header,
        reply_to: Option<&str>,
        peer: &Peer,
        monitor_ms: Option<u64>,
    ) -> Option<Self> {
        let (sender, ms) = (sender?, monitor_ms?);
        if request.kind != Kind::Call {
            return None;
        }
        let route = reply_to
            .map(str::to_owned)
            .or_else(|| request.reply.clone())?;
        Some(Self {
            sender: sender.clone(),
            heartbeat: Reply::heartbeat(request.clone(), route, peer.clone()),
            interval: Duration::from_millis(ms).max(MIN_HEARTBEAT_INTERVAL),
        })
    }

    async fn send(&self) {
        // Each heartbeat is a new message: its own id and timestamp.
        let send = self.sender.clone().oneshot(self.heartbeat.seal_request());
        // A send that blocks (a full queue) must not hold up the call for long.
        match tokio::time::timeout(self.interval, send).await {
            Ok(Ok(())) => tracing::trace!("heartbeat sent"),
            Ok(Err(e)) => tracing::debug!(error = %e, "heartbeat not sent"),
            Err(_) => tracing::debug!("heartbeat send timed out"),
        }
    }
}

/// Runs `work`, sending a heartbeat every interval of `beats` until it completes.
pub(crate) async fn beating<F: Future>(beats: Option<Beats>, work: F) -> F::Output {
    let Some(beats) = beats else {
        return work.await;
    };
    let mut work = std::pin::pin!(work);
    let start = tokio::time::Instant::now() + beats.interval;
    let mut tick = tokio::time::interval_at(start, beats.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            _ = tick.tick() => beats.send().await,
        }
    }
}
