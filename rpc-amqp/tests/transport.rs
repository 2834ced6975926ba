//! The AMQP transport against the real broker (`AMQP_ADDR`, default local RabbitMQ).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{connect, listen_again, msg, opts, recv, spec, uniq};
use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::transport::{Address, Transport, TransportErrorKind};

#[tokio::test]
async fn topic_competing_consumers_share_load() {
    let t = connect(opts()).await;
    let topic = uniq("t-topic");
    let mut a = t.listen(&spec(&topic, "a", true, false)).await.unwrap();
    let mut b = t.listen(&spec(&topic, "b", true, false)).await.unwrap();
    for i in 0..20u8 {
        t.send(msg(Address::Topic(topic.clone()), vec![i]))
            .await
            .unwrap();
    }
    let (mut na, mut nb, mut seen) = (0, 0, HashSet::new());
    while seen.len() < 20 {
        tokio::select! {
            Some(mut d) = a.recv() => { na += 1; seen.insert(d.payload[0]); d.ack().await; }
            Some(mut d) = b.recv() => { nb += 1; seen.insert(d.payload[0]); d.ack().await; }
            _ = tokio::time::sleep(Duration::from_secs(5)) => panic!("timed out: {na} + {nb}"),
        }
    }
    assert_eq!(na + nb, 20);
    assert!(na > 0 && nb > 0, "load not shared: {na} / {nb}");
}

#[tokio::test]
async fn server_address_reaches_only_that_server() {
    let t = connect(opts()).await;
    let topic = uniq("t-server");
    let mut a = t.listen(&spec(&topic, "a", true, false)).await.unwrap();
    let mut b = t.listen(&spec(&topic, "b", true, false)).await.unwrap();
    let to = Address::Server {
        topic: topic.clone(),
        server: "b".into(),
    };
    t.send(msg(to, "for-b")).await.unwrap();
    let mut d = recv(&mut b, 5).await.expect("b gets it");
    assert_eq!(&d.payload[..], b"for-b");
    d.ack().await;
    assert!(recv(&mut a, 1).await.is_none());
    // One listener per server name.
    let dup = t
        .listen(&spec(&topic, "b", false, false))
        .await
        .unwrap_err();
    assert_eq!(dup.kind, TransportErrorKind::Other, "{dup}");
    assert!(dup.message.contains("already has a listener"), "{dup}");
}

#[tokio::test]
async fn fanout_reaches_every_server() {
    let t = connect(opts()).await;
    let topic = uniq("t-fanout");
    // Nobody listens yet: not an error.
    t.send(msg(Address::Fanout(topic.clone()), "nobody"))
        .await
        .unwrap();
    let mut a = t.listen(&spec(&topic, "a", false, true)).await.unwrap();
    let mut b = t.listen(&spec(&topic, "b", false, true)).await.unwrap();
    t.send(msg(Address::Fanout(topic.clone()), "all"))
        .await
        .unwrap();
    for sub in [&mut a, &mut b] {
        let mut d = recv(sub, 5).await.expect("fanout delivered");
        assert_eq!(&d.payload[..], b"all");
        d.ack().await;
    }
}

