//! Per-guest broker credentials, proven against the real broker: a guest reads only its
//! own queues and publishes only the routing keys it may use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::time::Duration;

use common::{connect, msg, opts, recv, uniq};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sealrpc_amqp::admin::Rabbitmqctl;
use sealrpc_amqp::error::{ACCESS_REFUSED, amqp_reply};
use sealrpc_amqp::{AmqpOptions, AmqpTransport, CredentialPolicy, GuestCredentials};
use sealrpc_core::transport::{Address, ListenSpec, Transport, TransportErrorKind};

fn refused<T: std::fmt::Debug>(what: &str, r: lapin::Result<T>) {
    let e = r.expect_err(what);
    let (code, text) = amqp_reply(&e).unwrap_or_else(|| panic!("{what}: not an AMQP error: {e}"));
    assert_eq!(code, ACCESS_REFUSED, "{what}: {text}");
    eprintln!("refused as expected: {what}: {code} {text}");
}

#[tokio::test]
async fn guests_are_confined_to_their_own_queues_and_keys() {
    let ctl = Rabbitmqctl::default();
    let tag = uniq("iso");
    let policy = CredentialPolicy {
        control_exchange: format!("{tag}-ctl"),
        guest_topic: format!("{tag}-ga"),
        call_topics: vec![format!("{tag}-cond")],
        ..CredentialPolicy::default()
    };
    let (id_a, id_b) = ("aaaa1111", "bbbb2222");
    let ca = GuestCredentials::for_guest(id_a, &policy).unwrap();
    let cb = GuestCredentials::for_guest(id_b, &policy).unwrap();
    ctl.apply_async(&ca).await.unwrap();
    ctl.apply_async(&cb).await.unwrap();

    let result = tokio::time::timeout(Duration::from_secs(60), scenario(&policy, &ca, &cb)).await;

    ctl.delete_user_async(&ca.user).await.unwrap();
    ctl.delete_user_async(&cb.user).await.unwrap();
    common::cleanup(&[], std::slice::from_ref(&policy.control_exchange)).await;
    result.expect("scenario timed out");
}

fn guest_opts(c: &GuestCredentials, policy: &CredentialPolicy) -> AmqpOptions {
    AmqpOptions {
        url: c.url("amqp", "127.0.0.1:5672"),
        control_exchange: policy.control_exchange.clone(),
        declare_exchanges: false,
        ..opts()
    }
}

