//! The raw lapin floor: the cheapest request/reply RabbitMQ allows, without sealrpc.
//!
//! An echo consumer on a unique exclusive queue (its own connection) answers every message
//! to its `reply_to`; the client (another connection) consumes `amq.rabbitmq.reply-to`
//! (direct reply-to, no-ack) and publishes each request with `reply_to` and a correlation
//! id, on the same channel. Two variants:
//!
//! - [`RawSemantics::Floor`]: no publisher confirms, not mandatory, auto-ack on the echo
//!   side — the absolute floor of one round trip through the broker;
//! - [`RawSemantics::Confirmed`]: the delivery semantics `sealrpc-amqp` gives every message
//!   — requests `mandatory` and confirmed before waiting for the reply, replies confirmed,
//!   requests acknowledged by the echo consumer after replying;
//! - [`RawSemantics::Topology`]: `Confirmed` plus what `sealrpc-amqp` asks of the broker
//!   besides delivery: requests routed through a topic exchange (the control exchange)
//!   instead of straight to the queue, and the properties `sealrpc-amqp` sets (`user-id`,
//!   which the broker checks against the connection's user; `delivery-mode`; a per-message
//!   `expiration`; the reply route token in `headers`). What this row adds over
//!   `raw-lapin+confirms` is the broker's share of sealrpc's topology; what `plain` adds
//!   over this row is sealrpc's own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::oneshot;

use crate::BoxError;
use crate::runner::{CallFuture, EchoCall};

/// The name RabbitMQ gives direct reply-to.
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Which delivery guarantees the raw round trip pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSemantics {
    /// No confirms, no mandatory flag, auto-ack: the absolute floor.
    Floor,
    /// Mandatory + publisher confirms on requests and replies, manual ack (what
    /// `sealrpc-amqp` does for every message).
    Confirmed,
    /// `Confirmed`, routed through a topic exchange, with `sealrpc-amqp`'s properties.
    Topology,
}

impl RawSemantics {
    /// The row name in the report.
    pub fn name(self) -> &'static str {
        match self {
            RawSemantics::Floor => "raw-lapin",
            RawSemantics::Confirmed => "raw-lapin+confirms",
            RawSemantics::Topology => "raw-lapin+topology",
        }
    }

    /// Every variant, in report order.
    pub const ALL: [RawSemantics; 3] = [
        RawSemantics::Floor,
        RawSemantics::Confirmed,
        RawSemantics::Topology,
    ];
}

/// The per-message TTL the topology floor sets on requests (sealrpc sets the call's).
const TOPOLOGY_EXPIRATION_MS: &str = "30000";

/// A reply route token of the form `sealrpc-amqp` puts in its requests' headers.
const TOPOLOGY_REPLY_TOKEN: &str = "sealrpc-reply.000000000000000000000000";

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<usize>>>>;

/// A raw lapin echo round trip, ready to call.
pub struct RawEcho {
    semantics: RawSemantics,
    client: Connection,
    server: Connection,
    channel: Channel,
    queue: String,
    /// Where requests go: the default exchange, or the topology floor's topic exchange.
    exchange: String,
    /// The connection's user, for `user-id` (topology floor only).
    user: String,
    payload: Vec<u8>,
    next: AtomicU64,
    waiters: Waiters,
    /// Serializes confirmed publishes on the client channel (one confirm at a time, as the
    /// sealrpc transport does on an inbox channel) — only for [`RawSemantics::Confirmed`].
    publish_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RawEcho {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEcho")
            .field("semantics", &self.semantics)
            .field("queue", &self.queue)
            .field("payload", &self.payload.len())
            .finish_non_exhaustive()
    }
}

fn lock(w: &Waiters) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<usize>>> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

