//! Reply inboxes over RabbitMQ direct reply-to (`amq.rabbitmq.reply-to`), plus, on the
//! control plane, a reply queue bound to the reply exchange.
//!
//! A control-plane inbox (a transport that declares, `declare_exchanges`) also declares
//! an exclusive, capped reply queue named by its route token and bound to the reply
//! exchange with that token, and its calls carry the token in the
//! [`REPLY_HEADER`](crate::topology::REPLY_HEADER) header. A guest then replies through
//! the reply exchange and needs no write on the default exchange (which routes to any
//! queue by name); an old guest, which knows only the AMQP `reply_to`, still replies by
//! direct reply-to, and so does a control-plane server, which may write the default
//! exchange (see [`ReplyPath`](crate::consume::ReplyPath)).
//!
//! Each inbox owns a few confirm-mode channels (`AmqpOptions::publisher_channels`), each
//! consuming `amq.rabbitmq.reply-to` (no-ack, as RabbitMQ requires) into the inbox; a call
//! that names the inbox in `reply_to` is published on one of them with the AMQP `reply_to`
//! property `amq.rabbitmq.reply-to`, which the broker rewrites into a per-channel name that
//! the server replies to. Each channel has one publish in flight (returns and confirms pair
//! exactly), so several channels let calls in flight overlap their confirm round trips.
//! A call's confirm goes back to the caller ([`PendingConfirm`]), which awaits it alongside
//! the reply; a reply that comes first makes it moot, and it then finishes on its own.
//!
//! The inbox's `route` is a local token (`sealrpc-reply.<hex>`), stable across
//! reconnects. After a reconnect the inbox gets a new channel (and so a new broker
//! name): replies to calls sent before the loss are dropped by the broker, and the RPC
//! layer's deadline handles those calls. Replies that arrive after the RPC layer gave up
//! on a call are still delivered here; the RPC layer drops (and counts) them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use sealrpc_core::transport::{Delivery, TransportError};
use tokio::sync::{Mutex as AsyncMutex, mpsc, watch};

use crate::connection::{Link, Supervisor, reestablish};
use crate::consume::{ReplyPath, to_delivery};
use crate::error;
use crate::options::AmqpOptions;
use crate::publish::{self, Failed, PendingConfirm, Publish};
use crate::shutdown;
use crate::topology::{self, DIRECT_REPLY_TO};

/// Prefix of inbox routes.
pub(crate) const ROUTE_PREFIX: &str = topology::REPLY_TOKEN_PREFIX;

/// Messages a control-plane reply queue holds at most (then publishes are refused).
const REPLY_QUEUE_MAX_LENGTH: i64 = 4096;
/// Bytes a control-plane reply queue holds at most.
const REPLY_QUEUE_MAX_BYTES: i64 = 64 * 1024 * 1024;
/// Unacknowledged deliveries from a reply queue (bounds what a flood costs the client).
const REPLY_QUEUE_PREFETCH: u16 = 256;

/// One channel of an inbox: the current channel (None while re-establishing) and a publish
/// lock (one publish in flight per channel, held until its confirm is in).
struct Slot {
    channel: watch::Sender<Option<(u64, Channel)>>,
    publish_lock: Arc<AsyncMutex<()>>,
}

