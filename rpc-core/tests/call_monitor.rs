//! The call monitor (oslo's `call_monitor_timeout`) on the memory transport: a long call
//! outlives its monitor timeout thanks to heartbeats; a dead server is noticed within the
//! monitor timeout; forged or replayed heartbeats keep nothing alive; a server that never
//! heartbeats (an old one) leaves the call to its plain timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use sealrpc_core::security::Security;
use sealrpc_core::security::{KeyError, Outbound, Peer, RejectReason, Signer, now_ms};
use sealrpc_core::transport::Transport;
use sealrpc_core::transport::{
    Address, ListenSpec, Outgoing, ReplyInbox, Subscription, TransportError,
};
use sealrpc_core::wire::{EnvelopeRef, Header, KeyId, Kind, Limits, MessageId, ReplyBody, Role};
use sealrpc_core::{
    Client, Context, Error, HandlerError, MemoryTransport, Principal, Server, ServerHandle, Target,
};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const MONITOR: Duration = Duration::from_secs(1);
/// Every test ends within this, whatever happens.
const TEST_BOUND: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
struct Sleep {
    ms: u64,
}

/// A transport whose sends can be cut (the node is dead to the rest of the world), or
/// whose sends to reply routes can be muted (heartbeats dropped, as from an old server).
#[derive(Debug)]
struct Severable {
    inner: Arc<dyn Transport>,
    severed: AtomicBool,
    mute_replies: AtomicBool,
}

#[async_trait]
impl Transport for Severable {
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError> {
        let to_reply = matches!(msg.to, Address::Reply(_));
        if self.severed.load(Ordering::SeqCst)
            || (to_reply && self.mute_replies.load(Ordering::SeqCst))
        {
            return Ok(());
        }
        self.inner.send(msg).await
    }
    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError> {
        self.inner.listen(spec).await
    }
    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError> {
        self.inner.reply_inbox().await
    }
}

struct Rig {
    memory: Arc<MemoryTransport>,
    server_side: Arc<Severable>,
    client: Client,
    client_security: Arc<Security>,
    server: Option<ServerHandle>,
}

/// A `conductor` server (`control:conductor`) with a `sleep` handler, and a client
/// (`control:api`) with a call monitor.
async fn rig() -> Rig {
    let memory = Arc::new(MemoryTransport::new());
    let server_side = Arc::new(Severable {
        inner: memory.clone(),
        severed: AtomicBool::new(false),
        mute_replies: AtomicBool::new(false),
    });
    let mute = Arc::clone(&server_side);
    let server = Server::builder(server_side.clone(), common::secure("control:conductor"))
        .topic("conductor")
        .handler("sleep", move |_ctx: Context, s: Sleep| {
            let mute = Arc::clone(&mute);
            async move {
                tokio::time::sleep(Duration::from_millis(s.ms)).await;
                // The final reply always goes out (only heartbeats are muted).
                mute.mute_replies.store(false, Ordering::SeqCst);
                Ok::<_, HandlerError>("done".to_owned())
            }
        })
        .start()
        .await
        .unwrap();
    let client_security = common::secure("control:api");
    let client = Client::builder(memory.clone(), Arc::clone(&client_security))
        .call_monitor_timeout(MONITOR)
        .build()
        .await
        .unwrap();
    Rig {
        memory,
        server_side,
        client,
        client_security,
        server: Some(server),
    }
}

async fn sleep_call(client: &Client, ms: u64) -> Result<String, Error> {
    client
        .prepare(Target::new("conductor"))
        .timeout(CALL_TIMEOUT)
        .call(&Context::new(), "sleep", &Sleep { ms })
        .await
}

/// The header of a message seen on the wire.
fn header_of(bytes: &Bytes) -> Header {
    let env = EnvelopeRef::decode(bytes, &Limits::default()).unwrap();
    Header::decode(env.header).unwrap()
}

/// Kills the server: its sends are cut and it stops consuming.
fn kill(rig: &mut Rig) {
    rig.server_side.severed.store(true, Ordering::SeqCst);
    drop(rig.server.take());
}

#[tokio::test]
async fn long_call_succeeds_well_past_its_monitor_timeout() {
    let rig = rig().await;
    let mut tap = rig.memory.wiretap();
    let result = tokio::time::timeout(TEST_BOUND, sleep_call(&rig.client, 3000))
        .await
        .expect("bounded");
    assert_eq!(result.unwrap(), "done");
    // Heartbeats went to the reply route before the reply: every message is authenticated.
    let mut to_reply = 0;
    while let Ok((to, _)) = tap.try_recv() {
        to_reply += usize::from(matches!(to, Address::Reply(_)));
    }
    assert!(
        to_reply >= 3,
        "heartbeats and a reply expected, saw {to_reply}"
    );
    assert_eq!(
        rig.client_security
            .counters()
            .rejected_for(RejectReason::UnexpectedReply),
        0
    );
}

#[tokio::test]
async fn a_server_killed_mid_call_is_noticed_within_the_monitor_timeout() {
    let mut rig = rig().await;
    let started = Instant::now();
    let call = tokio::spawn({
        let client = rig.client.clone();
        async move { sleep_call(&client, 60_000).await }
    });
    // Long enough for the server to heartbeat (every ~500 ms), then it dies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(&mut rig);
    let result = tokio::time::timeout(TEST_BOUND, call)
        .await
        .expect("bounded")
        .unwrap();
    match result {
        Err(e @ Error::MonitorTimeout(_)) => assert!(e.is_retriable()),
        other => panic!("expected a monitor timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < CALL_TIMEOUT,
        "noticed before the call timeout"
    );
}

/// Signs with a key the receiver does not have for its key id (a wrong key).
#[derive(Debug)]
struct WrongKey(KeyId);

impl Signer for WrongKey {
    fn key_id(&self) -> KeyId {
        self.0.clone()
    }
    fn algorithm(&self) -> &'static str {
        "toy-sha256"
    }
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut other = input.to_vec();
        other.push(0);
        common::ToySigner(self.0.clone()).sign(&other)
    }
}

