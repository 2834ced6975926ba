//! Reply inboxes over RabbitMQ direct reply-to (`amq.rabbitmq.reply-to`).
//!
//! Each inbox owns a few confirm-mode channels (`AmqpOptions::publisher_channels`), each
//! consuming `amq.rabbitmq.reply-to` (no-ack, as RabbitMQ requires) into the inbox; a call
//! that names the inbox in `reply_to` is published on one of them with the AMQP `reply_to`
//! property `amq.rabbitmq.reply-to`, which the broker rewrites into a per-channel name that
//! the server replies to. Each channel has one publish in flight (returns and confirms pair
//! exactly), so several channels let calls in flight overlap their confirm round trips.
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
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use sealrpc_core::transport::{Delivery, TransportError};
use tokio::sync::{Mutex as AsyncMutex, mpsc, watch};

use crate::connection::{Link, Supervisor, reestablish};
use crate::consume::to_delivery;
use crate::error;
use crate::publish::{self, Failed, Publish, Routed};
use crate::topology::DIRECT_REPLY_TO;

/// Prefix of inbox routes.
pub(crate) const ROUTE_PREFIX: &str = "sealrpc-reply.";

/// One channel of an inbox: the current channel (None while re-establishing) and a publish
/// lock (one publish in flight per channel).
struct Slot {
    channel: watch::Sender<Option<(u64, Channel)>>,
    publish_lock: AsyncMutex<()>,
}

/// One inbox: its channels, all consuming into the same subscription.
pub(crate) struct Inbox {
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl Inbox {
    /// Publishes a call on one of the inbox channels (so direct reply-to works): a free one,
    /// else the next in turn; waits up to `wait` for that channel to be (re-)established.
    pub(crate) async fn publish(
        &self,
        p: Publish<'_>,
        wait: Duration,
        confirm_timeout: Duration,
    ) -> Result<Routed, Failed> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut chosen = None;
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Ok(g) = slot.publish_lock.try_lock() {
                chosen = Some((slot, g));
                break;
            }
        }
        let (slot, _g) = match chosen {
            Some(c) => c,
            None => {
                let slot = &self.slots[start];
                (slot, slot.publish_lock.lock().await)
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
        publish::publish_confirmed(&ch, p, confirm_timeout).await
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
        let mut slots = Vec::new();
        let mut consumers = Vec::new();
        for _ in 0..sup.opts.publisher_channels.max(1) {
            let (ch, consumer) = establish(link).await?;
            let (ch_tx, _) = watch::channel(Some((link.generation, ch)));
            slots.push(Slot {
                channel: ch_tx,
                publish_lock: AsyncMutex::new(()),
            });
            consumers.push(consumer);
        }
        let mut id = [0u8; 12];
        sealrpc_core::rand::fill(&mut id);
        let route = format!("{ROUTE_PREFIX}{}", hex::encode(id));
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
            tokio::spawn(async move {
                run(sup, &inbox.slots[i], consumer, tx).await;
                // The last channel task to end forgets the route.
                if live.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me.lock().remove(&r);
                }
            });
        }
        Ok((route, rx))
    }
}

async fn establish(link: &Link) -> Result<(Channel, Consumer), TransportError> {
    let ch = publish::confirm_channel(link).await?;
    let consumer = ch
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
    Ok((ch, consumer))
}

async fn run(sup: Arc<Supervisor>, inbox: &Slot, first: Consumer, tx: mpsc::Sender<Delivery>) {
    let mut consumer = first;
    loop {
        forward(consumer, &tx).await;
        let old = inbox.channel.send_replace(None);
        if let Some((_, ch)) = old
            && ch.status().connected()
        {
            let _ = ch.close(200, "inbox done".into()).await;
        }
        let again = reestablish(&sup, &tx, "reply inbox", async |link| {
            establish(&link)
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

/// Forwards replies until the consumer ends or nobody reads `tx` any more.
async fn forward(mut consumer: Consumer, tx: &mpsc::Sender<Delivery>) {
    loop {
        let next = tokio::select! {
            n = consumer.next() => n,
            _ = tx.closed() => None,
        };
        match next {
            Some(Ok(d)) => {
                if tx.send(to_delivery(d, false)).await.is_err() {
                    return;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "reply consumer failed");
                return;
            }
            None => return,
        }
    }
}
