//! The consume loop: each delivery goes through the stack
//! [`AdmitLayer`](crate::layer::AdmitLayer) → [`Answer`] → dispatch (with the user's
//! layers), with bounded concurrency; a reply goes out through the
//! [`SealLayer`](crate::layer::SealLayer); then the delivery is acknowledged. And graceful
//! shutdown.

use std::convert::Infallible;
use std::sync::Arc;

use tokio::sync::{Semaphore, oneshot};
use tower::{Layer, ServiceExt};
use tracing::Instrument;

use super::BoxError;
use super::answer::{Answer, Reply};
use super::dispatch::IncomingRequest;
use crate::error::Error;
use crate::layer::{Admission, AdmitLayer, Inbound, Seal, SealLayer, TransportSender, call_now};
use crate::payload::Encoded;
use crate::security::Security;
use crate::transport::{Delivery, ListenSpec, Subscription, Transport};

/// What every request task of a server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    security: Arc<Security>,
    sender: Seal<TransportSender>,
}

/// How a server starts: where it sends, what it admits.
pub(crate) struct Setup {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) security: Arc<Security>,
    pub(crate) spec: ListenSpec,
    pub(crate) broker_user: Option<crate::layer::BrokerUserCheck>,
}

/// A running server. Dropping it stops consuming too (without waiting for in-flight
/// requests); [`ServerHandle::shutdown`] stops and waits.
#[derive(Debug)]
pub struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    spec: ListenSpec,
}

impl ServerHandle {
    /// Stops consuming, then waits until every request already taken has been handled and
    /// answered.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = (&mut self.task).await {
            tracing::warn!(error = %e, "server task ended abnormally");
        }
    }

    /// Like [`ServerHandle::shutdown`], but waits at most `timeout` for in-flight requests;
    /// returns `true` when they all finished. Requests still running are left to finish
    /// on their own (their replies are still sent).
    pub async fn shutdown_timeout(mut self, timeout: std::time::Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(timeout, &mut self.task).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "server task ended abnormally");
                true
            }
            Err(_) => {
                tracing::warn!(
                    ?timeout,
                    "server shutdown: requests still in flight after the drain timeout"
                );
                false
            }
        }
    }

    /// What this server listens to.
    pub fn listen_spec(&self) -> &ListenSpec {
        &self.spec
    }

    /// The server's name (for `topic.server` addressing).
    pub fn server_name(&self) -> &str {
        &self.spec.server
    }
}

pub(crate) fn spawn<S>(setup: Setup, dispatch: S, sub: Subscription, max: usize) -> ServerHandle
where
    S: tower::Service<IncomingRequest, Response = Encoded> + Clone + Send + 'static,
    S::Error: Into<BoxError> + Send,
    S::Future: Send + 'static,
{
    let Setup {
        transport,
        security,
        spec,
        broker_user,
    } = setup;
    let mut admit = AdmitLayer::new(Arc::clone(&security), spec.served_addresses());
    if let Some(check) = broker_user {
        admit = admit.bind_broker_user(check);
    }
    let sender = SealLayer::new(Arc::clone(&security)).layer(TransportSender::new(transport));
    let stack = admit.layer(Answer::new(Arc::clone(&security), dispatch, sender.clone()));
    let shared = Shared { sender, security };
    let (stop, stop_rx) = oneshot::channel();
    let task = tokio::spawn(consume(Arc::new(shared), stack, sub, max, stop_rx));
    ServerHandle {
        stop: Some(stop),
        task,
        spec,
    }
}

/// The whole receive stack of a server, from a delivered message to the reply to send.
trait ServeStack:
    tower::Service<
        Inbound,
        Response = Admission<Option<Reply>>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<T> ServeStack for T where
    T: tower::Service<
            Inbound,
            Response = Admission<Option<Reply>>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

async fn consume<S: ServeStack>(
    shared: Arc<Shared>,
    stack: S,
    mut sub: Subscription,
    max: usize,
    mut stop: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(max));
    loop {
        // Take a slot first, so a busy server leaves deliveries to the topic's other servers.
        let permit = tokio::select! {
            biased;
            _ = &mut stop => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let delivery = tokio::select! {
            biased;
            _ = &mut stop => break,
            d = sub.recv() => match d {
                Some(d) => d,
                None => break,
            },
        };
        let shared = Arc::clone(&shared);
        let stack = stack.clone();
        // Boxed: the request's future (admission, dispatch, reply) runs to kilobytes, which
        // the runtime would otherwise move whole on spawn and again on completion.
        tokio::spawn(Box::pin(async move {
            handle(&shared, stack, delivery).await;
            drop(permit);
        }));
    }
    drop(sub);
    // Drain: every in-flight request holds a slot until it has replied.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn handle<S: ServeStack>(shared: &Shared, stack: S, mut delivery: Delivery) {
    let inbound = Inbound::take(&mut delivery);
    let reply_to = inbound.reply_to.clone();
    let reply = match stack.oneshot(inbound).await {
        Ok(Admission::Admitted(reply)) => reply,
        Ok(Admission::Rejected(rejection)) => {
            Reply::to_rejection(&shared.security, rejection, reply_to)
        }
        Err(never) => match never {},
    };
    if let Some(reply) = reply {
        let span = reply.span.clone();
        send_reply(shared, reply).instrument(span).await;
    }
    delivery.ack().await;
}

async fn send_reply(shared: &Shared, reply: Reply) {
    // Started in a statement of its own: the request, consumed at once, is then no part
    // of this future.
    let sent = call_now(shared.sender.clone(), reply.seal_request());
    match sent.await {
        Ok(()) => {}
        Err(Error::SecretOverUnsealedChannel) => {
            // Rare, and out of line (boxed): this future, which every request's task
            // carries and moves, keeps no room for a second send.
            Box::pin(send_unsealable(shared, &reply)).await;
        }
        Err(e @ Error::Security(_)) => tracing::warn!(error = %e, "cannot secure a reply"),
        Err(e) => tracing::debug!(error = %e, "reply not delivered (caller gone?)"),
    }
}

/// Answers with an error instead of a result holding a `Secret` that cannot go unsealed.
async fn send_unsealable(shared: &Shared, reply: &Reply) {
    tracing::warn!("a result holding a Secret cannot be sent unsealed; replying with an error");
    let fallback = reply.unsealable().seal_request();
    if let Err(e) = call_now(shared.sender.clone(), fallback).await {
        tracing::debug!(error = %e, "error reply not sent");
    }
}
