//! A guest's raw AMQP attempts, each on a fresh channel, recording what the broker let
//! through as violations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests
#![allow(dead_code)]

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ExchangeBindOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};
use sealrpc_amqp::AmqpTransport;
use sealrpc_amqp::error::{ACCESS_REFUSED, amqp_reply};
use sealrpc_core::transport::{Address, Outgoing, ReplyInbox, Subscription, Transport};

/// Prefix of every attack payload (what the victims look for).
pub const MARK: &str = "attack:";

/// A guest's raw connection and the violations found.
pub struct Probe {
    conn: Connection,
    /// What the broker allowed that it must not have.
    pub violations: Vec<String>,
}

/// `{name: [keys]}` (for `CC` / `BCC` sender-selected distribution).
pub fn headers_with(name: &str, keys: &[&str]) -> FieldTable {
    let mut h = FieldTable::default();
    let list: Vec<AMQPValue> = keys
        .iter()
        .map(|k| AMQPValue::LongString((*k).into()))
        .collect();
    h.insert(name.into(), AMQPValue::FieldArray(FieldArray::from(list)));
    h
}

/// Queue arguments that dead-letter every message at once to `exchange` with `key`.
pub fn dead_letter_args(exchange: &str, key: &str) -> FieldTable {
    let mut a = FieldTable::default();
    a.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(exchange.into()),
    );
    a.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(key.into()),
    );
    a.insert("x-message-ttl".into(), AMQPValue::LongLongInt(0));
    a
}

impl Probe {
    /// A probe on `conn` (the guest's own user).
    pub fn new(conn: Connection) -> Self {
        Self {
            conn,
            violations: Vec::new(),
        }
    }

    async fn channel(&self) -> Channel {
        self.conn.create_channel().await.unwrap()
    }

    /// Records a violation unless `r` is a 403 ACCESS_REFUSED.
    fn refused<T>(&mut self, what: &str, r: lapin::Result<T>) {
        match r {
            Err(e) if amqp_reply(&e).is_some_and(|(c, _)| c == ACCESS_REFUSED) => {
                eprintln!("refused as required: {what}");
            }
            Err(e) => self
                .violations
                .push(format!("{what}: expected 403 ACCESS_REFUSED, got {e}")),
            Ok(_) => self.violations.push(format!("{what}: allowed")),
        }
    }

    /// Publishes `MARK + what` (mandatory, confirmed); a 403 is fine, and so is a publish
    /// the broker takes: the victims then tell whether it went somewhere it must not.
    pub async fn publish(
        &mut self,
        what: &str,
        exchange: &str,
        key: &str,
        headers: Option<FieldTable>,
    ) {
        let ch = self.channel().await;
        ch.confirm_select(Default::default()).await.unwrap();
        let mut props = BasicProperties::default().with_delivery_mode(2);
        if let Some(h) = headers {
            props = props.with_headers(h);
        }
        let payload = format!("{MARK}{what}");
        let r = async {
            ch.basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                payload.as_bytes(),
                props,
            )
            .await?
            .await
        };
        match tokio::time::timeout(Duration::from_secs(5), r).await {
            Ok(Err(e)) if amqp_reply(&e).is_some_and(|(c, _)| c == ACCESS_REFUSED) => {
                eprintln!("refused as required: publish {what}");
            }
            Ok(Err(e)) if amqp_reply(&e).is_some_and(|(c, _)| c == 404) => {
                eprintln!("no such exchange: publish {what}");
            }
            Ok(Err(e)) => self.violations.push(format!("publish {what}: {e}")),
            Ok(Ok(Confirmation::Ack(Some(_)))) => eprintln!("returned unroutable: {what}"),
            Ok(Ok(c)) => eprintln!("broker took: publish {what} ({c:?})"),
            Err(_) => self.violations.push(format!("publish {what}: no confirm")),
        }
    }

    /// Declares (or with `delete`, deletes) queue `name` with `args`: must be refused.
    pub async fn declare_queue(
        &mut self,
        what: &str,
        name: &str,
        args: Option<FieldTable>,
        delete: bool,
    ) {
        let ch = self.channel().await;
        if delete {
            let r = ch
                .queue_delete(name.into(), QueueDeleteOptions::default())
                .await;
            return self.refused(what, r);
        }
        let o = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let r = ch
            .queue_declare(name.into(), o, args.unwrap_or_default())
            .await;
        self.refused(what, r);
    }

    /// Declares a fanout exchange whose alternate exchange is `alternate`: must be refused.
    pub async fn declare_exchange(&mut self, what: &str, alternate: &str) {
        let ch = self.channel().await;
        let mut args = FieldTable::default();
        args.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(alternate.into()),
        );
        let name = format!("{alternate}-evil");
        let r = ch
            .exchange_declare(
                name.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions::default(),
                args,
            )
            .await;
        self.refused(what, r);
    }

    /// Binds exchange `destination` to `source`: must be refused.
    pub async fn bind_exchange(&mut self, what: &str, destination: &str, source: &str) {
        let ch = self.channel().await;
        let r = ch
            .exchange_bind(
                destination.into(),
                source.into(),
                "#".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        self.refused(what, r);
    }

    /// Binds `queue` to `exchange` with `key`: must be refused.
    pub async fn bind_queue(&mut self, what: &str, queue: &str, exchange: &str, key: &str) {
        let ch = self.channel().await;
        let r = ch
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        self.refused(what, r);
    }

    /// Consumes and `basic.get`s `queue`: both must be refused.
    pub async fn read_queue(&mut self, what: &str, queue: &str) {
        let ch = self.channel().await;
        let r = ch
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await;
        self.refused(what, r);
        let ch = self.channel().await;
        let r = ch.basic_get(queue.into(), BasicGetOptions::default()).await;
        self.refused(&format!("{what} (basic.get)"), r);
    }

    /// Deletes another's queue: must be refused.
    pub async fn delete_queue(&mut self, what: &str, queue: &str) {
        self.declare_queue(what, queue, None, true).await;
    }

    /// Publishes with another `user-id`: RabbitMQ refuses with 406.
    pub async fn forged_user_id(&mut self, key: &str) {
        let ch = self.channel().await;
        ch.confirm_select(Default::default()).await.unwrap();
        let r = async {
            ch.basic_publish(
                "".into(),
                key.into(),
                BasicPublishOptions::default(),
                b"x",
                BasicProperties::default().with_user_id("guest".into()),
            )
            .await?
            .await
        };
        match r.await {
            Err(e) if amqp_reply(&e).is_some_and(|(c, _)| c == 406 || c == 403) => {}
            other => self
                .violations
                .push(format!("forged user-id: expected 406/403, got {other:?}")),
        }
    }

    /// A passive declare needs no permission in RabbitMQ: it reveals that a queue exists
    /// and its message and consumer counts (documented residual), nothing more.
    pub async fn passive_check(&mut self, queue: &str) {
        let ch = self.channel().await;
        let o = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let r = ch
            .queue_declare(queue.into(), o, FieldTable::default())
            .await;
        eprintln!(
            "passive declare of another's queue (residual: counts only): {:?}",
            r.map(|q| (q.message_count(), q.consumer_count()))
        );
    }
}

