//! [`Notifier`]: publishes notifications, sealed and signed by the node's [`Security`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::{DEFAULT_TOPIC, Event, Priority, publisher_fits};
use crate::context::Context;
use crate::error::Error;
use crate::payload::encode_value;
use crate::security::{Outbound, Peer, Security};
use crate::transport::{Address, Outgoing, Transport};
use crate::wire::{Header, MessageId, NotificationBody};

/// Configures a [`Notifier`] (made by [`Node::notifier`](crate::Node::notifier)).
#[derive(Debug)]
pub struct NotifierBuilder {
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
    publisher_id: String,
    topics: Vec<String>,
    ttl: Option<Duration>,
}

impl NotifierBuilder {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        security: Arc<Security>,
        publisher_id: String,
    ) -> Self {
        Self {
            transport,
            security,
            publisher_id,
            topics: vec![DEFAULT_TOPIC.to_owned()],
            ttl: None,
        }
    }

    /// Sends to these topics instead of `notifications` (oslo's `topics`); each gets a copy.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Notifications are worthless after `ttl` (the header's `ttl`; default: none).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The notifier. Fails when there is no topic, or when this node is a guest and the
    /// publisher id is not its own (receivers would refuse every notification).
    pub fn build(self) -> Result<Notifier, Error> {
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            return Err(Error::Invalid("a notifier needs non-empty topics".into()));
        }
        if !publisher_fits(self.security.principal(), &self.publisher_id) {
            return Err(Error::Invalid(format!(
                "{} may not publish as {:?}",
                self.security.principal(),
                self.publisher_id
            )));
        }
        Ok(Notifier {
            inner: Arc::new(self),
        })
    }
}

/// Sends notifications one way (no reply) to `<topic>.<priority>`, sealed and signed as
/// the node's policy says for the control plane. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<NotifierBuilder>,
}

impl Notifier {
    /// The publisher id every notification carries.
    pub fn publisher_id(&self) -> &str {
        &self.inner.publisher_id
    }

    /// Sends `payload` (any serde value) as `event_type` at `priority` to every topic;
    /// returns once the transport holds each copy. No pool listening is not an error.
    pub async fn notify<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        priority: Priority,
        event_type: &str,
        payload: &P,
    ) -> Result<(), Error> {
        if event_type.is_empty() {
            return Err(Error::Invalid("empty event type".into()));
        }
        let payload = encode_value(payload, "payload")?;
        let ctx_bytes = ctx.encode();
        let carries_secret = payload.carries_secret() || ctx_bytes.carries_secret();
        let inner = &self.inner;
        for topic in &inner.topics {
            let to = Address::Notification {
                topic: topic.clone(),
                priority,
            };
            let ttl = inner
                .ttl
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
            let header = Header::notify(MessageId::random(), to.dst(), ttl);
            let body = NotificationBody {
                event_type: event_type.to_owned(),
                publisher_id: inner.publisher_id.clone(),
                payload: payload.clone().into_bytes(),
                ctx: ctx_bytes.clone().into_bytes(),
            };
            let envelope = inner.security.seal_and_sign(Outbound {
                header,
                body: body.into(),
                peer: Peer::ControlPlane,
                carries_secret,
            })?;
            inner
                .transport
                .send(Outgoing {
                    to,
                    payload: Bytes::from(envelope),
                    reply_to: None,
                    expiration: inner.ttl,
                    confirm: true,
                })
                .await?;
        }
        Ok(())
    }

    /// Sends a typed [`Event`] (its event type and priority come from the declaration).
    pub async fn emit<E: Event>(&self, ctx: &Context, payload: &E::Payload) -> Result<(), Error> {
        self.notify(ctx, E::PRIORITY, E::EVENT_TYPE, payload).await
    }

    /// `notify` at [`Priority::Audit`].
    pub async fn audit<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        event: &str,
        payload: &P,
    ) -> Result<(), Error> {
        self.notify(ctx, Priority::Audit, event, payload).await
    }

    /// `notify` at [`Priority::Debug`].
    pub async fn debug<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        event: &str,
        payload: &P,
    ) -> Result<(), Error> {
        self.notify(ctx, Priority::Debug, event, payload).await
    }

    /// `notify` at [`Priority::Info`].
    pub async fn info<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        event: &str,
        payload: &P,
    ) -> Result<(), Error> {
        self.notify(ctx, Priority::Info, event, payload).await
    }

    /// `notify` at [`Priority::Warn`].
    pub async fn warn<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        event: &str,
        payload: &P,
    ) -> Result<(), Error> {
        self.notify(ctx, Priority::Warn, event, payload).await
    }

    /// `notify` at [`Priority::Error`].
    pub async fn error<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        event: &str,
        payload: &P,
    ) -> Result<(), Error> {
        self.notify(ctx, Priority::Error, event, payload).await
    }

    /// `notify` at [`Priority::Critical`].
    pub async fn critical<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        event: &str,
        payload: &P,
    ) -> Result<(), Error> {
        self.notify(ctx, Priority::Critical, event, payload).await
    }

    /// `notify` at [`Priority::Sample`].
    pub async fn sample<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        event: &str,
        payload: &P,
    ) -> Result<(), Error> {
        self.notify(ctx, Priority::Sample, event, payload).await
    }
}
