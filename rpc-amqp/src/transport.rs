//! [`AmqpTransport`]: the [`Transport`] implementation on RabbitMQ.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use async_trait::async_trait;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use sealrpc_core::transport::{
    Address, Confirm, ListenSpec, NotifyListenSpec, Outgoing, ReplyInbox, Subscription, Transport,
    TransportError, TransportErrorKind,
};
use tokio::sync::mpsc;

use crate::connection::Supervisor;
use crate::consume;
use crate::credentials::GuestCredentials;
use crate::options::AmqpOptions;
use crate::publish::{Failed, Publish, PublisherPool, Routed};
use crate::reply::{Inboxes, ROUTE_PREFIX};
use crate::shutdown;
use crate::topology::{self, DIRECT_REPLY_TO};

struct Inner {
    sup: Arc<Supervisor>,
    publishers: PublisherPool,
    inboxes: Arc<Inboxes>,
    late_confirms: Arc<AtomicUsize>,
}

impl Inner {
    /// Begins the clean close: a tracked task closes the idle publisher channels, so that
    /// the supervisor closes the connection only after them (see `shutdown`).
    fn begin_close(&self) {
        let channels = self.publishers.take_channels();
        if !channels.is_empty()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let task = self.sup.track();
            rt.spawn(async move {
                for ch in &channels {
                    shutdown::close_channel(ch, &[], "closed").await;
                }
                drop(task);
            });
        }
        self.sup.close();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.begin_close();
    }
}

/// The RabbitMQ transport. Cheap to clone; clones share one connection. The connection
/// closes when the last clone is dropped (or on [`AmqpTransport::close`]).
///
/// Semantics (see `docs/amqp.md`):
/// * every publish is `mandatory` and waits for its publisher confirm, so a call or cast
///   nobody consumes fails with `NoListener` (a fanout nobody listens to is not an error);
///   `Outgoing::confirm` is therefore always honoured; [`Transport::send_call`] returns
///   once the call is written and leaves its confirm to the caller, to race the reply;
/// * every publish carries the AMQP `user-id` of the connection's user (validated by
///   RabbitMQ), which receivers see as `Delivery::broker_user`;
/// * listener deliveries must be acknowledged (`Delivery::ack`); unacknowledged ones are
///   redelivered after a connection loss (at-least-once);
/// * on connection loss it reconnects with exponential backoff and jitter, re-declares
///   the topology and resumes consumers into the same subscriptions.
#[derive(Clone)]
pub struct AmqpTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTransport")
            .field("brokers", &self.inner.sup.brokers)
            .field("control_exchange", &self.inner.sup.opts.control_exchange)
            .finish_non_exhaustive()
    }
}

fn failed(to: &Address, f: Failed) -> TransportError {
    // A missing exchange means nobody ever listened there.
    if f.reply_code == Some(crate::error::NOT_FOUND) {
        return TransportError::new(
            TransportErrorKind::NoListener,
            format!("{}: {}", to.dst(), f.error.message),
        );
    }
    f.error
}

impl AmqpTransport {
    /// Connects to the broker at `opts.url`, or to the first of its list that answers (one
    /// attempt per broker, each bounded by its connect timeout; errors name every address
    /// with its password redacted), and declares the control exchange.
    pub async fn connect(opts: AmqpOptions) -> Result<Self, TransportError> {
        let sup = Supervisor::start(opts).await?;
        let t = Self {
            inner: Arc::new(Inner {
                publishers: PublisherPool::new(sup.opts.publisher_channels),
                inboxes: Arc::new(Inboxes::default()),
                late_confirms: Arc::default(),
                sup,
            }),
        };
        if let Some(link) = t.inner.sup.current() {
            let ch = link
                .conn
                .create_channel()
                .await
                .map_err(|e| crate::error::from_lapin(&e, "open channel"))?;
            topology::declare_control(&ch, &t.inner.sup.opts).await?;
            let _ = ch.close(200, "declared".into()).await;
        }
        Ok(t)
    }

    /// The options this transport was made with.
    pub fn options(&self) -> &AmqpOptions {
        &self.inner.sup.opts
    }

    /// The broker user this transport authenticates (and publishes) as.
    pub fn user(&self) -> &str {
        self.inner.sup.brokers.user()
    }

    /// The broker this transport is connected to now (its URL, password redacted), or
    /// `None` while reconnecting.
    pub fn connected_url(&self) -> Option<String> {
        let sup = &self.inner.sup;
        let link = sup.current()?;
        sup.broker_url(link.broker).map(|u| u.redacted.clone())
    }

    /// The port of the broker this transport is connected to now (`None` while
    /// reconnecting): with a local cluster, which node it is on.
    pub fn connected_port(&self) -> Option<u16> {
        let sup = &self.inner.sup;
        let link = sup.current()?;
        sup.broker_url(link.broker).map(|u| u.uri.authority.port)
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        self.inner.sup.current().is_some()
    }

