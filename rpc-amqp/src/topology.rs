//! The oslo-like topology: names of exchanges and queues, and their declaration.
//!
//! * control exchange (topic, default `sealrpc`): queue `topic` bound with routing key
//!   `topic` (competing consumers) and queue `topic.server` bound with `topic.server`;
//! * fanout exchange `<topic>_fanout`, with one exclusive auto-delete queue per server,
//!   named `<topic>_fanout.<server>` (deterministic, so broker permissions can name it);
//! * replies: the default exchange, routing key = the caller's direct reply-to name; or
//!   (calls from the control plane) the reply exchange `<control>_reply`, routing key =
//!   the caller's route token, bound to the caller's own reply queue;
//! * notifications: a topic exchange `<control>_notify`; each listener pool of
//!   `topic.priority` has a queue `topic.priority_notify.<pool>` bound with
//!   `topic.priority` (every pool gets every notification, a pool's listeners compete);
//! * guest ingress: a topic exchange `<topic>_ingress` per control-plane topic, to which
//!   the topic's listeners also bind their queues. Restricted guests publish their calls
//!   there: it leads only to that topic's queues, whatever the routing key or `CC`/`BCC`
//!   headers say (RabbitMQ applies topic permissions to the routing key only).

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

/// Name of `topic`'s guest ingress exchange (`topic_ingress`, a topic exchange to which
/// only `topic`'s own queues are bound).
pub fn ingress_exchange(topic: &str) -> String {
    format!("{topic}_ingress")
}

/// Name of the reply exchange of a control exchange (`control_reply`, a topic exchange to
/// which only the control plane's reply queues are bound, each with its route token).
pub fn reply_exchange(control_exchange: &str) -> String {
    format!("{control_exchange}_reply")
}

/// Name of the notification exchange of a control exchange (`control_notify`, a topic
/// exchange to which only notification pool queues are bound, each with its
/// `topic.priority`): guests may publish notifications there and nowhere else.
pub fn notify_exchange(control_exchange: &str) -> String {
    format!("{control_exchange}_notify")
}

/// Name of a pool's queue of one notification address (`topic.priority_notify.pool`,
/// as fanout queues are `topic_fanout.server`).
pub fn notify_queue(pool: &str, topic: &str, priority: &str) -> String {
    format!("{topic}.{priority}_notify.{pool}")
}

/// The AMQP header (in `headers`) in which a control-plane call names the caller's reply
/// route token; a receiver replies to the reply exchange with that token as routing key.
pub const REPLY_HEADER: &str = "sealrpc-reply";

/// Prefix of a reply route token (`sealrpc-reply.` then 24 lowercase hex digits).
pub const REPLY_TOKEN_PREFIX: &str = "sealrpc-reply.";

/// Hex digits in a reply route token.
pub const REPLY_TOKEN_HEX: usize = 24;