/// Subscriptions that must see no attack payload.
pub struct Victims {
    /// (name, subscription).
    pub subs: Vec<(&'static str, Subscription)>,
}

/// Reads every victim for a while; each attack payload found is a violation.
pub async fn drain_attacks(victims: &mut Victims) -> Vec<String> {
    let mut v = Vec::new();
    for (name, sub) in &mut victims.subs {
        while let Ok(Some(mut d)) =
            tokio::time::timeout(Duration::from_millis(1500), sub.recv()).await
        {
            let text = String::from_utf8_lossy(&d.payload).to_string();
            if text.starts_with(MARK) {
                v.push(format!("{text} reached {name}"));
            }
            d.ack().await;
        }
    }
    v
}

/// An old-style guest reads only the AMQP `reply_to` of a new control plane's call and
/// answers through the default exchange (its old user may): the reply still arrives.
/// The old guest is played by raw AMQP on a plain queue `<topic>.g` bound to the control
/// exchange, as the original transport declared it.
pub async fn old_guest_answers(
    op: &AmqpTransport,
    inbox: &mut ReplyInbox,
    control_exchange: &str,
    topic: &str,
) -> bool {
    use futures_util::StreamExt;
    let queue = format!("{topic}.g");
    let conn = lapin::Connection::connect(
        &sealrpc_amqp::AmqpOptions::from_env().url,
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let o = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    ch.queue_declare(queue.as_str().into(), o, FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind(
        queue.as_str().into(),
        control_exchange.into(),
        queue.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let call = Outgoing {
        to: Address::Server {
            topic: topic.to_owned(),
            server: "g".into(),
        },
        payload: "old?".into(),
        reply_to: Some(inbox.route.clone()),
        expiration: None,
        confirm: false,
    };
    op.send(call).await.unwrap();
    let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await
    else {
        return false;
    };
    let direct = d
        .properties
        .reply_to()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if !direct.starts_with(sealrpc_amqp::topology::DIRECT_REPLY_TO) {
        return false;
    }
    let confirm = ch
        .basic_publish(
            "".into(),
            direct.as_str().into(),
            BasicPublishOptions::default(),
            b"old answer",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    drop(confirm);
    let ok = tokio::time::timeout(Duration::from_secs(5), inbox.deliveries.recv())
        .await
        .ok()
        .flatten()
        .is_some_and(|r| &r.payload[..] == b"old answer");
    let _ = conn.close(200, "old".into()).await;
    ok
}
