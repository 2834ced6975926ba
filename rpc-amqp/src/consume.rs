//! Listeners: consume a server's queues into a [`Subscription`], and keep doing so across
//! reconnects (same channel, new consumers).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use sealrpc_core::transport::{Acker, Delivery, ListenSpec, TransportError, TransportErrorKind};
use tokio::sync::mpsc;

use crate::connection::{Link, Supervisor, reestablish};
use crate::error;
use crate::options::AmqpOptions;
use crate::shutdown::{self, TaskGuard};
use crate::topology;

/// Acknowledges one AMQP delivery (`basic.ack` / `basic.nack`).
///
/// If the channel it came on is gone (connection lost), acknowledging does nothing: the
/// broker already put the message back in its queue for redelivery.
///
/// An acknowledgement is bounded by [`ACK_TIMEOUT`]: on a connection that died mid-flight
/// the frame may never be written, and a request task (and so a server's graceful
/// shutdown) must not wait for it forever.
pub(crate) struct AmqpAcker(pub(crate) lapin::Acker);

/// How long an ack or nack may take before it is given up (the broker redelivers).
pub(crate) const ACK_TIMEOUT: Duration = Duration::from_secs(5);

async fn bounded<T, F: std::future::Future<Output = lapin::Result<T>>>(what: &str, f: F) {
    match tokio::time::timeout(ACK_TIMEOUT, f).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "{what} failed (the broker will redeliver)"),
        Err(_) => tracing::debug!("{what} timed out (the broker will redeliver)"),
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(self: Box<Self>) {
        bounded("ack", self.0.ack(BasicAckOptions::default())).await;
    }

    async fn nack(self: Box<Self>, requeue: bool) {
        let o = BasicNackOptions {
            multiple: false,
            requeue,
        };
        bounded("nack", self.0.nack(o)).await;
    }
}

/// How a receiver answers a call that offers both reply paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyPath {
    /// Through the reply exchange with the caller's route token (a guest, which may not
    /// write the default exchange); direct reply-to only when the call has no token.
    Exchange,
    /// By direct reply-to (the control plane, which may write the default exchange): one
    /// broker queue hop and one consumer acknowledgement fewer per reply; the token only
    /// when the call has no direct reply-to name.
    Direct,
}

impl ReplyPath {
    /// The path a listener with these options answers by.
    pub(crate) fn of(opts: &AmqpOptions) -> Self {
        if opts.declare_exchanges {
            ReplyPath::Direct
        } else {
            ReplyPath::Exchange
        }
    }
}

/// Turns a lapin delivery into a transport [`Delivery`]; `ack` says whether it needs one.
///
/// The delivery's `reply_to` is one of the two reply addresses a call may offer, as `path`
/// prefers: the caller's reply route token when the call names a well-formed one in the
/// [`topology::REPLY_HEADER`] header (reply through the reply exchange), or the AMQP
/// `reply_to` when it is a direct reply-to name.
pub(crate) fn to_delivery(d: lapin::message::Delivery, ack: bool, path: ReplyPath) -> Delivery {
    let props = &d.properties;
    // Read lazily: only the address taken is copied out.
    let token = || {
        props.headers().as_ref().and_then(|h| {
            match h.inner().get(topology::REPLY_HEADER) {
                Some(AMQPValue::LongString(s)) => Some(s.to_string()),
                Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
                _ => None,
            }
            .filter(|t| topology::is_reply_token(t))
        })
    };
    let direct = || props.reply_to().as_ref().map(|s| s.to_string());
    let reply_to = match path {
        ReplyPath::Exchange => token().or_else(direct),
        ReplyPath::Direct => direct()
            .filter(|r| r.starts_with(topology::DIRECT_REPLY_TO))
            .or_else(token),
    };
    Delivery {
        reply_to,
        broker_user: props.user_id().as_ref().map(|s| s.to_string()),
        acker: if ack {
            Some(Box::new(AmqpAcker(d.acker.clone())) as Box<dyn Acker>)
        } else {
            None
        },
        payload: Bytes::from(d.data),
    }
}

/// A listener's channel and consumers on one link.
pub(crate) struct Established {
    pub(crate) channel: Channel,
    pub(crate) consumers: Vec<Consumer>,
}

pub(crate) async fn consume(
    ch: &Channel,
    queue: &str,
    exclusive: bool,
) -> Result<Consumer, TransportError> {
    let o = BasicConsumeOptions {
        exclusive,
        ..BasicConsumeOptions::default()
    };
    ch.basic_consume(queue.into(), "".into(), o, FieldTable::default())
        .await
        .map_err(|e| {
            let mut t = error::from_lapin(&e, &format!("consume queue {queue:?}"));
            if exclusive && t.message.contains("exclusive") {
                t.kind = TransportErrorKind::Other;
                t.message = format!("{queue} already has a listener ({})", t.message);
            }
            t
        })
}

/// A new channel of `link` for a listener, with the options' prefetch.
pub(crate) async fn listener_channel(
    link: &Link,
    opts: &AmqpOptions,
) -> Result<Channel, TransportError> {
    let ch = link
        .conn
        .create_channel()
        .await
        .map_err(|e| error::from_lapin(&e, "open channel"))?;
    ch.basic_qos(opts.prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| error::from_lapin(&e, "set prefetch"))?;
    Ok(ch)
}

