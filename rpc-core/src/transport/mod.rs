//! The transport abstraction: moves opaque envelope bytes between addresses.
//!
//! A transport knows nothing of signatures or seals. The in-memory transport
//! ([`MemoryTransport`](crate::MemoryTransport)) is the embedded default; `sealrpc-amqp` provides RabbitMQ.

mod confirm;
pub(crate) mod memory;

pub use confirm::Confirm;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::notify::Priority;

/// Where a message goes. Its [`Address::dst`] string is the header's `dst`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// Any one server of a topic (competing consumers).
    Topic(String),
    /// One named server of a topic (`topic.server`).
    Server {
        /// The topic.
        topic: String,
        /// The server's name.
        server: String,
    },
    /// Every server of a topic (`topic_fanout`).
    Fanout(String),
    /// A client's reply inbox (a transport-level reply route).
    Reply(String),
    /// Every listener pool of a notification topic at one priority (`topic.priority`);
    /// within a pool one listener gets each notification.
    Notification {
        /// The notification topic (oslo's default: `notifications`).
        topic: String,
        /// The priority.
        priority: Priority,
    },
}

impl Address {
    /// The logical address written into the header's `dst`.
    pub fn dst(&self) -> String {
        match self {
            Address::Topic(t) => t.clone(),
            // Concatenated at their exact size (a `format!` costs several times more).
            Address::Server { topic, server } => [topic.as_str(), ".", server].concat(),
            Address::Fanout(t) => [t.as_str(), "_fanout"].concat(),
            Address::Reply(r) => r.clone(),
            Address::Notification { topic, priority } => format!("{topic}.{priority}"),
        }
    }
}

/// What a server consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// The topic served.
    pub topic: String,
    /// This server's name (for `topic.server`).
    pub server: String,
    /// Consume the shared `topic` queue (competing with other servers of the topic).
    /// A guest agent serves only its own `topic.server` and the fanout.
    pub shared: bool,
    /// Receive the topic's fanout.
    pub fanout: bool,
}

impl ListenSpec {
    /// What a guest agent consumes: its own `topic.instance_id` queue and the topic's
    /// fanout, never the shared topic queue (that would take other guests' calls).
    /// `sealrpc_amqp::GuestCredentials::listen` hands out this spec for its guest; give it
    /// to [`ServerBuilder::listen`](crate::ServerBuilder::listen).
    pub fn guest_agent(topic: impl Into<String>, instance_id: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            server: instance_id.into(),
            shared: false,
            fanout: true,
        }
    }

    /// The `dst` values such a server accepts.
    pub fn served_addresses(&self) -> Vec<String> {
        let mut out = vec![
            Address::Server {
                topic: self.topic.clone(),
                server: self.server.clone(),
            }
            .dst(),
        ];
        if self.shared {
            out.push(Address::Topic(self.topic.clone()).dst());
        }
        if self.fanout {
            out.push(Address::Fanout(self.topic.clone()).dst());
        }
        out
    }
}

/// What a notification listener consumes: the `topic.priority` addresses of
/// [`Self::targets`], in its pool (every pool gets every notification; the listeners of
/// one pool compete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyListenSpec {
    /// The pool's name.
    pub pool: String,
    /// The `(topic, priority)` pairs listened to.
    pub targets: Vec<(String, Priority)>,
}

impl NotifyListenSpec {
    /// The `dst` values such a listener accepts.
    pub fn served_addresses(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|(topic, priority)| {
                Address::Notification {
                    topic: topic.clone(),
                    priority: *priority,
                }
                .dst()
            })
            .collect()
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Destination.
    pub to: Address,
    /// The envelope bytes.
    pub payload: Bytes,
    /// For calls: the reply route of the caller's [`ReplyInbox`].
    pub reply_to: Option<String>,
    /// Hint: the message is worthless after this long (a transport may drop it then).
    pub expiration: Option<Duration>,
    /// Wait for the transport to confirm it holds the message (AMQP publisher confirms).
    pub confirm: bool,
}

/// Acknowledges a delivery once handled (for at-least-once transports).
#[async_trait]
pub trait Acker: Send + Sync {
    /// The message was handled (or deliberately dropped): forget it.
    async fn ack(self: Box<Self>);
    /// The message was not handled: give it back (`requeue`) or discard it.
    async fn nack(self: Box<Self>, requeue: bool);
}

