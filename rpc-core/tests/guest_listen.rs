//! The guest agent preset on the memory transport: `ServerBuilder::listen` with
//! `ListenSpec::guest_agent` serves the guest's own `topic.id` queue and the topic's
//! fanout, never the shared topic queue. (RabbitMQ, with a restricted guest user and the
//! spec its `GuestCredentials` hand out: `tests/tests/amqp_secure.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sealrpc_core::transport::ListenSpec;
use sealrpc_core::{Error, Target};

#[test]
fn guest_agent_spec_serves_own_queue_and_fanout_only() {
    let spec = ListenSpec::guest_agent("guestagent", "7f3a");
    assert!(!spec.shared && spec.fanout);
    assert_eq!(
        spec.served_addresses(),
        vec!["guestagent.7f3a".to_owned(), "guestagent_fanout".to_owned()]
    );
}

#[tokio::test]
async fn listen_preset_serves_own_queue_and_fanout_not_the_shared_queue() {
    let t = transport();
    let count = Count::default();
    let server = basic_server(&t, insecure("guest:7f3a"), "ignored", &count)
        // Replaces the topic set before, and sets the name, shared and fanout.
        .listen(ListenSpec::guest_agent("guestagent", "7f3a"))
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let ctx = sealrpc_core::Context::new();
    let own: i64 = client
        .call(
            &ctx,
            &Target::guest("guestagent", "7f3a"),
            "add",
            &Add { a: 1, b: 2 },
        )
        .await
        .unwrap();
    assert_eq!(own, 3);
    let shared = client
        .call::<_, i64>(&ctx, &Target::new("guestagent"), "add", &Add { a: 1, b: 2 })
        .await
        .unwrap_err();
    assert!(matches!(shared, Error::NoListener(_)), "{shared:?}");
    let fanout = Target::new("guestagent").fanout(true);
    client
        .cast(&ctx, &fanout, "add", &Add { a: 0, b: 0 })
        .await
        .unwrap();
    for _ in 0..400 {
        if count.get() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(count.get(), 2, "the own-queue call and the fanout cast");
    server.shutdown().await;
}