impl RawEcho {
    /// Connects twice to `url`, starts the echo consumer and the reply consumer, and
    /// prepares calls carrying `payload_len` bytes.
    pub async fn start(
        url: &str,
        semantics: RawSemantics,
        payload_len: usize,
    ) -> Result<Self, BoxError> {
        let confirmed = semantics != RawSemantics::Floor;
        let topology = semantics == RawSemantics::Topology;
        let user = url
            .parse::<lapin::uri::AMQPUri>()
            .map(|u| u.authority.userinfo.username)
            .unwrap_or_default();
        let server = Connection::connect(url, ConnectionProperties::default()).await?;
        let client = Connection::connect(url, ConnectionProperties::default()).await?;

        // Echo side.
        let sch = server.create_channel().await?;
        if confirmed {
            sch.confirm_select(ConfirmSelectOptions::default()).await?;
            sch.basic_qos(64, BasicQosOptions::default()).await?;
        }
        let mut id = [0u8; 8];
        sealrpc_core::rand::fill(&mut id);
        let queue = format!(
            "sealrpc-bench-raw.{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        sch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
        let exchange = if topology {
            let x = format!("{queue}.x");
            sch.exchange_declare(
                x.as_str().into(),
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
            sch.queue_bind(
                queue.as_str().into(),
                x.as_str().into(),
                queue.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
            x
        } else {
            String::new()
        };
        let reply_user = user.clone();
        let mut consumer = sch
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: !confirmed,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let Some(reply_to) = d.properties.reply_to().clone() else {
                    continue;
                };
                let mut props = BasicProperties::default();
                if topology {
                    props = props
                        .with_user_id(reply_user.as_str().into())
                        .with_delivery_mode(1);
                }
                if let Some(c) = d.properties.correlation_id() {
                    props = props.with_correlation_id(c.clone());
                }
                let published = sch
                    .basic_publish(
                        "".into(),
                        reply_to,
                        BasicPublishOptions::default(),
                        &d.data,
                        props,
                    )
                    .await;
                match published {
                    Ok(confirm) if confirmed => {
                        let _ = confirm.await;
                        let _ = d.ack(BasicAckOptions::default()).await;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });

        // Client side: direct reply-to consumer and the publishing channel are the same.
        let channel = client.create_channel().await?;
        if confirmed {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
        }
        let mut replies = channel
            .basic_consume(
                DIRECT_REPLY_TO.into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let waiters: Waiters = Arc::default();
        let w = Arc::clone(&waiters);
        tokio::spawn(async move {
            while let Some(Ok(d)) = replies.next().await {
                let corr = d
                    .properties
                    .correlation_id()
                    .as_ref()
                    .and_then(|c| c.as_str().parse::<u64>().ok());
                if let Some(tx) = corr.and_then(|c| lock(&w).remove(&c)) {
                    let _ = tx.send(d.data.len());
                }
            }
        });
        Ok(Self {
            semantics,
            client,
            server,
            channel,
            queue,
            exchange,
            user,
            payload: crate::pipeline::payload(payload_len),
            next: AtomicU64::new(1),
            waiters,
            publish_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// One request/reply round trip.
    pub async fn round_trip(&self) -> Result<(), BoxError> {
        let corr = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(corr, tx);
        let mut props = BasicProperties::default()
            .with_reply_to(DIRECT_REPLY_TO.into())
            .with_correlation_id(ShortString::from(corr.to_string()));
        if self.semantics == RawSemantics::Topology {
            let mut headers = FieldTable::default();
            headers.insert(
                sealrpc_amqp::topology::REPLY_HEADER.into(),
                AMQPValue::LongString(TOPOLOGY_REPLY_TOKEN.into()),
            );
            props = props
                .with_user_id(self.user.as_str().into())
                .with_delivery_mode(1)
                .with_expiration(TOPOLOGY_EXPIRATION_MS.into())
                .with_headers(headers);
        }
        let confirmed = self.semantics != RawSemantics::Floor;
        let publish = async {
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: confirmed,
                        immediate: false,
                    },
                    &self.payload,
                    props,
                )
                .await?;
            if confirmed {
                confirm.await?;
            }
            Ok::<_, lapin::Error>(())
        };
        let sent = if confirmed {
            let _g = self.publish_lock.lock().await;
            publish.await
        } else {
            publish.await
        };
        if let Err(e) = sent {
            lock(&self.waiters).remove(&corr);
            return Err(e.into());
        }
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), rx)
            .await
            .map_err(|_| "raw echo: no reply in 30 s")??;
        if got != self.payload.len() {
            return Err("raw echo: reply of the wrong size".into());
        }
        Ok(())
    }

    /// Closes both connections.
    pub async fn close(&self) {
        let _ = self.client.close(200, "bench done".into()).await;
        let _ = self.server.close(200, "bench done".into()).await;
    }
}

impl EchoCall for RawEcho {
    fn call(&self) -> CallFuture<'_> {
        Box::pin(self.round_trip())
    }
}