/// One message received.
pub struct Delivery {
    /// The envelope bytes.
    pub payload: Bytes,
    /// The transport route for a reply to this message, if it is a call.
    pub reply_to: Option<String>,
    /// The broker-validated user that published it (AMQP `user-id`), where the transport has one.
    pub broker_user: Option<String>,
    /// Set by at-least-once transports; `None` when there is nothing to acknowledge.
    pub acker: Option<Box<dyn Acker>>,
}

impl Delivery {
    /// A delivery with nothing to acknowledge.
    pub fn new(payload: Bytes) -> Self {
        Self {
            payload,
            reply_to: None,
            broker_user: None,
            acker: None,
        }
    }

    /// Acknowledges the delivery, if the transport asked for it.
    pub async fn ack(&mut self) {
        if let Some(acker) = self.acker.take() {
            acker.ack().await;
        }
    }

    /// Gives the delivery back (`requeue`) or discards it, if the transport asked for acks.
    pub async fn nack(&mut self, requeue: bool) {
        if let Some(acker) = self.acker.take() {
            acker.nack(requeue).await;
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("len", &self.payload.len())
            .field("reply_to", &self.reply_to)
            .field("broker_user", &self.broker_user)
            .finish_non_exhaustive()
    }
}

/// A stream of deliveries; bounded, so a slow consumer pushes back on the transport.
pub type Subscription = mpsc::Receiver<Delivery>;

/// A client's reply inbox.
#[derive(Debug)]
pub struct ReplyInbox {
    /// The route replies are sent to ([`Address::Reply`]); what a call's `reply_to` carries.
    pub route: String,
    /// The replies.
    pub deliveries: Subscription,
}

/// Moves envelope bytes. Implementations: [`MemoryTransport`](crate::MemoryTransport), `sealrpc_amqp::AmqpTransport`.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Sends one message. Fails with [`TransportErrorKind::NoListener`] when nothing
    /// serves the address (calls, casts and replies; a fanout with no server is not an error).
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError>;
    /// Sends a call's request (`msg.reply_to` set) and returns once the transport has taken
    /// it, with the outcome of its confirm still to come: the client then waits for the
    /// reply and the confirm together, and a reply that comes first completes the call.
    /// The confirm fails as [`send`](Self::send) would (e.g. `NoListener`).
    /// Default: [`send`](Self::send), then an already known confirm (transports that do
    /// not split the two).
    async fn send_call(&self, msg: Outgoing) -> Result<Confirm, TransportError> {
        self.send(msg).await.map(|()| Confirm::ready(Ok(())))
    }
    /// Starts consuming for a server.
    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError>;
    /// Opens a reply inbox for a client.
    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError>;
    /// Starts consuming notifications for one listener of a pool. Sending to an
    /// [`Address::Notification`] no pool listens to is not an error (like a fanout).
    /// Default: unsupported (`Other`), for transports that predate notifications.
    async fn listen_notifications(
        &self,
        spec: &NotifyListenSpec,
    ) -> Result<Subscription, TransportError> {
        Err(TransportError::new(
            TransportErrorKind::Other,
            format!("this transport has no notifications (pool {})", spec.pool),
        ))
    }
}

/// What went wrong in a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Nothing serves the address.
    NoListener,
    /// The connection is down or was lost; retrying later may succeed.
    Unavailable,
    /// The broker refused access (credentials or permissions).
    AccessRefused,
    /// The message exceeds what the transport carries.
    TooLarge,
    /// The transport (or this handle) was shut down.
    Closed,
    /// The broker did not confirm in time.
    Timeout,
    /// Anything else.
    Other,
}

/// A transport error: a kind and a message (addresses are shown with passwords redacted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct TransportError {
    /// The kind.
    pub kind: TransportErrorKind,
    /// Detail for operators.
    pub message: String,
}

impl TransportError {
    /// An error of `kind` with `message`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// True when trying again (after a reconnect) may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self.kind,
            TransportErrorKind::Unavailable | TransportErrorKind::Timeout
        )
    }
}