async fn scenario(policy: &CredentialPolicy, ca: &GuestCredentials, cb: &GuestCredentials) {
    let topic = policy.guest_topic.clone();
    let cond = policy.call_topics[0].clone();
    // The operator's side: creates the exchanges and serves the conductor topic.
    let admin = connect(AmqpOptions {
        control_exchange: policy.control_exchange.clone(),
        ..opts()
    })
    .await;
    admin.declare_fanout(&topic).await.unwrap();
    let mut conductor = admin
        .listen(&ListenSpec {
            topic: cond.clone(),
            server: "c1".into(),
            shared: true,
            fanout: false,
        })
        .await
        .unwrap();
    let responder = admin.clone();
    tokio::spawn(async move {
        while let Some(mut d) = conductor.recv().await {
            let who = d.broker_user.clone().unwrap_or_default();
            if let Some(r) = d.reply_to.clone() {
                let _ = responder
                    .send(msg(Address::Reply(r), format!("hello {who}")))
                    .await;
            }
            d.ack().await;
        }
    });

    // Guests connect with their own credentials and listen on their own queues.
    let a = AmqpTransport::connect(guest_opts(ca, policy))
        .await
        .unwrap();
    let b = AmqpTransport::connect(guest_opts(cb, policy))
        .await
        .unwrap();
    assert_eq!(a.user(), ca.user);
    let mut a_sub = a.listen(&ca.listen).await.unwrap();
    let mut b_sub = b.listen(&cb.listen).await.unwrap();

    // Legitimate traffic works: operator -> guest A, fanout -> both, A calls the conductor.
    let to_a = Address::Server {
        topic: topic.clone(),
        server: ca.listen.server.clone(),
    };
    admin.send(msg(to_a, "task for A")).await.unwrap();
    let mut d = recv(&mut a_sub, 5).await.expect("A gets its message");
    assert_eq!(&d.payload[..], b"task for A");
    assert_eq!(d.broker_user.as_deref(), Some("guest"));
    d.ack().await;
    admin
        .send(msg(Address::Fanout(topic.clone()), "everyone"))
        .await
        .unwrap();
    for sub in [&mut a_sub, &mut b_sub] {
        let mut d = recv(sub, 5).await.expect("fanout");
        assert_eq!(&d.payload[..], b"everyone");
        d.ack().await;
    }
    let mut inbox = a.reply_inbox().await.unwrap();
    let mut call = msg(Address::Topic(cond.clone()), "status");
    call.reply_to = Some(inbox.route.clone());
    a.send(call).await.unwrap();
    let r = recv(&mut inbox.deliveries, 5).await.expect("reply to A");
    assert_eq!(
        String::from_utf8_lossy(&r.payload),
        format!("hello {}", ca.user)
    );
    assert!(
        recv(&mut b_sub, 1).await.is_none(),
        "B saw nothing of A's traffic"
    );

    // Through our API: A cannot publish with B's routing key, nor serve B's name or
    // declare queues outside its pattern.
    let to_b = Address::Server {
        topic: topic.clone(),
        server: cb.listen.server.clone(),
    };
    let e = a.send(msg(to_b, "forged")).await.unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::AccessRefused, "{e}");
    assert!(e.message.contains("403"), "{e}");
    let e = a
        .send(msg(Address::Topic(topic.clone()), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::AccessRefused, "{e}");
    let e = a.listen(&cb.listen).await.unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::AccessRefused, "{e}");
    // A's own traffic still works after those refusals (fresh channels).
    a.send(msg(Address::Topic(cond.clone()), "still fine"))
        .await
        .unwrap();

    // Raw AMQP as guest A: each attempt is refused by RabbitMQ with 403.
    let conn = Connection::connect(
        &ca.url("amqp", "127.0.0.1:5672"),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let b_queue = format!("{topic}.{}", cb.listen.server);
    let b_fanout = format!("{topic}_fanout.{}", cb.listen.server);
    let a_queue = format!("{topic}.{}", ca.listen.server);
    let ch = conn.create_channel().await.unwrap();
    refused(
        "consume B's queue",
        ch.basic_consume(
            b_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    let ch = conn.create_channel().await.unwrap();
    refused(
        "consume B's fanout queue",
        ch.basic_consume(
            b_fanout.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    let ch = conn.create_channel().await.unwrap();
    refused(
        "bind B's queue",
        ch.queue_bind(
            b_queue.as_str().into(),
            policy.control_exchange.as_str().into(),
            b_queue.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    let ch = conn.create_channel().await.unwrap();
    refused(
        "bind own queue with B's routing key",
        ch.queue_bind(
            a_queue.as_str().into(),
            policy.control_exchange.as_str().into(),
            b_queue.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    let ch = conn.create_channel().await.unwrap();
    refused(
        "bind own queue to everything",
        ch.queue_bind(
            a_queue.as_str().into(),
            policy.control_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    let ch = conn.create_channel().await.unwrap();
    refused(
        "declare a queue outside its pattern",
        ch.queue_declare(
            format!("{topic}.evil").as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    let ch = conn.create_channel().await.unwrap();
    refused(
        "declare an exchange",
        ch.exchange_declare(
            "evil-x".into(),
            lapin::ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        )
        .await,
    );
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let publish = async {
        ch.basic_publish(
            policy.control_exchange.as_str().into(),
            b_queue.as_str().into(),
            BasicPublishOptions::default(),
            b"forged",
            BasicProperties::default(),
        )
        .await?
        .await
    };
    refused("publish with B's routing key", publish.await);

    // The documented limit: the default exchange cannot be restricted per routing key,
    // but what A injects that way is attributed to A by the broker (user-id).
    let ch = conn.create_channel().await.unwrap();
    let confirm = ch
        .basic_publish(
            "".into(),
            b_queue.as_str().into(),
            BasicPublishOptions::default(),
            b"via default exchange",
            BasicProperties::default().with_user_id(ca.user.as_str().into()),
        )
        .await
        .unwrap();
    drop(confirm);
    let d = recv(&mut b_sub, 5).await.expect("default-exchange message");
    assert_eq!(d.broker_user.as_deref(), Some(ca.user.as_str()));
    // Forging another user-id is refused by the broker (406 PRECONDITION_FAILED).
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let forged = async {
        ch.basic_publish(
            "".into(),
            b_queue.as_str().into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default().with_user_id("guest".into()),
        )
        .await?
        .await
    };
    let e = forged.await.unwrap_err();
    assert_eq!(amqp_reply(&e).map(|r| r.0), Some(406), "{e}");
    let _ = conn.close(200, "done".into()).await;
    a.close().await;
    b.close().await;
    admin.close().await;
}