    /// How many times the connection was established (1 until the first reconnect).
    pub fn connection_generation(&self) -> u64 {
        self.inner.sup.current().map_or(0, |l| l.generation)
    }

    /// Declares `topic`'s fanout exchange (`<topic>_fanout`), so that restricted guests
    /// (which only check exchanges) can bind their fanout queues before any listener of
    /// the topic with configure rights existed.
    pub async fn declare_fanout(&self, topic: &str) -> Result<(), TransportError> {
        let ch = self.admin_channel().await?;
        let declared = topology::declare_fanout(&ch, &self.inner.sup.opts, topic).await;
        let _ = ch.close(200, "declared".into()).await;
        declared
    }

    /// A fresh channel on the live connection (waiting for one up to `reconnect_wait`) for
    /// one administrative step; the caller closes it, whatever the step gave.
    async fn admin_channel(&self) -> Result<lapin::Channel, TransportError> {
        let sup = &self.inner.sup;
        let link = sup.wait_up(sup.opts.reconnect_wait).await?;
        link.conn
            .create_channel()
            .await
            .map_err(|e| crate::error::from_lapin(&e, "open channel"))
    }

    /// Declares guest `creds`' queues as the operator (this transport needs configure
    /// rights): its server queue bound to the control exchange and its fanout queue bound
    /// to the guest topic's fanout exchange (both exchanges declared first), durable, with
    /// fixed arguments: `x-max-length`, `x-max-length-bytes`, `x-overflow` =
    /// `reject-publish`, `x-expires` from `creds.limits`; no dead-letter exchange.
    /// Idempotent. A restricted guest declares nothing and only checks these queues.
    pub async fn provision_guest(&self, creds: &GuestCredentials) -> Result<(), TransportError> {
        let ch = self.admin_channel().await?;
        let declared =
            crate::provision::declare_guest_queues(&ch, &self.inner.sup.opts, creds).await;
        let _ = ch.close(200, "provisioned".into()).await;
        declared
    }

    /// Deletes guest `creds`' queues (and with them their bindings and messages).
    pub async fn deprovision_guest(&self, creds: &GuestCredentials) -> Result<(), TransportError> {
        let ch = self.admin_channel().await?;
        let deleted = crate::provision::delete_guest_queues(&ch, creds).await;
        let _ = ch.close(200, "deprovisioned".into()).await;
        deleted
    }

