//! [`NotificationListener`]: one listener of a pool. Each delivery goes through the
//! node's receive pipeline ([`AdmitLayer`]); admitted `notify` messages that pass the
//! [`Filter`] reach the handler, with the authenticated sender.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, oneshot};
use tower::{Layer, Service, ServiceExt};

use super::pool::PoolClaim;
use super::{Event, Filter, Priority};
use crate::context::Context;
use crate::error::Error;
use crate::layer::{Admission, AdmitLayer, AdmittedMessage, BrokerUserCheck, Inbound};
use crate::payload::decode_value;
use crate::principal::Principal;
use crate::security::{AdmittedBody, RejectReason, Security};
use crate::transport::{Delivery, NotifyListenSpec, Subscription, Transport};
use crate::wire::{Kind, MessageId};

type Handler =
    Arc<dyn Fn(IncomingNotification) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One admitted notification, as its handler gets it.
#[derive(Debug, Clone)]
pub struct IncomingNotification {
    /// The message id.
    pub id: MessageId,
    /// The sender's clock (unix ms).
    pub ts: u64,
    /// The topic it was sent to.
    pub topic: String,
    /// Its priority.
    pub priority: Priority,
    /// What happened.
    pub event_type: String,
    /// Who says so (bound to the sender when the sender is a guest).
    pub publisher_id: String,
    /// The authenticated sender (`guest:<id>`, `control:<service>`, `control`), `None`
    /// when nothing was proven (a Permissive or Off policy let it in).
    pub sender: Option<Principal>,
    /// A signature verified.
    pub signed: bool,
    /// It travelled sealed.
    pub sealed: bool,
    /// The context (its principal is the authenticated sender).
    pub ctx: Context,
    /// The encoded payload.
    pub payload: Bytes,
}

impl IncomingNotification {
    /// Decodes the payload into `T`.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(decode_value(&self.payload, "payload")?)
    }

    /// True when this is an `E` (its event type and priority).
    pub fn is<E: Event>(&self) -> bool {
        self.event_type == E::EVENT_TYPE && self.priority == E::PRIORITY
    }
}

/// Configures a listener (made by
/// [`Node::notification_listener`](crate::Node::notification_listener)).
pub struct ListenerBuilder {
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
    spec: NotifyListenSpec,
    filter: Filter,
    handler: Option<Handler>,
    broker_user: Option<BrokerUserCheck>,
}

impl fmt::Debug for ListenerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerBuilder")
            .field("spec", &self.spec)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl ListenerBuilder {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        security: Arc<Security>,
        pool: String,
    ) -> Self {
        Self {
            transport,
            security,
            spec: NotifyListenSpec {
                pool,
                targets: Vec::new(),
            },
            filter: Filter::any(),
            handler: None,
            broker_user: None,
        }
    }

    /// Listens to `topic` at `priority` (call again for more).
    pub fn target(mut self, topic: impl Into<String>, priority: Priority) -> Self {
        let t = (topic.into(), priority);
        if !self.spec.targets.contains(&t) {
            self.spec.targets.push(t);
        }
        self
    }

    /// Listens to `topic` at each of `priorities`.
    pub fn priorities(self, topic: &str, priorities: &[Priority]) -> Self {
        priorities.iter().fold(self, |b, p| b.target(topic, *p))
    }

    /// Hands the handler only what `filter` accepts (the rest is acknowledged and dropped).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// As a server's: a signed notification whose broker-validated publisher fails
    /// `check(principal, broker_user)` is refused (`broker_user_mismatch`).
    pub fn bind_broker_user(
        mut self,
        check: impl Fn(&Principal, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.broker_user = Some(Arc::new(check));
        self
    }

    /// The handler, awaited for each notification before the next (and before the
    /// delivery is acknowledged). One that panics loses that notification, never the
    /// listener.
    pub fn handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(IncomingNotification) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handler = Some(Arc::new(move |n| Box::pin(handler(n))));
        self
    }

    /// Starts consuming. Fails without a target or a handler, or when the transport
    /// cannot listen.
    pub async fn start(self) -> Result<ListenerHandle, Error> {
        if self.spec.targets.is_empty() || self.spec.pool.is_empty() {
            return Err(Error::Invalid(
                "a notification listener needs a pool and a target".into(),
            ));
        }
        let handler = self
            .handler
            .ok_or_else(|| Error::Invalid("a notification listener needs a handler".into()))?;
        let claim = PoolClaim::take(&self.security, &self.spec)?;
        let sub = self.transport.listen_notifications(&self.spec).await?;
        let mut admit = AdmitLayer::new(Arc::clone(&self.security), self.spec.served_addresses());
        if let Some(check) = self.broker_user {
            admit = admit.bind_broker_user(check);
        }
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = oneshot::channel();
        let run = Run {
            admit,
            security: self.security,
            filter: self.filter,
            handler,
            stats: Arc::clone(&stats),
        };
        let task = tokio::spawn(run.consume(sub, stopped));
        Ok(ListenerHandle {
            spec: self.spec,
            _claim: claim,
            stats,
            stop: Some(stop),
            task,
        })
    }
}