/// A heartbeat for the call `corr`, to `route`, sealed and signed by `forger`.
fn forged_heartbeat(forger: &Security, corr: MessageId, route: &str) -> Outgoing {
    let header = Header {
        id: MessageId::random(),
        kind: Kind::Reply,
        ts: now_ms(),
        ttl: None,
        src: String::new(),
        dst: route.to_owned(),
        corr: Some(corr),
        reply: None,
        seal: None,
    };
    let message = Outbound {
        header,
        body: ReplyBody::Heartbeat.into(),
        peer: Peer::ControlPlane,
        carries_secret: false,
    };
    Outgoing {
        to: Address::Reply(route.to_owned()),
        payload: Bytes::from(forger.seal_and_sign(message).unwrap()),
        reply_to: None,
        expiration: None,
        confirm: false,
    }
}

/// Kills the server mid-call, then keeps the call "alive" with `forge`'s messages every
/// 200 ms: the call must still fail at its monitor timeout.
async fn forged_heartbeats_do_not_extend_the_call(
    forge: impl Fn(MessageId, &str, &[Bytes]) -> Outgoing + Send + 'static,
) -> Arc<Security> {
    let mut rig = rig().await;
    let mut tap = rig.memory.wiretap();
    let call = tokio::spawn({
        let client = rig.client.clone();
        async move { sleep_call(&client, 60_000).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(&mut rig);
    let (mut corr, mut seen) = (None, Vec::new());
    while let Ok((to, bytes)) = tap.try_recv() {
        match to {
            Address::Reply(_) => seen.push(bytes),
            _ => corr = Some(header_of(&bytes).id),
        }
    }
    let corr = corr.expect("the call was seen on the wire");
    assert!(!seen.is_empty(), "the server heartbeated before it died");
    let route = rig.client.reply_route().to_owned();
    let memory = rig.memory.clone();
    let forger = tokio::spawn(async move {
        loop {
            let _ = memory.send(forge(corr, &route, &seen)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let result = tokio::time::timeout(TEST_BOUND, call)
        .await
        .expect("bounded")
        .unwrap();
    forger.abort();
    assert!(
        matches!(result, Err(Error::MonitorTimeout(_))),
        "expected a monitor timeout, got {result:?}"
    );
    rig.client_security
}

#[tokio::test]
async fn heartbeats_from_another_principal_do_not_extend_the_call() {
    // A guest with valid keys of its own, heartbeating a control-plane call.
    let guest = common::secure("guest:g2");
    let client = forged_heartbeats_do_not_extend_the_call(move |corr, route, _| {
        forged_heartbeat(&guest, corr, route)
    })
    .await;
    assert!(
        client
            .counters()
            .rejected_for(RejectReason::UnexpectedReply)
            > 0
    );
}

#[tokio::test]
async fn heartbeats_under_a_wrong_key_do_not_extend_the_call() {
    // The server's principal and key id, but not its key.
    let p = Principal::parse("control:conductor").unwrap();
    let forger = common::secure_config("control:conductor")
        .signer(Arc::new(WrongKey(KeyId::new(Role::Sig, p, 1))))
        .build();
    let client = forged_heartbeats_do_not_extend_the_call(move |corr, route, _| {
        forged_heartbeat(&forger, corr, route)
    })
    .await;
    assert!(client.counters().rejected_for(RejectReason::BadSignature) > 0);
}

#[tokio::test]
async fn replayed_heartbeats_do_not_extend_the_call() {
    let client = forged_heartbeats_do_not_extend_the_call(|_, route, seen| Outgoing {
        to: Address::Reply(route.to_owned()),
        payload: seen[0].clone(),
        reply_to: None,
        expiration: None,
        confirm: false,
    })
    .await;
    assert!(client.counters().rejected_for(RejectReason::Replay) > 0);
}

#[tokio::test]
async fn a_server_that_never_heartbeats_leaves_the_call_to_its_timeout() {
    // Heartbeats dropped, as from a server that does not know them: the monitor never
    // arms, and a call longer than the monitor timeout still gets its reply.
    let rig = rig().await;
    rig.server_side.mute_replies.store(true, Ordering::SeqCst);
    let result = tokio::time::timeout(TEST_BOUND, sleep_call(&rig.client, 2500))
        .await
        .expect("bounded");
    assert_eq!(result.unwrap(), "done");
}

#[tokio::test]
async fn an_unmonitored_call_asks_for_no_heartbeats() {
    let rig = rig().await;
    let plain = Client::builder(rig.memory.clone(), common::secure("control:api"))
        .build()
        .await
        .unwrap();
    let mut tap = rig.memory.wiretap();
    let (ctx, target) = (Context::new(), plain.prepare(Target::new("conductor")));
    let target = target.timeout(CALL_TIMEOUT);
    let call = target.call(&ctx, "sleep", &Sleep { ms: 1200 });
    let result: String = tokio::time::timeout(TEST_BOUND, call)
        .await
        .expect("bounded")
        .unwrap();
    assert_eq!(result, "done");
    let mut to_reply = 0;
    while let Ok((to, _)) = tap.try_recv() {
        to_reply += usize::from(matches!(to, Address::Reply(_)));
    }
    assert_eq!(to_reply, 1, "the reply only");
}
