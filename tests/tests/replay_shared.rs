#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Replays across replicas and restarts, on the memory transport and on the real RabbitMQ
//! (127.0.0.1:5672, unique topics), with one Redis replay store (127.0.0.1:6379, a unique
//! key prefix per test, deleted at the end):
//!
//! - a broker reader re-sends a captured cast to another replica of the conductor (two
//!   servers competing on one topic, each with its own `Security`, one store): refused;
//! - the same cast after the replica restarts (a new `Security`): refused by the Redis
//!   store (`Replay`), and by the in-process store's restart rule (`StampedBeforeStart`);
//! - guest A keeps a control-signed fanout and pushes it to guest B after B's agent
//!   restarts: refused by the restart rule of B's in-process store (guests hold no
//!   credentials of the control plane's Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sealrpc_core::security::RejectReason;
use sealrpc_core::security::Security;
use sealrpc_core::transport::Address;
use sealrpc_core::transport::Transport;
use sealrpc_core::{Context, HandlerError, Server, ServerHandle};
use sealrpc_replay_redis::RedisReplayStore;
use sealrpc_tests::cluster::{ConductorState, ControlKeys, Seq, conductor_named, uniq};
use sealrpc_tests::replay::{
    Broker, Wire, eventually, notice_fanout, publish, record_cast, redis_store, redis_url,
};

const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(200);

/// Two conductor replicas on one topic, each with its own `Security`.
struct Replicas {
    keys: ControlKeys,
    topic: String,
    state: Arc<ConductorState>,
    broker: Broker,
    sender: Arc<dyn Transport>,
}

impl Replicas {
    async fn new(wire: Wire) -> Self {
        let broker = Broker::new(wire).await;
        Self {
            keys: ControlKeys::new(),
            topic: uniq("replay"),
            state: Arc::new(ConductorState::default()),
            sender: broker.connect().await,
            broker,
        }
    }

    fn security(&self, store: Option<&Arc<RedisReplayStore>>) -> Arc<Security> {
        let config = self.keys.conductor.security();
        match store {
            Some(s) => config.replay_store(Arc::clone(s) as _).build(),
            None => config.build(),
        }
    }

    async fn start(&self, name: &str, security: &Arc<Security>) -> ServerHandle {
        let transport = self.broker.connect().await;
        conductor_named(&transport, security, &self.topic, name, &self.state).await
    }

    fn to(&self, server: &str) -> Address {
        Address::Server {
            topic: self.topic.clone(),
            server: server.into(),
        }
    }
}

fn rejected(security: &Security, reason: RejectReason) -> u64 {
    security.counters().rejected_for(reason)
}

async fn replay_to_another_replica(wire: Wire) {
    let r = Replicas::new(wire).await;
    let (store, _cleanup) = redis_store(&redis_url(), "replica", REDIS_TIMEOUT).await;
    let (sec_a, sec_b) = (r.security(Some(&store)), r.security(Some(&store)));
    let a = r.start("a", &sec_a).await;
    let b = r.start("b", &sec_b).await;
    let guest = r.keys.guest("g1").security().build();

    let cast = record_cast(&guest, &r.topic, "g1", 1);
    publish(&r.sender, r.to("a"), cast.clone()).await;
    assert!(eventually(|| r.state.casts_from("g1") == (1, 0)).await);
    // The captured cast, re-sent to the other replica.
    publish(&r.sender, r.to("b"), cast).await;
    assert!(eventually(|| rejected(&sec_b, RejectReason::Replay) == 1).await);
    assert_eq!(r.state.casts_from("g1"), (1, 0), "the handler ran once");
    // A fresh cast still goes through either replica.
    publish(&r.sender, r.to("b"), record_cast(&guest, &r.topic, "g1", 2)).await;
    assert!(eventually(|| r.state.casts_from("g1") == (2, 0)).await);

    a.shutdown().await;
    b.shutdown().await;
}