/// One inbox: its channels, all consuming into the same subscription.
pub(crate) struct Inbox {
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl Inbox {
    /// Publishes a call on one of the inbox channels (so direct reply-to works): a free one,
    /// else the next in turn; waits up to `wait` for that channel to be (re-)established.
    /// Returns once the call is written, with its confirm (bounded by `confirm_timeout`)
    /// still to come; the channel carries nothing else until it is in.
    pub(crate) async fn publish_call(
        &self,
        p: Publish<'_>,
        wait: Duration,
        confirm_timeout: Duration,
        late: &Arc<AtomicUsize>,
    ) -> Result<PendingConfirm, Failed> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut chosen = None;
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Ok(g) = Arc::clone(&slot.publish_lock).try_lock_owned() {
                chosen = Some((slot, g));
                break;
            }
        }
        let (slot, guard) = match chosen {
            Some(c) => c,
            None => {
                let slot = &self.slots[start];
                (slot, Arc::clone(&slot.publish_lock).lock_owned().await)
            }
        };
        let mut rx = slot.channel.subscribe();
        let ready = tokio::time::timeout(wait, async {
            loop {
                if let Some((_, ch)) = &*rx.borrow_and_update()
                    && ch.status().connected()
                {
                    return Some(ch.clone());
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        let ch = match ready {
            Ok(Some(ch)) => ch,
            Ok(None) => {
                return Err(Failed {
                    error: error::closed(),
                    reply_code: None,
                    poisoned: false,
                });
            }
            Err(_) => {
                return Err(Failed {
                    error: error::unavailable(format!(
                        "reply inbox not re-established within {wait:?}"
                    )),
                    reply_code: None,
                    poisoned: false,
                });
            }
        };
        let (what, confirm) = publish::publish_unconfirmed(&ch, p).await?;
        let outcome = async move {
            let _one_in_flight = guard;
            publish::await_confirm(&what, confirm, confirm_timeout).await
        };
        Ok(PendingConfirm::new(outcome, late))
    }
}

/// The inboxes of a transport, by route.
#[derive(Default)]
pub(crate) struct Inboxes {
    map: Mutex<HashMap<String, Arc<Inbox>>>,
}

impl Inboxes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Inbox>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The inbox behind `route`.
    pub(crate) fn get(&self, route: &str) -> Option<Arc<Inbox>> {
        self.lock().get(route).cloned()
    }

    /// Opens an inbox on `link` and starts its task.
    pub(crate) async fn open(
        self: &Arc<Self>,
        sup: Arc<Supervisor>,
        link: &Link,
    ) -> Result<(String, mpsc::Receiver<Delivery>), TransportError> {
        let mut id = [0u8; topology::REPLY_TOKEN_HEX / 2];
        sealrpc_core::rand::fill(&mut id);
        let route = format!("{ROUTE_PREFIX}{}", hex::encode(id));
        let mut slots = Vec::new();
        let mut consumers = Vec::new();
        for i in 0..sup.opts.publisher_channels.max(1) {
            // The first channel also consumes the reply queue (control plane only).
            let queue = (i == 0 && sup.opts.declare_exchanges).then_some(route.as_str());
            let (ch, consumer) = establish(link, &sup.opts, queue).await?;
            let (ch_tx, _) = watch::channel(Some((link.generation, ch)));
            slots.push(Slot {
                channel: ch_tx,
                publish_lock: Arc::new(AsyncMutex::new(())),
            });
            consumers.push(consumer);
        }
        let inbox = Arc::new(Inbox {
            slots,
            next: AtomicUsize::new(0),
        });
        self.lock().insert(route.clone(), inbox.clone());
        let (tx, rx) = mpsc::channel(sup.opts.queue_capacity.max(1));
        let live = Arc::new(AtomicUsize::new(consumers.len()));
        for (i, consumer) in consumers.into_iter().enumerate() {
            let (me, r, sup, inbox, tx, live) = (
                self.clone(),
                route.clone(),
                sup.clone(),
                inbox.clone(),
                tx.clone(),
                live.clone(),
            );
            let queue = (i == 0 && sup.opts.declare_exchanges).then(|| r.clone());
            let task = sup.track();
            tokio::spawn(async move {
                run(sup, &inbox.slots[i], queue, consumer, tx).await;
                drop(task);
                // The last channel task to end forgets the route.
                if live.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me.lock().remove(&r);
                }
            });
        }
        Ok((route, rx))
    }
}

/// What one inbox channel consumes: direct reply-to (no-ack) and maybe the reply queue.
type Consumers = Vec<(Consumer, bool)>;

async fn establish(
    link: &Link,
    opts: &AmqpOptions,
    reply_queue: Option<&str>,
) -> Result<(Channel, Consumers), TransportError> {
    let ch = publish::confirm_channel(link).await?;
    let direct = ch
        .basic_consume(
            DIRECT_REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| error::from_lapin(&e, "consume amq.rabbitmq.reply-to"))?;
    let mut consumers = vec![(direct, false)];
    if let Some(q) = reply_queue {
        consumers.push((declare_reply_queue(&ch, opts, q).await?, true));
    }
    Ok((ch, consumers))
}

/// Declares the exclusive, capped reply queue `q`, binds it to the reply exchange with
/// `q` (the route token) as key, and consumes it with acknowledgements and a prefetch.
async fn declare_reply_queue(
    ch: &Channel,
    opts: &AmqpOptions,
    q: &str,
) -> Result<Consumer, TransportError> {
    let mut args = FieldTable::default();
    args.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(REPLY_QUEUE_MAX_LENGTH),
    );
    args.insert(
        "x-max-length-bytes".into(),
        AMQPValue::LongLongInt(REPLY_QUEUE_MAX_BYTES),
    );
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let o = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let what = |e: &lapin::Error, w: &str| error::from_lapin(e, &format!("{w} reply queue {q:?}"));
    ch.queue_declare(q.into(), o, args)
        .await
        .map_err(|e| what(&e, "declare"))?;
    let exchange = topology::reply_exchange(&opts.control_exchange);
    ch.queue_bind(
        q.into(),
        exchange.as_str().into(),
        q.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| what(&e, "bind"))?;
    ch.basic_qos(REPLY_QUEUE_PREFETCH, BasicQosOptions::default())
        .await
        .map_err(|e| what(&e, "set prefetch of"))?;
    ch.basic_consume(
        q.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| what(&e, "consume"))
}