/// A notification listener's counts.
#[derive(Debug, Default)]
struct Stats {
    handled: AtomicU64,
    filtered: AtomicU64,
    refused: AtomicU64,
    changed: Notify,
}

/// The running listener: its counts, and shutdown.
#[derive(Debug)]
pub struct ListenerHandle {
    spec: NotifyListenSpec,
    _claim: PoolClaim,
    stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Alias: a running listener is a handle.
pub type NotificationListener = ListenerHandle;

impl ListenerHandle {
    /// What it listens to.
    pub fn spec(&self) -> &NotifyListenSpec {
        &self.spec
    }

    /// Notifications handed to the handler (and handled) so far.
    pub fn handled(&self) -> u64 {
        self.stats.handled.load(Ordering::Relaxed)
    }

    /// Admitted notifications the filter dropped.
    pub fn filtered(&self) -> u64 {
        self.stats.filtered.load(Ordering::Relaxed)
    }

    /// Deliveries refused (by the receive pipeline, or for not being a notification);
    /// the node's [`Security::counters`] say why.
    pub fn refused(&self) -> u64 {
        self.stats.refused.load(Ordering::Relaxed)
    }

    /// Waits until `handled + filtered + refused` reaches `n` (bound it with a timeout).
    pub async fn wait_seen(&self, n: u64) {
        self.wait(|s| s.handled() + s.filtered() + s.refused() >= n)
            .await;
    }

    /// Waits until `handled` reaches `n` (bound it with a timeout).
    pub async fn wait_handled(&self, n: u64) {
        self.wait(|s| s.handled() >= n).await;
    }

    async fn wait(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let changed = self.stats.changed.notified();
            if done(self) {
                return;
            }
            changed.await;
        }
    }

    /// Stops consuming (after the notification in hand) and waits for the loop to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Run {
    admit: AdmitLayer,
    security: Arc<Security>,
    filter: Filter,
    handler: Handler,
    stats: Arc<Stats>,
}

impl Run {
    async fn consume(self, mut sub: Subscription, mut stopped: oneshot::Receiver<()>) {
        let mut admit = self.admit.layer(tower::service_fn(|m: AdmittedMessage| {
            std::future::ready(Ok::<_, std::convert::Infallible>(m))
        }));
        loop {
            let mut delivery = tokio::select! {
                biased;
                _ = &mut stopped => return,
                d = sub.recv() => match d { Some(d) => d, None => return },
            };
            let outcome = match admit.ready().await {
                Ok(svc) => svc.call(Inbound::take(&mut delivery)).await,
                Err(never) => match never {},
            };
            let counter = match outcome {
                Ok(Admission::Admitted(m)) => self.handle(m).await,
                Ok(Admission::Rejected(_)) => &self.stats.refused,
                Err(never) => match never {},
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.stats.changed.notify_waiters();
            ack(&mut delivery).await;
        }
    }

    /// Hands an admitted message to the handler; returns the counter it counts in.
    async fn handle(&self, m: AdmittedMessage) -> &AtomicU64 {
        let a = m.message;
        let target = a
            .header
            .dst
            .rsplit_once('.')
            .and_then(|(t, p)| Priority::parse(p).map(|p| (t.to_owned(), p)));
        let (AdmittedBody::Notification(body), Kind::Notify, Some((topic, priority))) =
            (a.body, a.header.kind, target)
        else {
            // A call, cast or fanout that reached a notification address: not ours.
            self.security.count_rejection(RejectReason::Misdirected);
            return &self.stats.refused;
        };
        if !self.filter.accepts(&body.event_type, &body.publisher_id) {
            return &self.stats.filtered;
        }
        let mut ctx = Context::decode(&body.ctx);
        ctx.set_principal(a.principal.clone());
        let n = IncomingNotification {
            id: a.header.id,
            ts: a.header.ts,
            topic,
            priority,
            event_type: body.event_type,
            publisher_id: body.publisher_id,
            sender: a.principal,
            signed: a.signed,
            sealed: a.sealed,
            ctx,
            payload: body.payload,
        };
        // In a task of its own, so that a handler that panics loses its notification (it is
        // still acknowledged), not the listener.
        if let Err(e) = tokio::spawn((self.handler)(n)).await {
            tracing::warn!(error = %e, "notification handler failed");
        }
        &self.stats.handled
    }
}

async fn ack(delivery: &mut Delivery) {
    delivery.ack().await;
}
