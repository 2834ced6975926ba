//! The consume loop: admit each delivery, dispatch it through the service stack with
//! bounded concurrency, send the (sealed, signed) reply, acknowledge; and graceful shutdown.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt;
use tracing::Instrument;

use super::BoxError;
use super::caller::Caller;
use super::dispatch::IncomingRequest;
use super::error::HandlerError;
use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::payload::Encoded;
use crate::principal::Principal;
use crate::security::{
    Admitted, AdmittedBody, Outbound, Peer, RejectReason, Rejection, Security, now_ms,
};
use crate::transport::{Address, Delivery, ListenSpec, Outgoing, Subscription, Transport};
use crate::wire::{ErrorBody, Header, Kind, MessageId, ReplyBody};

/// What every request task of a server shares.
pub(crate) struct Shared {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) security: Arc<Security>,
    pub(crate) served: Vec<String>,
    pub(crate) spec: ListenSpec,
    pub(crate) broker_user: Option<BrokerUserCheck>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("transport", &self.transport)
            .field("served", &self.served)
            .field("spec", &self.spec)
            .field("broker_user_bound", &self.broker_user.is_some())
            .finish_non_exhaustive()
    }
}

/// Says whether a broker user may publish for a principal (see
/// [`super::ServerBuilder::bind_broker_user`]).
pub(crate) type BrokerUserCheck = Arc<dyn Fn(&Principal, &str) -> bool + Send + Sync>;

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

pub(crate) fn spawn<S>(shared: Shared, service: S, sub: Subscription, max: usize) -> ServerHandle
where
    S: tower::Service<IncomingRequest, Response = Encoded> + Clone + Send + 'static,
    S::Error: Into<BoxError> + Send,
    S::Future: Send + 'static,
{
    let (stop, stop_rx) = oneshot::channel();
    let spec = shared.spec.clone();
    let task = tokio::spawn(consume(Arc::new(shared), service, sub, max, stop_rx));
    ServerHandle {
        stop: Some(stop),
        task,
        spec,
    }
}

async fn consume<S>(
    shared: Arc<Shared>,
    service: S,
    mut sub: Subscription,
    max: usize,
    mut stop: oneshot::Receiver<()>,
) where
    S: tower::Service<IncomingRequest, Response = Encoded> + Clone + Send + 'static,
    S::Error: Into<BoxError> + Send,
    S::Future: Send + 'static,
{
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
        let service = service.clone();
        tokio::spawn(async move {
            handle(&shared, service, delivery).await;
            drop(permit);
        });
    }
    drop(sub);
    // Drain: every in-flight request holds a slot until it has replied.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn handle<S>(shared: &Shared, service: S, mut delivery: Delivery)
where
    S: tower::Service<IncomingRequest, Response = Encoded> + Send,
    S::Error: Into<BoxError> + Send,
    S::Future: Send,
{
    let served = |dst: &str| shared.served.iter().any(|s| s == dst);
    let admitted = shared
        .security
        .admit(&delivery.payload, &served)
        .and_then(|a| check_broker_user(shared, a, delivery.broker_user.as_deref()));
    match admitted {
        Ok(admitted) => serve(shared, service, admitted, delivery.reply_to.clone()).await,
        Err(rejection) => answer_rejection(shared, &rejection, delivery.reply_to.as_deref()).await,
    }
    delivery.ack().await;
}

/// Defense in depth beside the signature: when the transport reports the broker-validated
/// publisher and a binding is configured, it must belong to the authenticated principal.
fn check_broker_user(
    shared: &Shared,
    admitted: Admitted,
    user: Option<&str>,
) -> Result<Admitted, Rejection> {
    let (Some(check), Some(user), Some(principal)) =
        (&shared.broker_user, user, &admitted.principal)
    else {
        return Ok(admitted);
    };
    if check(principal, user) {
        return Ok(admitted);
    }
    shared
        .security
        .count_rejection(RejectReason::BrokerUserMismatch);
    tracing::warn!(principal = %principal, "broker user does not match the authenticated principal");
    Err(Rejection {
        reason: RejectReason::BrokerUserMismatch,
        header: Some(Box::new(admitted.header)),
    })
}

/// Whom a reply is for: the caller's guest identity (proven, else claimed) or the control plane.
fn reply_peer(principal: Option<&Principal>, src: &str) -> Peer {
    let guest = match principal {
        Some(p) => p.guest_id().map(str::to_owned),
        None => Principal::parse(src).and_then(|p| p.guest_id().map(str::to_owned)),
    };
    guest.map_or(Peer::ControlPlane, Peer::Guest)
}

