//! The oslo-like topology: names of exchanges and queues, and their declaration.
//!
//! * control exchange (topic, default `sealrpc`): queue `topic` bound with routing key
//!   `topic` (competing consumers) and queue `topic.server` bound with `topic.server`;
//! * fanout exchange `<topic>_fanout`, with one exclusive auto-delete queue per server,
//!   named `<topic>_fanout.<server>` (deterministic, so broker permissions can name it);
//! * replies: the default exchange, routing key = the caller's direct reply-to name.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use sealrpc_core::transport::{Address, TransportError};

use crate::error;
use crate::options::AmqpOptions;

/// The pseudo-queue a client consumes for direct reply-to (and the `reply_to` it sets).
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Name of the shared (competing consumers) queue of `topic`; also its routing key.
pub fn shared_queue(topic: &str) -> String {
    topic.to_owned()
}

/// Name of a server's own queue (`topic.server`); also its routing key.
pub fn server_queue(topic: &str, server: &str) -> String {
    format!("{topic}.{server}")
}

/// Name of the fanout exchange of `topic` (`topic_fanout`).
pub fn fanout_exchange(topic: &str) -> String {
    format!("{topic}_fanout")
}

/// Name of a server's fanout queue (`topic_fanout.server`).
pub fn fanout_queue(topic: &str, server: &str) -> String {
    format!("{topic}_fanout.{server}")
}

/// The `(exchange, routing key)` a message to `to` is published with.
pub fn route(control_exchange: &str, to: &Address) -> (String, String) {
    match to {
        Address::Topic(t) => (control_exchange.to_owned(), shared_queue(t)),
        Address::Server { topic, server } => {
            (control_exchange.to_owned(), server_queue(topic, server))
        }
        Address::Fanout(t) => (fanout_exchange(t), String::new()),
        Address::Reply(r) => (String::new(), r.clone()),
    }
}

/// Declares the control exchange (passively unless `declare_exchanges`).
pub(crate) async fn declare_control(
    ch: &Channel,
    opts: &AmqpOptions,
) -> Result<(), TransportError> {
    declare_exchange(ch, opts, &opts.control_exchange, ExchangeKind::Topic, false).await
}

/// Declares `topic`'s fanout exchange (auto-deleted with its last queue unless durable).
pub(crate) async fn declare_fanout(
    ch: &Channel,
    opts: &AmqpOptions,
    topic: &str,
) -> Result<(), TransportError> {
    declare_exchange(
        ch,
        opts,
        &fanout_exchange(topic),
        ExchangeKind::Fanout,
        !opts.durable,
    )
    .await
}

async fn declare_exchange(
    ch: &Channel,
    opts: &AmqpOptions,
    name: &str,
    kind: ExchangeKind,
    auto_delete: bool,
) -> Result<(), TransportError> {
    let o = ExchangeDeclareOptions {
        passive: !opts.declare_exchanges,
        durable: opts.durable,
        auto_delete,
        ..ExchangeDeclareOptions::default()
    };
    ch.exchange_declare(name.into(), kind, o, FieldTable::default())
        .await
        .map_err(|e| error::from_lapin(&e, &format!("declare exchange {name:?}")))
}

/// Declares a topic or server queue (durable/quorum per options, else auto-deleted) and
/// binds it to the control exchange with its own name as routing key.
pub(crate) async fn declare_bound_queue(
    ch: &Channel,
    opts: &AmqpOptions,
    queue: &str,
) -> Result<(), TransportError> {
    let mut args = FieldTable::default();
    if opts.durable && opts.quorum_queues {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    let o = QueueDeclareOptions {
        durable: opts.durable,
        auto_delete: !opts.durable,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(queue.into(), o, args)
        .await
        .map_err(|e| error::from_lapin(&e, &format!("declare queue {queue:?}")))?;
    bind(ch, queue, &opts.control_exchange, queue).await
}

/// Declares a server's exclusive fanout queue and binds it to the topic's fanout exchange.
pub(crate) async fn declare_fanout_queue(
    ch: &Channel,
    topic: &str,
    server: &str,
) -> Result<String, TransportError> {
    let queue = fanout_queue(topic, server);
    let o = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(queue.as_str().into(), o, FieldTable::default())
        .await
        .map_err(|e| error::from_lapin(&e, &format!("declare queue {queue:?}")))?;
    bind(ch, &queue, &fanout_exchange(topic), "").await?;
    Ok(queue)
}

async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), TransportError> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| {
        error::from_lapin(
            &e,
            &format!("bind queue {queue:?} to exchange {exchange:?} with key {key:?}"),
        )
    })
}
