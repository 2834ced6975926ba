//! A call's confirm races its reply (`Transport::send_call`): a reply that comes first
//! completes the call and the confirm still due is dropped, not leaked; a confirm that
//! fails fails the call with its typed error; a positive confirm leaves the call waiting
//! for its reply, and the deadline still applies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use common::{Add, Count, basic_server, insecure};
use sealrpc_core::transport::{
    Confirm, ListenSpec, Outgoing, ReplyInbox, Subscription, Transport, TransportError,
    TransportErrorKind,
};
use sealrpc_core::{Client, Context, Error, MemoryTransport, Target};

/// What the wrapped transport's confirm of a call says.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// Delivered; the confirm never comes.
    Never,
    /// Delivered; the confirm comes (positive) after a while.
    AckLater,
    /// Not delivered; the confirm says so after a while (unroutable / nacked).
    Fail(TransportErrorKind),
    /// Not delivered; the confirm never comes.
    Lost,
}

/// Memory underneath, with call confirms as `verdict` says. Every confirm holds a clone of
/// `token` until it is dropped, so the token's count shows confirms still alive.
#[derive(Debug)]
struct Confirming {
    inner: MemoryTransport,
    verdict: Mutex<Verdict>,
    token: Arc<()>,
}

#[async_trait]
impl Transport for Confirming {
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError> {
        self.inner.send(msg).await
    }
    async fn send_call(&self, msg: Outgoing) -> Result<Confirm, TransportError> {
        let verdict = *self.verdict.lock().unwrap();
        if matches!(verdict, Verdict::Never | Verdict::AckLater) {
            self.inner.send(msg).await?;
        }
        let token = Arc::clone(&self.token);
        Ok(Confirm::new(async move {
            let _alive = token;
            match verdict {
                Verdict::Never | Verdict::Lost => std::future::pending().await,
                Verdict::AckLater => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok(())
                }
                Verdict::Fail(kind) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(TransportError::new(kind, "confirm says no"))
                }
            }
        }))
    }
    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError> {
        self.inner.listen(spec).await
    }
    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError> {
        self.inner.reply_inbox().await
    }
}

async fn rig(verdict: Verdict) -> (Arc<Confirming>, Client, sealrpc_core::ServerHandle) {
    let t = Arc::new(Confirming {
        inner: MemoryTransport::new(),
        verdict: Mutex::new(verdict),
        token: Arc::new(()),
    });
    let dyn_t: Arc<dyn Transport> = t.clone();
    let server = basic_server(
        &dyn_t,
        insecure("control:conductor"),
        "calc",
        &Count::default(),
    )
    .start()
    .await
    .unwrap();
    let client = Client::builder(dyn_t, insecure("control:api"))
        .build()
        .await
        .unwrap();
    (t, client, server)
}

async fn add(client: &Client, a: i64, timeout: Duration) -> Result<i64, Error> {
    client
        .prepare(Target::new("calc"))
        .timeout(timeout)
        .call(&Context::new(), "add", &Add { a, b: 1 })
        .await
}

#[tokio::test]
async fn a_reply_before_the_confirm_completes_the_call_and_drops_the_confirm() {
    let (t, client, _server) = rig(Verdict::Never).await;
    for a in 0..200 {
        assert_eq!(
            add(&client, a, Duration::from_secs(10)).await.unwrap(),
            a + 1
        );
    }
    // Many calls, nothing left behind: no pending call, no confirm kept alive.
    assert_eq!(client.in_flight(), 0);
    assert_eq!(Arc::strong_count(&t.token), 1);
}

#[tokio::test]
async fn a_positive_confirm_leaves_the_call_waiting_for_its_reply() {
    let (t, client, _server) = rig(Verdict::AckLater).await;
    for a in 0..50 {
        assert_eq!(
            add(&client, a, Duration::from_secs(10)).await.unwrap(),
            a + 1
        );
    }
    assert_eq!(client.in_flight(), 0);
    assert_eq!(Arc::strong_count(&t.token), 1);
}

#[tokio::test]
async fn a_failed_confirm_fails_the_call_with_its_kind() {
    let (t, client, _server) = rig(Verdict::Fail(TransportErrorKind::NoListener)).await;
    let e = add(&client, 1, Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(e, Error::NoListener(_)), "{e:?}");
    *t.verdict.lock().unwrap() = Verdict::Fail(TransportErrorKind::Unavailable);
    match add(&client, 1, Duration::from_secs(10)).await.unwrap_err() {
        Error::Transport(te) => assert_eq!(te.kind, TransportErrorKind::Unavailable),
        e => panic!("{e:?}"),
    }
    assert_eq!(client.in_flight(), 0);
    assert_eq!(Arc::strong_count(&t.token), 1);
}

#[tokio::test]
async fn a_confirm_that_never_comes_leaves_the_call_to_its_deadline() {
    let (t, client, _server) = rig(Verdict::Lost).await;
    let e = add(&client, 1, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert_eq!(client.in_flight(), 0);
    assert_eq!(Arc::strong_count(&t.token), 1);
}
