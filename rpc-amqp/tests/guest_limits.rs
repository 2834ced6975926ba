//! Per-guest resource limits, set by the operator side and proven against the real
//! broker: a guest cannot hold more connections or channels than allowed, its queues cap
//! at their maximum length and size (and so does a queue an old-style guest declared for
//! itself, through the operator policy), and it cannot declare a queue at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod guest_setup;

use std::time::Duration;

use guest_setup::{Fleet, depth, policy, uniq};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sealrpc_amqp::credentials::GuestLimits;
use sealrpc_amqp::error::amqp_reply;
use sealrpc_core::transport::{Address, Outgoing, Transport};

const LIMITS: GuestLimits = GuestLimits {
    max_connections: 2,
    max_channels: 4,
    max_queue_length: 5,
    max_queue_bytes: 4096,
    queue_expires: Some(Duration::from_secs(3600)),
};

fn cast(to: Address, payload: Vec<u8>) -> Outgoing {
    Outgoing {
        to,
        payload: payload.into(),
        reply_to: None,
        expiration: None,
        confirm: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_exceed_its_limits() {
    let tag = uniq("lim");
    let fleet = Fleet::start(policy(&tag, LIMITS), &["cccc3333", "dddd4444"]).await;
    let old_style = format!("{}.old-style", fleet.policy.guest_topic);
    let fleet = std::sync::Arc::new(fleet);
    let task = {
        let (fleet, old_style) = (fleet.clone(), old_style.clone());
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(90), scenario(&fleet, &old_style)).await
        })
    };
    // A panic in the scenario still lets everything below be cleaned up.
    let outcome = guest_setup::unwind_after(task.await);
    fleet.cleanup(std::slice::from_ref(&old_style), &[]).await;
    let violations = outcome().expect("scenario timed out");
    assert!(
        violations.is_empty(),
        "{} violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

async fn scenario(fleet: &Fleet, old_style: &str) -> Vec<String> {
    let mut v = Vec::new();
    let url = fleet.guests[0].url("amqp", "127.0.0.1:5672");

    // Connections: the broker refuses those beyond the limit.
    let mut conns = Vec::new();
    let mut refused = None;
    for _ in 0..6 {
        match Connection::connect(&url, ConnectionProperties::default()).await {
            Ok(c) => conns.push(c),
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    eprintln!("connections opened: {} then {refused:?}", conns.len());
    if conns.len() > LIMITS.max_connections as usize || refused.is_none() {
        v.push(format!(
            "opened {} connections (limit {}), refusal: {refused:?}",
            conns.len(),
            LIMITS.max_connections
        ));
    }
    for c in conns {
        let _ = c.close(200, "done".into()).await;
    }

    // Channels: beyond the limit the broker closes the connection (NOT_ALLOWED). Its
    // channel count is tracked asynchronously, so a burst may get a few more first.
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let mut opened = 0;
    let mut error = None;
    let mut keep = Vec::new();
    for _ in 0..64 {
        match conn.create_channel().await {
            Ok(ch) => {
                // A round trip on each, so the broker has really opened it.
                let _ = ch
                    .queue_declare(
                        fleet.guests[0].queues[0].name.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await;
                opened += 1;
                keep.push(ch);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    eprintln!("channels opened: {opened} then {error:?}");
    let not_allowed = error
        .as_ref()
        .and_then(amqp_reply)
        .is_some_and(|(c, t)| c == 530 && t.contains("limit"));
    if !not_allowed || opened > 2 * LIMITS.max_channels as usize {
        v.push(format!(
            "opened {opened} channels (limit {}), then {error:?}",
            LIMITS.max_channels
        ));
    }
    drop(keep);
    let _ = conn.close(200, "done".into()).await;

    // Queue length: with nobody consuming, the guest's queue takes max_queue_length
    // messages, and the broker refuses the rest (reject-publish: the sender is told).
    let to = Address::Server {
        topic: fleet.policy.guest_topic.clone(),
        server: fleet.guests[0].listen.server.clone(),
    };
    let mut refused = 0;
    for i in 0..(LIMITS.max_queue_length + 3) {
        if fleet
            .operator
            .send(cast(to.clone(), vec![i as u8; 8]))
            .await
            .is_err()
        {
            refused += 1;
        }
    }
    let n = depth(&fleet.guests[0].queues[0].name).await;
    eprintln!("queue holds {n}, {refused} publishes refused");
    if n > LIMITS.max_queue_length || refused == 0 {
        v.push(format!("guest queue holds {n} messages, {refused} refused"));
    }
    // Queue bytes: 1 KiB messages stop at max_queue_bytes.
    let to = Address::Server {
        topic: fleet.policy.guest_topic.clone(),
        server: fleet.guests[1].listen.server.clone(),
    };
    for _ in 0..LIMITS.max_queue_length {
        let _ = fleet.operator.send(cast(to.clone(), vec![7; 1024])).await;
    }
    let n = depth(&fleet.guests[1].queues[0].name).await;
    if u64::from(n) * 1024 > LIMITS.max_queue_bytes {
        v.push(format!(
            "guest queue holds {n} KiB, limit {} bytes",
            LIMITS.max_queue_bytes
        ));
    }

    // A queue an old-style guest declared itself (no arguments) is capped by the
    // operator policy too.
    let admin = Connection::connect(&guest_setup::admin_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = admin.create_channel().await.unwrap();
    ch.queue_declare(
        old_style.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for _ in 0..(LIMITS.max_queue_length + 3) {
        ch.basic_publish(
            "".into(),
            old_style.into(),
            BasicPublishOptions::default(),
            b"parked",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();
    }
    let _ = admin.close(200, "done".into()).await;
    let n = depth(old_style).await;
    if n > LIMITS.max_queue_length {
        v.push(format!(
            "an old-style guest queue holds {n} (operator policy missing)"
        ));
    }

    // The guest cannot declare a queue that escapes the policy: it declares nothing.
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let mut big = FieldTable::default();
    big.insert("x-max-length".into(), AMQPValue::LongLongInt(1 << 40));
    for name in [
        fleet.guests[0].queues[1].name.clone(),
        format!("{}-mine", fleet.guests[0].queues[0].name),
        "unrelated-queue".to_owned(),
        String::new(),
    ] {
        let ch = conn.create_channel().await.unwrap();
        let r = ch
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                big.clone(),
            )
            .await;
        if !r
            .as_ref()
            .is_err_and(|e| amqp_reply(e).is_some_and(|(c, _)| c == 403))
        {
            v.push(format!("guest declared queue {name:?}: {r:?}"));
        }
    }
    let _ = conn.close(200, "done".into()).await;
    v
}