    /// Closes the connection for every clone; later operations fail with `Closed`.
    ///
    /// The close is ordered and quiet: listeners and reply inboxes cancel their consumers
    /// and close their channels, then the connection closes (each step bounded).
    pub async fn close(&self) {
        self.inner.begin_close();
        let mut rx = self.inner.sup.subscribe();
        let _ = tokio::time::timeout(3 * shutdown::CLOSE_STEP, async {
            while !matches!(
                *rx.borrow_and_update(),
                crate::connection::LinkState::Closed
            ) {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    fn properties(&self, msg: &Outgoing) -> BasicProperties {
        let opts = &self.inner.sup.opts;
        let persistent = opts.durable
            && matches!(
                msg.to,
                Address::Topic(_) | Address::Server { .. } | Address::Notification { .. }
            );
        let mut p = BasicProperties::default()
            .with_user_id(self.user().into())
            .with_delivery_mode(if persistent { 2 } else { 1 });
        if let Some(exp) = msg.expiration {
            p = p.with_expiration(exp.as_millis().max(1).to_string().into());
        }
        if let Some(route) = &msg.reply_to {
            p = p.with_reply_to(DIRECT_REPLY_TO.into());
            // A control-plane inbox also has a reply queue (see `reply`): name its token.
            if opts.declare_exchanges {
                let mut h = FieldTable::default();
                h.insert(
                    topology::REPLY_HEADER.into(),
                    AMQPValue::LongString(route.as_str().into()),
                );
                p = p.with_headers(h);
            }
        }
        p
    }

    /// Checks `msg` against the limits and names the exchange and routing key it goes to.
    fn route_of(&self, msg: &Outgoing) -> Result<(String, String), TransportError> {
        let opts = &self.inner.sup.opts;
        if msg.payload.len() > opts.max_message_size {
            return Err(TransportError::new(
                TransportErrorKind::TooLarge,
                format!(
                    "message of {} bytes to {} exceeds the {}-byte limit",
                    msg.payload.len(),
                    msg.to.dst(),
                    opts.max_message_size
                ),
            ));
        }
        if let Address::Reply(r) = &msg.to
            && !r.starts_with(DIRECT_REPLY_TO)
            && !topology::is_reply_token(r)
        {
            return Err(TransportError::new(
                TransportErrorKind::NoListener,
                format!("{r:?} is neither a reply route token nor a direct reply-to name"),
            ));
        }
        Ok(if opts.declare_exchanges && opts.publish_to_queues {
            topology::queue_route(&opts.control_exchange, &msg.to)
        } else if opts.declare_exchanges {
            topology::route(&opts.control_exchange, &msg.to)
        } else {
            topology::guest_route(&opts.control_exchange, &msg.to)
        })
    }

    fn publish_of<'a>(&self, msg: &'a Outgoing, route: &'a (String, String)) -> Publish<'a> {
        Publish {
            exchange: &route.0,
            routing_key: &route.1,
            payload: &msg.payload,
            properties: self.properties(msg),
            // RabbitMQ returns every mandatory direct reply-to publish as NO_ROUTE even when
            // delivered, so replies are not mandatory (a reply to a vanished caller is dropped).
            mandatory: !matches!(msg.to, Address::Reply(_)),
        }
    }

    /// Call confirms still awaited after their call ended (its reply came first, or it
    /// was given up): each finishes with its confirm or the confirm timeout.
    pub fn late_confirms(&self) -> usize {
        self.inner
            .late_confirms
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What the publish of a message to `to` that ended in `res` means to the sender.
fn outcome(to: &Address, res: Result<Routed, Failed>) -> Result<(), TransportError> {
    match res {
        Ok(Routed::Yes) => Ok(()),
        // A fanout or a notification nobody listens to is not an error.
        Ok(Routed::Returned(..)) if broadcast(to) => Ok(()),
        Ok(Routed::Returned(code, text)) => Err(TransportError::new(
            TransportErrorKind::NoListener,
            format!("{}: returned by the broker ({code} {text})", to.dst()),
        )),
        Err(f) if broadcast(to) && f.reply_code == Some(crate::error::NOT_FOUND) => Ok(()),
        Err(f) => Err(failed(to, f)),
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError> {
        if msg.reply_to.is_some() {
            return self.send_call(msg).await?.await;
        }
        let route = self.route_of(&msg)?;
        let sup = &self.inner.sup;
        let link = sup.wait_up(sup.opts.reconnect_wait).await?;
        let res = self
            .inner
            .publishers
            .publish(
                &link,
                self.publish_of(&msg, &route),
                sup.opts.confirm_timeout,
            )
            .await;
        outcome(&msg.to, res)
    }

    async fn send_call(&self, msg: Outgoing) -> Result<Confirm, TransportError> {
        let Some(reply_to) = &msg.reply_to else {
            return self.send(msg).await.map(|()| Confirm::ready(Ok(())));
        };
        let route = self.route_of(&msg)?;
        let opts = &self.inner.sup.opts;
        let inbox = reply_to
            .starts_with(ROUTE_PREFIX)
            .then(|| self.inner.inboxes.get(reply_to))
            .flatten()
            .ok_or_else(|| {
                TransportError::new(
                    TransportErrorKind::Other,
                    format!("reply_to {reply_to:?} is not an open reply inbox of this transport"),
                )
            })?;
        let published = inbox
            .publish_call(
                self.publish_of(&msg, &route),
                opts.reconnect_wait,
                opts.confirm_timeout,
                &self.inner.late_confirms,
            )
            .await;
        let to = msg.to;
        match published {
            Ok(confirm) => Ok(Confirm::new(async move { outcome(&to, confirm.await) })),
            Err(f) => Err(failed(&to, f)),
        }
    }

    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError> {
        let sup = self.inner.sup.clone();
        let link = sup.wait_up(sup.opts.reconnect_wait).await?;
        let est = consume::establish(&link, &sup, spec).await?;
        let (tx, rx) = mpsc::channel(sup.opts.queue_capacity.max(1));
        let task = sup.track();
        tokio::spawn(consume::run(sup, spec.clone(), est, tx, task));
        Ok(rx)
    }

    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError> {
        let sup = self.inner.sup.clone();
        let link = sup.wait_up(sup.opts.reconnect_wait).await?;
        let (route, deliveries) = self.inner.inboxes.open(sup, &link).await?;
        Ok(ReplyInbox { route, deliveries })
    }

    async fn listen_notifications(
        &self,
        spec: &NotifyListenSpec,
    ) -> Result<Subscription, TransportError> {
        let sup = self.inner.sup.clone();
        let link = sup.wait_up(sup.opts.reconnect_wait).await?;
        let est = crate::notify::establish(&link, &sup, spec).await?;
        let (tx, rx) = mpsc::channel(sup.opts.queue_capacity.max(1));
        let task = sup.track();
        tokio::spawn(crate::notify::run(sup, spec.clone(), est, tx, task));
        Ok(rx)
    }
}

/// Sent to whoever listens, maybe nobody: a fanout or a notification.
fn broadcast(to: &Address) -> bool {
    matches!(to, Address::Fanout(_) | Address::Notification { .. })
}
