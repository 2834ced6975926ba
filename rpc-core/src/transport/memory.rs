//! The in-memory transport: the embedded default, for the demo and fast tests.
//!
//! A real transport, not a mock: shared topics with competing consumers (round-robin,
//! preferring a consumer with room), direct `topic.server` addressing, fanout to every
//! server of a topic, notification pools (each pool gets every notification, its
//! listeners compete), reply inboxes, bounded queues that push back on senders, and
//! `NoListener` when nothing serves an address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};

use super::{
    Address, Confirm, Delivery, ListenSpec, NotifyListenSpec, Outgoing, ReplyInbox, Subscription,
    Transport, TransportError, TransportErrorKind,
};

type Tx = mpsc::Sender<Delivery>;

#[derive(Debug, Default)]
struct Registry {
    shared: HashMap<String, (Vec<Tx>, usize)>,
    direct: HashMap<String, Tx>,
    fanout: HashMap<String, Vec<Tx>>,
    replies: HashMap<String, Tx>,
    /// `topic.priority` -> pool -> its competing listeners.
    notify: HashMap<String, HashMap<String, (Vec<Tx>, usize)>>,
}

/// An in-process transport. Clones share the same "broker".
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    registry: Arc<Mutex<Registry>>,
    capacity: usize,
    tap: broadcast::Sender<(Address, bytes::Bytes)>,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTransport {
    /// A transport whose queues hold 1024 messages each.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// A transport whose queues hold `capacity` messages each (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            registry: Arc::new(Mutex::new(Registry::default())),
            capacity: capacity.max(1),
            tap: broadcast::channel(1024).0,
        }
    }

    /// A copy of every message sent from now on, with its address: what someone who can
    /// read the broker sees (used by the attack demo and tests). Lagging readers lose
    /// the oldest copies, never the traffic itself.
    pub fn wiretap(&self) -> broadcast::Receiver<(Address, bytes::Bytes)> {
        self.tap.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Picks the shared-topic consumer: the next one in turn with room, else the next in turn.
    fn pick_shared(&self, topic: &str) -> Option<Tx> {
        let mut reg = self.lock();
        pick(reg.shared.get_mut(topic)?)
    }

    /// One listener of every pool of notification address `dst` (none when no pool listens).
    fn pick_pools(&self, dst: &str) -> Vec<Tx> {
        let mut reg = self.lock();
        let Some(pools) = reg.notify.get_mut(dst) else {
            return Vec::new();
        };
        pools.values_mut().filter_map(pick).collect()
    }

    fn no_listener(to: &Address) -> TransportError {
        TransportError::new(TransportErrorKind::NoListener, to.dst())
    }
}

/// The next competing consumer in turn with room, else the next in turn.
fn pick((txs, next): &mut (Vec<Tx>, usize)) -> Option<Tx> {
    txs.retain(|tx| !tx.is_closed());
    if txs.is_empty() {
        return None;
    }
    let n = txs.len();
    let start = *next % n;
    *next = (start + 1) % n;
    let with_room = (0..n)
        .map(|i| &txs[(start + i) % n])
        .find(|tx| tx.capacity() > 0);
    Some(with_room.unwrap_or(&txs[start]).clone())
}

/// A delivery of `payload`, answerable at `reply_to`.
fn delivery(payload: &bytes::Bytes, reply_to: Option<&String>) -> Delivery {
    Delivery {
        payload: payload.clone(),
        reply_to: reply_to.cloned(),
        broker_user: None,
        acker: None,
    }
}

impl MemoryTransport {
    /// Delivers `msg` (what [`Transport::send`] and [`Transport::send_call`] both do: a
    /// memory queue holds a message once it is sent).
    async fn deliver(&self, msg: Outgoing) -> Result<(), TransportError> {
        if self.tap.receiver_count() > 0 {
            let _ = self.tap.send((msg.to.clone(), msg.payload.clone()));
        }
        let Outgoing {
            to,
            payload,
            reply_to,
            ..
        } = msg;
        let mut one = Delivery {
            payload,
            reply_to,
            broker_user: None,
            acker: None,
        };
        match &to {
            Address::Topic(topic) => {
                // A consumer may go away between pick and send: try the others.
                for _ in 0..4 {
                    let tx = self
                        .pick_shared(topic)
                        .ok_or_else(|| Self::no_listener(&to))?;
                    match tx.send(one).await {
                        Ok(()) => return Ok(()),
                        Err(refused) => one = refused.0,
                    }
                }
                Err(Self::no_listener(&to))
            }
            Address::Server { .. } | Address::Reply(_) => {
                let tx = {
                    let reg = self.lock();
                    match &to {
                        Address::Reply(route) => reg.replies.get(route).cloned(),
                        _ => reg.direct.get(&to.dst()).cloned(),
                    }
                };
                let tx = tx.ok_or_else(|| Self::no_listener(&to))?;
                tx.send(one).await.map_err(|_| Self::no_listener(&to))
            }
            Address::Fanout(topic) => {
                let txs = {
                    let mut reg = self.lock();
                    match reg.fanout.get_mut(topic) {
                        Some(txs) => {
                            txs.retain(|tx| !tx.is_closed());
                            txs.clone()
                        }
                        None => Vec::new(),
                    }
                };
                for tx in txs {
                    // A server that left meanwhile simply misses the fanout.
                    let _ = tx.send(delivery(&one.payload, one.reply_to.as_ref())).await;
                }
                Ok(())
            }
            Address::Notification { .. } => {
                // Every pool gets it, one listener per pool; no pool is not an error.
                for tx in self.pick_pools(&to.dst()) {
                    let _ = tx.send(delivery(&one.payload, one.reply_to.as_ref())).await;
                }
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError> {
        self.deliver(msg).await
    }

    async fn send_call(&self, msg: Outgoing) -> Result<Confirm, TransportError> {
        // Not the default (`send`, then a ready confirm): that boxes one future more.
        self.deliver(msg).await.map(|()| Confirm::ready(Ok(())))
    }

    async fn listen_notifications(
        &self,
        spec: &NotifyListenSpec,
    ) -> Result<Subscription, TransportError> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let mut reg = self.lock();
        for dst in spec.served_addresses() {
            reg.notify
                .entry(dst)
                .or_default()
                .entry(spec.pool.clone())
                .or_default()
                .0
                .push(tx.clone());
        }
        Ok(rx)
    }

    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let mut reg = self.lock();
        let direct = Address::Server {
            topic: spec.topic.clone(),
            server: spec.server.clone(),
        }
        .dst();
        if reg.direct.get(&direct).is_some_and(|t| !t.is_closed()) {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                format!("{direct} already has a listener"),
            ));
        }
        reg.direct.insert(direct, tx.clone());
        if spec.shared {
            reg.shared
                .entry(spec.topic.clone())
                .or_default()
                .0
                .push(tx.clone());
        }
        if spec.fanout {
            reg.fanout.entry(spec.topic.clone()).or_default().push(tx);
        }
        Ok(rx)
    }

    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError> {
        let mut id = [0u8; 12];
        crate::rand::fill(&mut id);
        let route = format!(
            "mem-reply.{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let (tx, rx) = mpsc::channel(self.capacity);
        self.lock().replies.insert(route.clone(), tx);
        Ok(ReplyInbox {
            route,
            deliveries: rx,
        })
    }
}
