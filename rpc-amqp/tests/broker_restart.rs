//! Broker restart: STOPS THE RABBITMQ APP (`rabbitmqctl stop_app` / `start_app`) while a
//! listener, a reply inbox and a sender exist. Kept in its own test binary so that it
//! never overlaps this crate's other broker tests (cargo runs test binaries one at a
//! time); other processes using the broker meanwhile see a connection loss.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{connect, eventually, msg, opts, recv, spec, uniq};
use sealrpc_amqp::AmqpOptions;
use sealrpc_core::transport::{Address, Transport, TransportErrorKind};

fn rabbitmqctl(arg: &str) {
    let out = Command::new("rabbitmqctl")
        .arg(arg)
        .output()
        .expect("run rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {arg}: {out:?}");
}

/// Deletes the test's durable queues and exchange even if the test panics.
struct Cleanup {
    queues: Vec<String>,
    exchange: String,
}
impl Drop for Cleanup {
    fn drop(&mut self) {
        for q in &self.queues {
            let _ = Command::new("rabbitmqctl")
                .args(["-q", "delete_queue", q])
                .output();
        }
        let expr = format!(
            "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"{}\">>), false, <<\"test\">>).",
            self.exchange
        );
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "eval", &expr])
            .output();
    }
}

/// Starts the app again even if the test panics.
struct Restart;
impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_broker_restart() {
    let started = Instant::now();
    let exchange = uniq("restart-ctl");
    let topic = uniq("restart");
    let _cleanup = Cleanup {
        queues: vec![topic.clone(), format!("{topic}.s1")],
        exchange: exchange.clone(),
    };
    let t = connect(AmqpOptions {
        control_exchange: exchange.clone(),
        durable: true,
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(1),
        reconnect_wait: Duration::from_secs(30),
        ..opts()
    })
    .await;
    let spec = spec(&topic, "s1", true, false);
    let mut sub = t.listen(&spec).await.unwrap();
    let mut inbox = t.reply_inbox().await.unwrap();

    // Confirmed, persistent casts to the durable queue; not consumed before the stop.
    for i in 0..5u8 {
        let mut m = msg(Address::Topic(topic.clone()), vec![i]);
        m.confirm = true;
        t.send(m).await.unwrap();
    }
    assert_eq!(t.connection_generation(), 1);

    // A second sender that waits at most 1 s for a lost connection.
    let impatient = connect(AmqpOptions {
        control_exchange: exchange.clone(),
        durable: true,
        reconnect_max: Duration::from_secs(1),
        reconnect_wait: Duration::from_secs(1),
        ..opts()
    })
    .await;

    let guard = Restart;
    rabbitmqctl("stop_app");
    eventually("the loss is noticed", 10, || {
        !t.is_connected() && !impatient.is_connected()
    })
    .await;
    // While down, a send waits (up to its bound) for the link, then fails retriably.
    let t0 = Instant::now();
    let e = impatient
        .send(msg(Address::Topic(topic.clone()), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::Unavailable, "{e}");
    assert!(e.is_retriable());
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    assert!(!e.message.contains(":guest@"), "password redacted: {e}");
    rabbitmqctl("start_app");
    drop(guard);

    // Sends succeed again without recreating the transport (send waits for the reconnect).
    t.send(msg(Address::Topic(topic.clone()), vec![100]))
        .await
        .unwrap();
    assert!(t.connection_generation() >= 2);
    // The impatient sender may still be in its backoff: its errors are retriable.
    let mut tries = 0;
    while let Err(e) = impatient
        .send(msg(Address::Topic(topic.clone()), vec![101]))
        .await
    {
        assert!(e.is_retriable() && tries < 10, "{e}");
        tries += 1;
    }

    // Everything confirmed before the stop is delivered (at least once), then the new one.
    let mut seen = HashSet::new();
    while !(0..5u8).chain([100, 101]).all(|i| seen.contains(&i)) {
        let mut d = recv(&mut sub, 20).await.expect("delivery after restart");
        seen.insert(d.payload[0]);
        d.ack().await;
    }

    // The reply inbox works again too.
    let mut call = msg(Address::Topic(topic.clone()), vec![200]);
    call.reply_to = Some(inbox.route.clone());
    t.send(call).await.unwrap();
    let mut d = recv(&mut sub, 10).await.expect("call after restart");
    assert_eq!(d.payload[0], 200);
    let r = d.reply_to.clone().unwrap();
    d.ack().await;
    t.send(msg(Address::Reply(r), "pong")).await.unwrap();
    let reply = recv(&mut inbox.deliveries, 10)
        .await
        .expect("reply after restart");
    assert_eq!(&reply.payload[..], b"pong");

    drop(sub);
    t.close().await;
    impatient.close().await;
    eprintln!("broker restart test took {:?}", started.elapsed());
}
