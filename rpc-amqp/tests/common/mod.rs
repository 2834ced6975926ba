//! Helpers shared by the broker tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::transport::{Address, Delivery, ListenSpec, Outgoing, Subscription};

/// A unique name: `prefix-<hex>`.
pub fn uniq(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    format!("{prefix}-{}", hex::encode(b))
}

/// Options from `AMQP_ADDR` (or the default URL).
pub fn opts() -> AmqpOptions {
    AmqpOptions::from_env()
}

/// Waits for the broker, then connects.
pub async fn connect(opts: AmqpOptions) -> AmqpTransport {
    sealrpc_amqp::wait_for_broker(&opts.url, Duration::from_secs(30))
        .await
        .expect("broker up");
    AmqpTransport::connect(opts).await.expect("connect")
}

/// What a server named `server` on `topic` listens to.
pub fn spec(topic: &str, server: &str, shared: bool, fanout: bool) -> ListenSpec {
    ListenSpec {
        topic: topic.into(),
        server: server.into(),
        shared,
        fanout,
    }
}

/// A message to `to`.
pub fn msg(to: Address, payload: impl Into<Bytes>) -> Outgoing {
    Outgoing {
        to,
        payload: payload.into(),
        reply_to: None,
        expiration: None,
        confirm: false,
    }
}

/// The next delivery within `secs` seconds.
pub async fn recv(sub: &mut Subscription, secs: u64) -> Option<Delivery> {
    tokio::time::timeout(Duration::from_secs(secs), sub.recv())
        .await
        .ok()
        .flatten()
}

/// Polls `done` every 20 ms until it holds; panics with `what` after `secs` seconds.
pub async fn eventually(what: &str, secs: u64, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Listens for `spec` once its previous (exclusive) listener is gone, within 10 s.
pub async fn listen_again(
    t: &AmqpTransport,
    spec: &sealrpc_core::transport::ListenSpec,
) -> Subscription {
    use sealrpc_core::transport::Transport;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match t.listen(spec).await {
            Ok(sub) => return sub,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.message.contains("already has a listener"), "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("listen again: {e}"),
        }
    }
}

/// Deletes queues and exchanges with a raw lapin connection as the default user.
pub async fn cleanup(queues: &[String], exchanges: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let conn = lapin::Connection::connect(&opts().url, lapin::ConnectionProperties::default())
        .await
        .expect("connect for cleanup");
    for q in queues {
        let ch = conn.create_channel().await.unwrap();
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = ch.close(200, "cleanup".into()).await;
    }
    for x in exchanges {
        let ch = conn.create_channel().await.unwrap();
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
        let _ = ch.close(200, "cleanup".into()).await;
    }
    let _ = conn.close(200, "cleanup".into()).await;
}
