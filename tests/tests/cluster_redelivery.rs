//! A broker redelivery of a call (after a node loss, the queue hands an unacknowledged
//! call to another consumer) must not produce a second answer: the replay guard drops the
//! copy, and the server stays silent instead of answering `Replay`. Such an answer could
//! overtake the real one and tell the caller its call was refused (non-retriable) while it
//! ran elsewhere. Proven with a transport that delivers every call twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sealrpc_core::security::RejectReason;
use sealrpc_core::transport::Transport;
use sealrpc_core::transport::{
    Address, ListenSpec, Outgoing, ReplyInbox, Subscription, TransportError,
};
use sealrpc_core::{Client, Context, MemoryTransport, Target};
use sealrpc_tests::cluster::{self, ConductorState, ControlKeys, Seq};

/// Delivers every call and cast twice (a redelivery); counts replies sent.
#[derive(Debug, Default)]
struct Redelivering {
    inner: MemoryTransport,
    replies: AtomicUsize,
}

#[async_trait]
impl Transport for Redelivering {
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError> {
        match msg.to {
            Address::Reply(_) => {
                self.replies.fetch_add(1, Ordering::SeqCst);
                self.inner.send(msg).await
            }
            Address::Topic(_) | Address::Server { .. } => {
                self.inner.send(msg.clone()).await?;
                self.inner.send(msg).await
            }
            _ => self.inner.send(msg).await,
        }
    }

    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError> {
        self.inner.listen(spec).await
    }

    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError> {
        self.inner.reply_inbox().await
    }
}

#[tokio::test]
async fn a_redelivered_call_is_answered_once() {
    let t = Arc::new(Redelivering::default());
    let dt: Arc<dyn Transport> = t.clone();
    let keys = ControlKeys::new();
    let cond_sec = keys.conductor.security().build();
    let state = Arc::new(ConductorState::default());
    let topic = cluster::uniq("redelivery");
    let server = cluster::conductor(&dt, &cond_sec, &topic, &state).await;
    let client = Client::builder(dt, keys.api.security().build())
        .default_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    for seq in 1..=5u64 {
        let args = Seq {
            from: "api".into(),
            seq,
        };
        let r: u64 = client
            .call(&Context::new(), &Target::new(&topic), "ping", &args)
            .await
            .unwrap();
        assert_eq!(r, seq);
    }
    // Both copies of each call were admitted or rejected by now.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cond_sec.counters().rejected_for(RejectReason::Replay) < 5 {
        assert!(std::time::Instant::now() < deadline, "copies not seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(t.replies.load(Ordering::SeqCst), 5, "one answer per call");
    assert!(server.shutdown_timeout(Duration::from_secs(5)).await);
}