async fn serve<S>(shared: &Shared, service: S, admitted: Admitted, reply_to: Option<String>)
where
    S: tower::Service<IncomingRequest, Response = Encoded> + Send,
    S::Error: Into<BoxError> + Send,
    S::Future: Send,
{
    let Admitted {
        header,
        body,
        principal,
        signed,
        sealed,
    } = admitted;
    let AdmittedBody::Request(body) = body else {
        shared
            .security
            .count_rejection(RejectReason::UnexpectedReply);
        return;
    };
    let mut ctx = Context::decode(&body.ctx);
    ctx.set_principal(principal.clone());
    ctx.set_deadline_from_header(header.ts, header.ttl);
    let span = tracing::debug_span!(
        "rpc.serve",
        request_id = %ctx.request_id(),
        method = %body.method,
        kind = header.kind.as_str(),
        msg_id = %header.id,
        caller = ?principal.as_ref().map(Principal::as_str),
    );
    let peer = reply_peer(principal.as_ref(), &header.src);
    let request = IncomingRequest {
        ctx,
        caller: Caller::admitted(principal, header.src.clone(), signed, sealed),
        method: body.method,
        namespace: body.namespace,
        version: body.version,
        args: body.args,
        kind: header.kind,
        id: header.id,
    };
    async move {
        let outcome = service
            .oneshot(request)
            .await
            .map_err(|e| into_handler_error(e.into()));
        if let Err(e) = &outcome {
            tracing::debug!(code = e.code(), "request failed");
        }
        if header.kind != Kind::Call {
            return;
        }
        let Some(route) = reply_to.or_else(|| header.reply.clone()) else {
            tracing::debug!("call without a reply address: no reply sent");
            return;
        };
        send_reply(shared, &header, route, peer, outcome).await;
    }
    .instrument(span)
    .await
}

fn into_handler_error(e: BoxError) -> HandlerError {
    match e.downcast::<HandlerError>() {
        Ok(h) => *h,
        Err(other) => HandlerError::remote(other.to_string()),
    }
}

async fn send_reply(
    shared: &Shared,
    request: &Header,
    route: String,
    peer: Peer,
    outcome: Result<Encoded, HandlerError>,
) {
    let (body, carries_secret) = match outcome {
        Ok(enc) => {
            let secret = enc.carries_secret();
            (ReplyBody::Ok(Bytes::from(enc.into_bytes())), secret)
        }
        Err(e) => (ReplyBody::Err(e.into_body()), false),
    };
    match reply_envelope(shared, request, &route, peer.clone(), &body, carries_secret) {
        Ok(bytes) => transmit(shared, route, bytes).await,
        Err(Error::SecretOverUnsealedChannel) => {
            tracing::warn!(
                "a result holding a Secret cannot be sent unsealed; replying with an error"
            );
            let err = ReplyBody::Err(ErrorBody {
                code: ErrorCode::Remote.as_str().to_owned(),
                msg: "the result cannot be sent over an unsealed channel".to_owned(),
                data: None,
            });
            if let Ok(bytes) = reply_envelope(shared, request, &route, peer, &err, false) {
                transmit(shared, route, bytes).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot secure a reply"),
    }
}

fn reply_envelope(
    shared: &Shared,
    request: &Header,
    route: &str,
    peer: Peer,
    body: &ReplyBody,
    carries_secret: bool,
) -> Result<Vec<u8>, Error> {
    let header = Header {
        id: MessageId::random(),
        kind: Kind::Reply,
        ts: now_ms(),
        ttl: None,
        src: String::new(),
        dst: request.reply.clone().unwrap_or_else(|| route.to_owned()),
        corr: Some(request.id),
        reply: None,
        seal: None,
    };
    shared.security.seal_and_sign(Outbound {
        header,
        body: body.encode(),
        peer,
        carries_secret,
    })
}

async fn transmit(shared: &Shared, route: String, bytes: Vec<u8>) {
    let sent = shared
        .transport
        .send(Outgoing {
            to: Address::Reply(route),
            payload: Bytes::from(bytes),
            reply_to: None,
            expiration: None,
            confirm: false,
        })
        .await;
    if let Err(e) = sent {
        tracing::debug!(error = %e, "reply not delivered (caller gone?)");
    }
}

/// A rejected call gets a coarse error reply (rate-limited), never anything more.
async fn answer_rejection(shared: &Shared, rejection: &Rejection, reply_to: Option<&str>) {
    let Some(header) = &rejection.header else {
        return;
    };
    if header.kind != Kind::Call {
        return;
    }
    let Some(route) = reply_to.map(str::to_owned).or_else(|| header.reply.clone()) else {
        return;
    };
    if !shared.security.allow_error_reply() {
        return;
    }
    let body = ReplyBody::Err(ErrorBody {
        code: rejection.reason.wire_code().as_str().to_owned(),
        msg: "request rejected".to_owned(),
        data: None,
    });
    let peer = reply_peer(None, &header.src);
    match reply_envelope(shared, header, &route, peer, &body, false) {
        Ok(bytes) => transmit(shared, route, bytes).await,
        Err(e) => tracing::debug!(error = %e, "cannot secure an error reply"),
    }
}