async fn replay_after_a_restart(wire: Wire, shared: bool) {
    let r = Replicas::new(wire).await;
    let (store, _cleanup) = if shared {
        let (s, c) = redis_store(&redis_url(), "restart", REDIS_TIMEOUT).await;
        (Some(s), Some(c))
    } else {
        (None, None)
    };
    let first = r.security(store.as_ref());
    let a = r.start("a", &first).await;
    let guest = r.keys.guest("g1").security().build();
    let cast = record_cast(&guest, &r.topic, "g1", 1);
    publish(&r.sender, r.to("a"), cast.clone()).await;
    assert!(eventually(|| r.state.casts_from("g1") == (1, 0)).await);
    a.shutdown().await;

    // The replica restarts: a new process, a new Security (same keys, same store).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = r.security(store.as_ref());
    let a = r.start("a", &second).await;
    publish(&r.sender, r.to("a"), cast).await;
    let reason = if shared {
        RejectReason::Replay
    } else {
        RejectReason::StampedBeforeStart
    };
    assert!(
        eventually(|| rejected(&second, reason) == 1).await,
        "{reason}"
    );
    assert_eq!(r.state.casts_from("g1"), (1, 0), "the handler ran once");
    publish(&r.sender, r.to("a"), record_cast(&guest, &r.topic, "g1", 2)).await;
    assert!(eventually(|| r.state.casts_from("g1") == (2, 0)).await);

    a.shutdown().await;
}

/// Guest B's agent: serves `notice` on the topic's fanout, counting deliveries.
async fn guest_agent(
    transport: &Arc<dyn Transport>,
    security: &Arc<Security>,
    topic: &str,
    id: &str,
    notices: &Arc<AtomicU64>,
) -> ServerHandle {
    let n = Arc::clone(notices);
    Server::builder(Arc::clone(transport), Arc::clone(security))
        .topic(topic)
        .server_name(id)
        .shared(false)
        .fanout(true)
        .handler("notice", move |_ctx: Context, _a: Seq| {
            n.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, HandlerError>(()) }
        })
        .start()
        .await
        .expect("guest agent starts")
}

async fn fanout_replay_after_a_guest_restart(wire: Wire) {
    let r = Replicas::new(wire).await;
    let b_keys = r.keys.guest("b");
    let notices = Arc::new(AtomicU64::new(0));
    let transport = r.broker.connect().await;
    let first = b_keys.security().build();
    let b = guest_agent(&transport, &first, &r.topic, "b", &notices).await;

    // The control plane's fanout; guest A (a reader of the fanout) keeps a copy.
    let api = r.keys.api.security().build();
    let fanout = notice_fanout(&api, &r.topic, "api", 1);
    publish(&r.sender, Address::Fanout(r.topic.clone()), fanout.clone()).await;
    assert!(eventually(|| notices.load(Ordering::SeqCst) == 1).await);
    b.shutdown().await;

    // B's agent restarts; A pushes the kept fanout into B's fanout queue.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = b_keys.security().build();
    let b = guest_agent(&transport, &second, &r.topic, "b", &notices).await;
    publish(&r.sender, Address::Fanout(r.topic.clone()), fanout).await;
    assert!(eventually(|| rejected(&second, RejectReason::StampedBeforeStart) == 1).await);
    assert_eq!(notices.load(Ordering::SeqCst), 1, "the handler ran once");
    // A fresh fanout reaches the restarted agent.
    publish(
        &r.sender,
        Address::Fanout(r.topic.clone()),
        notice_fanout(&api, &r.topic, "api", 2),
    )
    .await;
    assert!(eventually(|| notices.load(Ordering::SeqCst) == 2).await);
    b.shutdown().await;
}

#[tokio::test]
async fn memory_replay_to_another_replica_is_refused() {
    replay_to_another_replica(Wire::Memory).await;
}

#[tokio::test]
async fn amqp_replay_to_another_replica_is_refused() {
    replay_to_another_replica(Wire::Amqp).await;
}

#[tokio::test]
async fn memory_replay_after_a_restart_is_refused_by_the_redis_store() {
    replay_after_a_restart(Wire::Memory, true).await;
}

#[tokio::test]
async fn amqp_replay_after_a_restart_is_refused_by_the_redis_store() {
    replay_after_a_restart(Wire::Amqp, true).await;
}

#[tokio::test]
async fn memory_replay_after_a_restart_is_refused_by_the_restart_rule() {
    replay_after_a_restart(Wire::Memory, false).await;
}

#[tokio::test]
async fn amqp_replay_after_a_restart_is_refused_by_the_restart_rule() {
    replay_after_a_restart(Wire::Amqp, false).await;
}

#[tokio::test]
async fn memory_fanout_replay_after_a_guest_restart_is_refused() {
    fanout_replay_after_a_guest_restart(Wire::Memory).await;
}

#[tokio::test]
async fn amqp_fanout_replay_after_a_guest_restart_is_refused() {
    fanout_replay_after_a_guest_restart(Wire::Amqp).await;
}