/// Declares `spec`'s topology on a new channel of `link` and starts its consumers.
pub(crate) async fn establish(
    link: &Link,
    sup: &Supervisor,
    spec: &ListenSpec,
) -> Result<Established, TransportError> {
    let opts = &sup.opts;
    let ch = listener_channel(link, opts).await?;
    topology::declare_control(&ch, opts).await?;
    if !opts.declare_exchanges {
        return establish_restricted(ch, opts, spec).await;
    }
    let mut consumers = Vec::new();
    let server_q = topology::server_queue(&spec.topic, &spec.server);
    topology::declare_bound_queue(&ch, opts, &server_q).await?;
    topology::bind_ingress(&ch, opts, &spec.topic, &server_q).await?;
    // One listener per server name, like the in-memory transport (exclusive consumer);
    // quorum queues do not take exclusive consumers.
    let exclusive = !(opts.durable && opts.quorum_queues);
    consumers.push(consume(&ch, &server_q, exclusive).await?);
    if spec.shared {
        let q = topology::shared_queue(&spec.topic);
        topology::declare_bound_queue(&ch, opts, &q).await?;
        topology::bind_ingress(&ch, opts, &spec.topic, &q).await?;
        consumers.push(consume(&ch, &q, false).await?);
    }
    if spec.fanout {
        topology::declare_fanout(&ch, opts, &spec.topic).await?;
        let q = topology::declare_fanout_queue(&ch, &spec.topic, &spec.server).await?;
        consumers.push(consume(&ch, &q, false).await?);
    }
    Ok(Established {
        channel: ch,
        consumers,
    })
}

/// A restricted guest (`declare_exchanges: false`) declares and binds nothing: it checks
/// its provisioned queues (passive declare) and consumes them, one listener per queue.
async fn establish_restricted(
    ch: Channel,
    opts: &AmqpOptions,
    spec: &ListenSpec,
) -> Result<Established, TransportError> {
    // (queue, exclusive consumer): its own queues have one listener, a shared one many.
    // On a cluster they are quorum queues, which take no exclusive consumer.
    let own = !(opts.durable && opts.quorum_queues);
    let mut queues = vec![(topology::server_queue(&spec.topic, &spec.server), own)];
    if spec.shared {
        queues.push((topology::shared_queue(&spec.topic), false));
    }
    if spec.fanout {
        queues.push((topology::fanout_queue(&spec.topic, &spec.server), own));
    }
    let mut consumers = Vec::new();
    for (q, exclusive) in &queues {
        topology::check_queue(&ch, q).await?;
        consumers.push(consume(&ch, q, *exclusive).await?);
    }
    Ok(Established {
        channel: ch,
        consumers,
    })
}

/// Forwards deliveries until a consumer ends (channel or connection lost, consumer
/// cancelled), or the subscriber goes away or the transport closes (returns false then).
/// Cancels the consumers and closes the channel before returning (see [`shutdown`]).
pub(crate) async fn forward(
    est: Established,
    sup: &Supervisor,
    tx: &mpsc::Sender<Delivery>,
) -> bool {
    let tags: Vec<_> = est.consumers.iter().map(Consumer::tag).collect();
    let streams: Vec<BoxStream<'static, Option<lapin::Result<lapin::message::Delivery>>>> = est
        .consumers
        .into_iter()
        .map(|c| c.map(Some).chain(stream::once(async { None })).boxed())
        .collect();
    let mut all = stream::select_all(streams);
    let closing = sup.closing();
    tokio::pin!(closing);
    let path = ReplyPath::of(&sup.opts);
    let alive = loop {
        let next = tokio::select! {
            n = all.next() => n,
            _ = tx.closed() => break false,
            () = &mut closing => break false,
        };
        match next {
            Some(Some(Ok(d))) => {
                if tx.send(to_delivery(d, true, path)).await.is_err() {
                    break false;
                }
            }
            Some(Some(Err(e))) => {
                tracing::warn!(error = %e, "AMQP consumer failed");
                break true;
            }
            Some(None) | None => break true,
        }
    };
    shutdown::close_channel(&est.channel, &tags, "listener done").await;
    drop(all);
    alive
}

/// Runs a listener: forwards from `first`, then re-establishes after every loss (with
/// backoff and jitter) for as long as the subscriber is there.
pub(crate) async fn run(
    sup: Arc<Supervisor>,
    spec: ListenSpec,
    first: Established,
    tx: mpsc::Sender<Delivery>,
    _task: TaskGuard,
) {
    let mut current = first;
    while forward(current, &sup, &tx).await {
        let again = reestablish(&sup, &tx, "listener", |link| {
            let (sup, spec) = (&sup, &spec);
            async move { establish(&link, sup, spec).await }
        });
        let Some(est) = again.await else { return };
        tracing::info!(topic = %spec.topic, server = %spec.server, "listener re-established");
        current = est;
    }
}