async fn run(
    sup: Arc<Supervisor>,
    inbox: &Slot,
    reply_queue: Option<String>,
    first: Consumers,
    tx: mpsc::Sender<Delivery>,
) {
    let mut consumer = first;
    loop {
        let tags: Vec<_> = consumer.iter().map(|(c, _)| c.tag()).collect();
        let consuming = forward(consumer, &sup, &tx).await;
        // No new publish on this channel; then cancel and close before the consumers drop.
        if let Some((_, ch)) = inbox.channel.send_replace(None) {
            shutdown::close_channel(&ch, &tags, "inbox done").await;
        }
        drop(consuming);
        let again = reestablish(&sup, &tx, "reply inbox", async |link| {
            establish(&link, &sup.opts, reply_queue.as_deref())
                .await
                .map(|(ch, c)| (link.generation, ch, c))
        });
        let Some((generation, ch, c)) = again.await else {
            return;
        };
        inbox.channel.send_replace(Some((generation, ch)));
        consumer = c;
    }
}

/// Forwards replies until a consumer ends, nobody reads `tx` any more or the transport
/// closes. Returns the consumers, still alive, for the caller to cancel (see [`shutdown`]).
///
/// Deliveries from the reply queue are acknowledged in batches, `multiple` up to the last
/// one handed on: after [`ACK_BATCH`] of them or once [`ACK_DELAY`] has passed since the
/// first unacknowledged one. That takes one frame (and one wake-up of lapin's I/O thread)
/// off nearly every reply, while the queue's prefetch still bounds what the broker pushes
/// (`ACK_BATCH` is well below [`REPLY_QUEUE_PREFETCH`]). An unacknowledged reply on a lost
/// channel is lost with its exclusive queue either way.
async fn forward(consumers: Consumers, sup: &Supervisor, tx: &mpsc::Sender<Delivery>) -> Consuming {
    let streams: Vec<ReplyStream> = consumers
        .into_iter()
        .map(|(c, ack)| {
            c.map(move |d| (ack, Some(d)))
                .chain(stream::once(async move { (ack, None) }))
                .boxed()
        })
        .collect();
    let mut all = stream::select_all(streams);
    let mut unacked = Unacked::default();
    let closing = sup.closing();
    tokio::pin!(closing);
    loop {
        let next = tokio::select! {
            n = all.next() => n,
            _ = tx.closed() => None,
            () = &mut closing => None,
            () = unacked.due() => {
                unacked.flush().await;
                continue;
            }
        };
        match next {
            Some((ack, Some(Ok(d)))) => {
                let acker = d.acker.clone();
                // A reply is answered by nobody: its reply path does not matter.
                if tx
                    .send(to_delivery(d, false, ReplyPath::Exchange))
                    .await
                    .is_err()
                {
                    return all;
                }
                if ack && unacked.push(acker) >= ACK_BATCH {
                    unacked.flush().await;
                }
            }
            Some((_, Some(Err(e)))) => {
                tracing::warn!(error = %e, "reply consumer failed");
                return all;
            }
            Some((_, None)) | None => {
                unacked.flush().await;
                return all;
            }
        }
    }
}

/// One consumer's replies, tagged with whether they need an ack; `None` once it ended.
type ReplyStream = BoxStream<'static, (bool, Option<lapin::Result<lapin::message::Delivery>>)>;
/// An inbox channel's consumers, merged.
type Consuming = stream::SelectAll<ReplyStream>;

/// Reply-queue deliveries acknowledged together after this many.
const ACK_BATCH: usize = 64;
/// ... or after this long since the first of them.
const ACK_DELAY: Duration = Duration::from_millis(20);
const _: () = assert!(ACK_BATCH < REPLY_QUEUE_PREFETCH as usize);

/// The reply-queue deliveries handed on but not acknowledged yet: the last one's acker
/// (acking it with `multiple` acks them all), how many, and when the first came.
#[derive(Default)]
struct Unacked {
    last: Option<lapin::Acker>,
    count: usize,
    since: Option<tokio::time::Instant>,
}

impl Unacked {
    fn push(&mut self, acker: lapin::Acker) -> usize {
        self.last = Some(acker);
        self.since.get_or_insert_with(tokio::time::Instant::now);
        self.count += 1;
        self.count
    }

    /// Resolves when the batch is due (never while it is empty).
    async fn due(&self) {
        match self.since {
            Some(t) => tokio::time::sleep_until(t + ACK_DELAY).await,
            None => std::future::pending().await,
        }
    }

    async fn flush(&mut self) {
        self.count = 0;
        self.since = None;
        if let Some(acker) = self.last.take() {
            let acked = acker.ack(BasicAckOptions { multiple: true });
            let _ = tokio::time::timeout(crate::consume::ACK_TIMEOUT, acked).await;
        }
    }
}