/// True when `s` is a well-formed reply route token (the reply exchange's routing keys).
pub fn is_reply_token(s: &str) -> bool {
    s.strip_prefix(REPLY_TOKEN_PREFIX).is_some_and(|h| {
        h.len() == REPLY_TOKEN_HEX && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The `(exchange, routing key)` a message to `to` is published with by the control
/// plane. Replies go to the reply exchange when `to` is a reply route token, else (a
/// direct reply-to name) to the default exchange.
pub fn route(control_exchange: &str, to: &Address) -> (String, String) {
    match to {
        Address::Topic(t) => (control_exchange.to_owned(), shared_queue(t)),
        Address::Server { topic, server } => {
            (control_exchange.to_owned(), server_queue(topic, server))
        }
        Address::Fanout(t) => (fanout_exchange(t), String::new()),
        Address::Reply(r) if is_reply_token(r) => (reply_exchange(control_exchange), r.clone()),
        Address::Reply(r) => (String::new(), r.clone()),
        Address::Notification { .. } => (notify_exchange(control_exchange), to.dst()),
    }
}

/// The `(exchange, routing key)` the control plane publishes `to` with when it publishes
/// to queues directly ([`AmqpOptions::publish_to_queues`]): calls and casts to a topic or a
/// server through the default exchange, by the name of the queue that [`route`] would reach
/// through the control exchange (each such queue is bound there with its own name, and
/// nothing else is); everything else as [`route`].
pub fn queue_route(control_exchange: &str, to: &Address) -> (String, String) {
    match to {
        Address::Topic(t) => (String::new(), shared_queue(t)),
        Address::Server { topic, server } => (String::new(), server_queue(topic, server)),
        other => route(control_exchange, other),
    }
}

/// The `(exchange, routing key)` a restricted guest publishes `to` with: calls and casts
/// through the topic's ingress exchange, everything else as [`route`].
pub fn guest_route(control_exchange: &str, to: &Address) -> (String, String) {
    match to {
        Address::Topic(t) => (ingress_exchange(t), shared_queue(t)),
        Address::Server { topic, server } => (ingress_exchange(topic), server_queue(topic, server)),
        other => route(control_exchange, other),
    }
}

/// Declares the control exchange (topic, durable per options, never auto-deleted, no
/// arguments: no alternate exchange) passively unless `declare_exchanges`; with
/// `declare_exchanges` also the reply exchange (same flags).
pub(crate) async fn declare_control(
    ch: &Channel,
    opts: &AmqpOptions,
) -> Result<(), TransportError> {
    declare_exchange(ch, opts, &opts.control_exchange, ExchangeKind::Topic, false).await?;
    if opts.declare_exchanges {
        let reply = reply_exchange(&opts.control_exchange);
        declare_exchange(ch, opts, &reply, ExchangeKind::Topic, false).await?;
    }
    Ok(())
}

/// Declares `topic`'s guest ingress exchange (topic; auto-deleted with its last binding
/// unless durable).
pub(crate) async fn declare_ingress(
    ch: &Channel,
    opts: &AmqpOptions,
    topic: &str,
) -> Result<(), TransportError> {
    let name = ingress_exchange(topic);
    declare_exchange(ch, opts, &name, ExchangeKind::Topic, !opts.durable).await
}

/// Declares the notification exchange (topic; auto-deleted with its last binding unless
/// durable).
pub(crate) async fn declare_notify(ch: &Channel, opts: &AmqpOptions) -> Result<(), TransportError> {
    let name = notify_exchange(&opts.control_exchange);
    declare_exchange(ch, opts, &name, ExchangeKind::Topic, !opts.durable).await
}

/// Declares a listener's queue: durable (a quorum queue where the options ask for one) or,
/// in non-durable mode, auto-deleted with its last consumer.
async fn declare_listener_queue(
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
    Ok(())
}

/// Declares a pool's notification queue (durable/quorum per options, else auto-deleted)
/// and binds it to the notification exchange with `key` (`topic.priority`).
pub(crate) async fn declare_notify_queue(
    ch: &Channel,
    opts: &AmqpOptions,
    queue: &str,
    key: &str,
) -> Result<(), TransportError> {
    declare_listener_queue(ch, opts, queue).await?;
    bind(ch, queue, &notify_exchange(&opts.control_exchange), key).await
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
    declare_listener_queue(ch, opts, queue).await?;
    bind(ch, queue, &opts.control_exchange, queue).await
}

/// Binds `topic`'s queue `queue` (its own name as routing key) to the topic's ingress
/// exchange, declaring that first: guests reach a topic only through it.
pub(crate) async fn bind_ingress(
    ch: &Channel,
    opts: &AmqpOptions,
    topic: &str,
    queue: &str,
) -> Result<(), TransportError> {
    declare_ingress(ch, opts, topic).await?;
    bind(ch, queue, &ingress_exchange(topic), queue).await
}

/// Checks that a provisioned queue exists (passive declare: needs no permission), for
/// restricted guests, which declare and bind nothing.
pub(crate) async fn check_queue(ch: &Channel, queue: &str) -> Result<(), TransportError> {
    let o = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(queue.into(), o, FieldTable::default())
        .await
        .map(|_| ())
        .map_err(|e| {
            let mut t = error::from_lapin(&e, &format!("check queue {queue:?}"));
            if error::amqp_reply(&e).is_some_and(|r| r.0 == error::NOT_FOUND) {
                t.message = format!(
                    "{} (a restricted guest's queues are provisioned by the operator: \
                     AmqpTransport::provision_guest)",
                    t.message
                );
            }
            t
        })
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

pub(crate) async fn bind(
    ch: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), TransportError> {
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
