//! `AmqpOptions::publish_to_queues` against the real broker (`AMQP_ADDR`, default local
//! RabbitMQ): calls and casts go straight to their queues, past the control exchange.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use common::{connect, msg, opts, recv, spec, uniq};
use sealrpc_amqp::AmqpOptions;
use sealrpc_core::transport::{Address, Transport, TransportErrorKind};

/// `publish_to_queues`: calls and casts skip the control exchange but reach exactly the
/// queues it routes to, an absent queue is still `NoListener`, and replies are unchanged.
#[tokio::test]
async fn publishing_to_queues_reaches_the_same_queues() {
    let listener = connect(opts()).await;
    let direct = connect(AmqpOptions {
        publish_to_queues: true,
        ..opts()
    })
    .await;
    let topic = uniq("t-direct");
    let mut a = listener
        .listen(&spec(&topic, "a", true, false))
        .await
        .unwrap();
    let mut b = listener
        .listen(&spec(&topic, "b", false, false))
        .await
        .unwrap();
    // A tap bound to the control exchange with b's key sees what goes through it.
    let tap = Tap::bind(&opts(), &format!("{topic}.b")).await;
    let to_b = Address::Server {
        topic: topic.clone(),
        server: "b".into(),
    };
    for (t, body) in [(&listener, "via the exchange"), (&direct, "for-b")] {
        t.send(msg(to_b.clone(), body)).await.unwrap();
        let mut d = recv(&mut b, 5).await.expect("b gets its message");
        assert_eq!(&d.payload[..], body.as_bytes());
        d.ack().await;
    }
    assert!(recv(&mut a, 1).await.is_none(), "a gets nothing of b's");
    assert_eq!(
        tap.drain().await,
        vec![b"via the exchange".to_vec()],
        "only the message routed by the control exchange reaches its other bindings"
    );
    // The shared queue (only a consumes it), with a reply by direct reply-to.
    let mut inbox = direct.reply_inbox().await.unwrap();
    let mut call = msg(Address::Topic(topic.clone()), "shared");
    call.reply_to = Some(inbox.route.clone());
    direct.send(call).await.unwrap();
    let mut d = recv(&mut a, 5).await.expect("the shared queue gets it");
    assert_eq!(&d.payload[..], b"shared");
    let reply_to = d.reply_to.clone().expect("a reply address");
    d.ack().await;
    listener
        .send(msg(Address::Reply(reply_to), "answer"))
        .await
        .unwrap();
    let r = recv(&mut inbox.deliveries, 5)
        .await
        .expect("the reply arrives");
    assert_eq!(&r.payload[..], b"answer");
    // Nobody's queue: still refused as NoListener.
    for to in [
        Address::Topic(uniq("t-nobody")),
        Address::Server {
            topic: topic.clone(),
            server: "nobody".into(),
        },
    ] {
        let e = direct.send(msg(to, "hello?")).await.unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::NoListener, "{e}");
    }
}

/// A queue bound to the control exchange beside a listener's (an audit tap), on a raw lapin
/// connection; exclusive, so it goes with the connection.
struct Tap {
    channel: lapin::Channel,
    queue: String,
    _conn: lapin::Connection,
}

impl Tap {
    async fn bind(opts: &AmqpOptions, key: &str) -> Self {
        use lapin::options::{QueueBindOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let conn = lapin::Connection::connect(&opts.url, lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        let queue = uniq("tap");
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                opts.control_exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            channel,
            queue,
            _conn: conn,
        }
    }

    /// Every message the tap holds, in order.
    async fn drain(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let o = lapin::options::BasicGetOptions { no_ack: true };
        while let Some(m) = self
            .channel
            .basic_get(self.queue.as_str().into(), o)
            .await
            .unwrap()
        {
            out.push(m.delivery.data.clone());
        }
        out
    }
}