#[tokio::test]
async fn reply_inbox_round_trip_and_user_id() {
    let t = connect(opts()).await;
    let topic = uniq("t-reply");
    let mut server = t.listen(&spec(&topic, "s", true, false)).await.unwrap();
    let mut inbox = t.reply_inbox().await.unwrap();
    let mut call = msg(Address::Topic(topic.clone()), "ping");
    call.reply_to = Some(inbox.route.clone());
    t.send(call).await.unwrap();
    let mut d = recv(&mut server, 5).await.expect("call delivered");
    assert_eq!(d.broker_user.as_deref(), Some(t.user()));
    // A control-plane server answers a control-plane call by direct reply-to (it may write
    // the default exchange); a guest answers through the reply exchange with the caller's
    // token (tests/isolation.rs), which reaches the same inbox.
    let reply_to = d.reply_to.clone().expect("reply_to set");
    assert!(
        reply_to.starts_with("amq.rabbitmq.reply-to."),
        "a control-plane server answers by direct reply-to, got {reply_to:?}"
    );
    assert_ne!(reply_to, inbox.route);
    d.ack().await;
    for (to, body) in [(reply_to, "pong"), (inbox.route.clone(), "pong by token")] {
        t.send(msg(Address::Reply(to), body)).await.unwrap();
        let r = recv(&mut inbox.deliveries, 5)
            .await
            .expect("reply delivered");
        assert_eq!(&r.payload[..], body.as_bytes());
        assert_eq!(r.broker_user.as_deref(), Some("guest"));
        assert!(
            r.acker.is_none(),
            "the inbox acknowledges reply-queue deliveries itself"
        );
    }
    // A reply route that is neither a token nor direct reply-to is refused locally.
    let e = t
        .send(msg(Address::Reply("some-queue".into()), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::NoListener);
}

#[tokio::test]
async fn hundred_concurrent_calls_correlate() {
    let t = connect(opts()).await;
    let topic = uniq("t-many");
    let mut server = t.listen(&spec(&topic, "s", true, false)).await.unwrap();
    let st = t.clone();
    tokio::spawn(async move {
        while let Some(mut d) = server.recv().await {
            let mut body = b"re:".to_vec();
            body.extend_from_slice(&d.payload);
            let to = Address::Reply(d.reply_to.clone().unwrap());
            d.ack().await;
            st.send(msg(to, body)).await.unwrap();
        }
    });
    let mut inbox = t.reply_inbox().await.unwrap();
    let started = Instant::now();
    let mut sends = Vec::new();
    for i in 0..100u32 {
        let t = t.clone();
        let route = inbox.route.clone();
        let to = Address::Topic(topic.clone());
        sends.push(tokio::spawn(async move {
            let mut m = msg(to, i.to_be_bytes().to_vec());
            m.reply_to = Some(route);
            t.send(m).await
        }));
    }
    for s in sends {
        s.await.unwrap().unwrap();
    }
    let mut got = HashSet::new();
    while got.len() < 100 {
        let r = recv(&mut inbox.deliveries, 10).await.expect("all replies");
        assert_eq!(&r.payload[..3], b"re:");
        let i = u32::from_be_bytes(r.payload[3..7].try_into().unwrap());
        assert!(i < 100 && got.insert(i), "bad or duplicate reply {i}");
    }
    eprintln!("100 calls round-tripped in {:?}", started.elapsed());
}

/// Replies through the control plane's reply queue are acknowledged in batches: more replies
/// than the queue's prefetch (256) must still arrive (a missing ack would stall the 257th).
#[tokio::test]
async fn reply_queue_flows_past_its_prefetch_with_batched_acks() {
    let t = connect(opts()).await;
    let topic = uniq("t-prefetch");
    let mut server = t.listen(&spec(&topic, "s", true, false)).await.unwrap();
    let st = t.clone();
    tokio::spawn(async move {
        while let Some(mut d) = server.recv().await {
            let to = Address::Reply(d.reply_to.clone().unwrap());
            let body = d.payload.to_vec();
            d.ack().await;
            st.send(msg(to, body)).await.unwrap();
        }
    });
    let mut inbox = t.reply_inbox().await.unwrap();
    // In waves of 100 in flight: 600 replies, none acknowledged one by one.
    for wave in 0..6u32 {
        for i in 0..100u32 {
            let mut m = msg(
                Address::Topic(topic.clone()),
                (wave * 100 + i).to_be_bytes().to_vec(),
            );
            m.reply_to = Some(inbox.route.clone());
            t.send(m).await.unwrap();
        }
        let mut got = HashSet::new();
        while got.len() < 100 {
            let r = recv(&mut inbox.deliveries, 10)
                .await
                .expect("every reply of the wave");
            let i = u32::from_be_bytes(r.payload[..4].try_into().unwrap());
            assert!(
                i / 100 == wave && got.insert(i),
                "bad or duplicate reply {i}"
            );
        }
    }
}

#[tokio::test]
async fn no_listener_fails_fast() {
    let t = connect(opts()).await;
    let topic = uniq("t-nobody");
    for to in [
        Address::Topic(topic.clone()),
        Address::Server {
            topic: topic.clone(),
            server: "x".into(),
        },
    ] {
        let start = Instant::now();
        let e = t.send(msg(to, "hello?")).await.unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::NoListener, "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
    // A guest-style transport (passive declares) cannot start without the exchange...
    let missing = uniq("x-missing");
    let e = AmqpTransport::connect(AmqpOptions {
        control_exchange: missing.clone(),
        declare_exchanges: false,
        ..opts()
    })
    .await
    .unwrap_err();
    assert!(e.message.contains("404"), "{e}");
    // ...and a send to a control exchange that vanished is NoListener.
    let t2 = connect(AmqpOptions {
        control_exchange: missing.clone(),
        ..opts()
    })
    .await;
    common::cleanup(&[], std::slice::from_ref(&missing)).await;
    let e = t2.send(msg(Address::Topic(topic), "x")).await.unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::NoListener, "{e}");
    assert!(e.message.contains("404"), "{e}");
}

#[tokio::test]
async fn confirmed_send_with_expiration() {
    let t = connect(opts()).await;
    let topic = uniq("t-confirm");
    let mut s = t.listen(&spec(&topic, "s", true, false)).await.unwrap();
    let mut m = msg(Address::Topic(topic.clone()), "sure");
    m.confirm = true;
    m.expiration = Some(Duration::from_secs(30));
    t.send(m).await.unwrap();
    let mut d = recv(&mut s, 5).await.unwrap();
    assert_eq!(&d.payload[..], b"sure");
    d.ack().await;
}

#[tokio::test]
async fn oversized_is_too_large() {
    let t = connect(AmqpOptions {
        max_message_size: 1024,
        ..opts()
    })
    .await;
    let topic = uniq("t-big");
    let _s = t.listen(&spec(&topic, "s", true, false)).await.unwrap();
    let e = t
        .send(msg(Address::Topic(topic.clone()), vec![0u8; 1025]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::TooLarge, "{e}");
    t.send(msg(Address::Topic(topic), vec![0u8; 1024]))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_credentials_are_access_refused() {
    let e = AmqpTransport::connect(AmqpOptions {
        url: "amqp://guest:definitely-wrong@127.0.0.1:5672/%2f".into(),
        ..opts()
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::AccessRefused, "{e}");
    assert!(!e.message.contains("definitely-wrong"), "{e}");
}

#[tokio::test]
async fn unreachable_broker_is_unavailable_with_redacted_password() {
    let start = Instant::now();
    let e = AmqpTransport::connect(AmqpOptions {
        url: "amqp://guest:hunter2@127.0.0.1:1/%2f".into(),
        ..opts()
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::Unavailable, "{e}");
    assert!(e.message.contains("amqp://guest:***@127.0.0.1:1"), "{e}");
    assert!(!e.message.contains("hunter2"), "{e}");
    assert!(e.is_retriable());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn durable_queue_keeps_casts_and_expiration_drops_stale_ones() {
    let exchange = uniq("t-durable-ctl");
    let t = connect(AmqpOptions {
        control_exchange: exchange.clone(),
        durable: true,
        ..opts()
    })
    .await;
    let topic = uniq("t-durable");
    let s = spec(&topic, "s", true, false);
    drop(t.listen(&s).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await; // consumer gone, queue stays
    let mut stale = msg(Address::Topic(topic.clone()), "stale");
    stale.expiration = Some(Duration::from_millis(50));
    t.send(stale).await.unwrap();
    let mut kept = msg(Address::Topic(topic.clone()), "kept");
    kept.confirm = true;
    t.send(kept).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the stale cast expires
    let mut sub = listen_again(&t, &s).await;
    let mut d = recv(&mut sub, 5).await.expect("kept cast");
    assert_eq!(&d.payload[..], b"kept");
    // A nack with requeue gives it back; it comes again.
    d.acker.take().unwrap().nack(true).await;
    let mut d = recv(&mut sub, 5).await.expect("redelivered");
    assert_eq!(&d.payload[..], b"kept");
    d.ack().await;
    assert!(recv(&mut sub, 1).await.is_none());
    drop(sub);
    t.close().await;
    common::cleanup(&[topic.clone(), format!("{topic}.s")], &[exchange]).await;
}

#[tokio::test]
async fn quorum_queues() {
    let exchange = uniq("t-quorum-ctl");
    let t = connect(AmqpOptions {
        control_exchange: exchange.clone(),
        durable: true,
        quorum_queues: true,
        ..opts()
    })
    .await;
    let topic = uniq("t-quorum");
    let mut sub = t.listen(&spec(&topic, "s", true, true)).await.unwrap();
    let mut m = msg(Address::Topic(topic.clone()), "q");
    m.confirm = true;
    t.send(m).await.unwrap();
    let mut d = recv(&mut sub, 5)
        .await
        .expect("delivered from quorum queue");
    d.ack().await;
    drop(sub);
    t.close().await;
    common::cleanup(
        &[topic.clone(), format!("{topic}.s")],
        &[exchange, format!("{topic}_fanout")],
    )
    .await;
}

/// A call's publish returns before its confirm (`send_call`): a call nobody listens to is
/// written and its confirm fails fast as `NoListener` (so does `send` of it); with a
/// server, the reply comes whether or not the confirm is awaited, and a confirm dropped
/// unawaited finishes on its own while its channel (the only one here) carries nothing else.
#[tokio::test]
async fn call_confirms_race_their_replies() {
    let t = connect(AmqpOptions {
        publisher_channels: 1,
        ..opts()
    })
    .await;
    let topic = uniq("t-call-confirm");
    let mut inbox = t.reply_inbox().await.unwrap();
    let call = |payload: Vec<u8>| {
        let mut c = msg(Address::Topic(topic.clone()), payload);
        c.reply_to = Some(inbox.route.clone());
        c
    };
    let start = Instant::now();
    let confirm = t.send_call(call(b"hello?".to_vec())).await.unwrap();
    let e = confirm.await.unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::NoListener, "{e}");
    let e = t.send(call(b"hello?".to_vec())).await.unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::NoListener, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    let mut server = t.listen(&spec(&topic, "s", true, false)).await.unwrap();
    for i in 0..40u8 {
        let confirm = t.send_call(call(vec![i])).await.unwrap();
        let mut d = recv(&mut server, 5).await.expect("call delivered");
        let to = Address::Reply(d.reply_to.clone().expect("reply_to"));
        d.ack().await;
        t.send(msg(to, vec![i])).await.unwrap();
        let r = recv(&mut inbox.deliveries, 5).await.expect("reply");
        assert_eq!(&r.payload[..], &[i]);
        if i % 2 == 0 {
            confirm.await.unwrap();
        } else {
            drop(confirm);
        }
    }
    common::eventually("late confirms finish", 10, || t.late_confirms() == 0).await;
}
