//! The service between admission and dispatch on a server: turns an admitted request into
//! an [`IncomingRequest`], runs it through dispatch (and the user's layers), and says what
//! to answer; and the coarse answer to a rejected call.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use tower::ServiceExt;
use tracing::Instrument;

use super::BoxError;
use super::caller::Caller;
use super::dispatch::IncomingRequest;
use super::error::HandlerError;
use super::heartbeat::{Beats, beating};
use crate::context::Context;
use crate::error::ErrorCode;
use crate::layer::{AdmittedMessage, Seal, SealRequest, TransportSender};
use crate::payload::Encoded;
use crate::principal::Principal;
use crate::security::{Admitted, AdmittedBody, Outbound, Peer, RejectReason, Rejection, Security};
use crate::transport::{Address, Outgoing};
use crate::wire::{ErrorBody, Header, Kind, ReplyBody};

/// A reply to send: to whom, in answer to which request, and what.
#[derive(Debug)]
pub(crate) struct Reply {
    request: Header,
    route: String,
    peer: Peer,
    body: ReplyBody,
    carries_secret: bool,
    /// The request's span, so that sending the reply is traced with it.
    pub(crate) span: tracing::Span,
}

impl Reply {
    /// The reply as a message for the [`SealLayer`](crate::layer::SealLayer).
    pub(crate) fn seal_request(&self) -> SealRequest {
        let dst = self
            .request
            .reply
            .clone()
            .unwrap_or_else(|| self.route.clone());
        SealRequest {
            message: Outbound {
                header: Header::reply(dst, self.request.id),
                body: self.body.clone().into(),
                peer: self.peer.clone(),
                carries_secret: self.carries_secret,
            },
            outgoing: Outgoing {
                to: Address::Reply(self.route.clone()),
                payload: Bytes::new(),
                reply_to: None,
                expiration: None,
                confirm: false,
            },
        }
    }

    /// A heartbeat for the call `request` (a reply-kind message; see docs/wire-format.md).
    pub(crate) fn heartbeat(request: Header, route: String, peer: Peer) -> Self {
        Self {
            request,
            route,
            peer,
            body: ReplyBody::Heartbeat,
            carries_secret: false,
            span: tracing::Span::current(),
        }
    }

    /// The error reply sent instead of a result holding a `Secret` that cannot be sealed.
    pub(crate) fn unsealable(&self) -> Self {
        Self {
            request: self.request.clone(),
            route: self.route.clone(),
            peer: self.peer.clone(),
            body: error_body(
                ErrorCode::Remote,
                "the result cannot be sent over an unsealed channel",
            ),
            carries_secret: false,
            span: self.span.clone(),
        }
    }

    /// A rejected call gets a coarse error reply (rate-limited), never anything more.
    pub(crate) fn to_rejection(
        security: &Security,
        rejection: Rejection,
        reply_to: Option<String>,
    ) -> Option<Self> {
        // A replay is a second copy of a call already admitted: an attacker's copy, or the
        // broker's redelivery after the first consumer's node was lost. The first copy
        // answers; a second answer could overtake it and tell the caller that its call was
        // refused (non-retriable) when it ran, or is still running, elsewhere.
        if rejection.reason == crate::security::RejectReason::Replay {
            return None;
        }
        let header = rejection.header?;
        if header.kind != Kind::Call {
            return None;
        }
        let route = reply_to.or_else(|| header.reply.clone())?;
        if !security.allow_error_reply() {
            return None;
        }
        Some(Self {
            peer: reply_peer(None, &header.src),
            request: *header,
            route,
            body: error_body(rejection.reason.wire_code(), "request rejected"),
            carries_secret: false,
            span: tracing::Span::current(),
        })
    }
}

fn error_body(code: ErrorCode, msg: &str) -> ReplyBody {
    ReplyBody::Err(ErrorBody {
        code: code.as_str().to_owned(),
        msg: msg.to_owned(),
        data: None,
    })
}

/// Whom a reply is for: the caller's guest identity (proven, else claimed) or the control plane.
fn reply_peer(principal: Option<&Principal>, src: &str) -> Peer {
    let guest = match principal {
        Some(p) => p.guest_id().map(str::to_owned),
        None => Principal::guest_id_of(src).map(str::to_owned),
    };
    guest.map_or(Peer::ControlPlane, Peer::Guest)
}

/// Serves admitted requests with the dispatch stack `S`; answers `Some(reply)` for calls.
#[derive(Clone)]
pub(crate) struct Answer<S> {
    security: Arc<Security>,
    dispatch: S,
    /// Sends the heartbeats of monitored calls.
    heartbeats: Seal<TransportSender>,
}

impl<S> Answer<S> {
    pub(crate) fn new(
        security: Arc<Security>,
        dispatch: S,
        heartbeats: Seal<TransportSender>,
    ) -> Self {
        Self {
            security,
            dispatch,
            heartbeats,
        }
    }
}

impl<S> tower::Service<AdmittedMessage> for Answer<S>
where
    S: tower::Service<IncomingRequest, Response = Encoded> + Clone + Send + 'static,
    S::Error: Into<BoxError> + Send,
    S::Future: Send + 'static,
{
    type Response = Option<Reply>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Option<Reply>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        // Dispatch is driven with `oneshot`, which waits for its readiness per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, msg: AdmittedMessage) -> Self::Future {
        let security = Arc::clone(&self.security);
        let dispatch = self.dispatch.clone();
        let heartbeats = self.heartbeats.clone();
        Box::pin(async move { Ok(serve(&security, dispatch, &heartbeats, msg).await) })
    }
}

async fn serve<S>(
    security: &Security,
    dispatch: S,
    heartbeats: &Seal<TransportSender>,
    msg: AdmittedMessage,
) -> Option<Reply>
where
    S: tower::Service<IncomingRequest, Response = Encoded> + Send,
    S::Error: Into<BoxError> + Send,
    S::Future: Send,
{
    let AdmittedMessage { message, reply_to } = msg;
    let Admitted {
        header,
        body,
        principal,
        signed,
        sealed,
        ..
    } = message;
    let AdmittedBody::Request(body) = body else {
        // A reply at a server nobody waits for; a notification is for listeners only.
        security.count_rejection(if header.kind == Kind::Notify {
            RejectReason::Misdirected
        } else {
            RejectReason::UnexpectedReply
        });
        return None;
    };
    let mut ctx = Context::decode(&body.ctx);
    ctx.set_principal(principal.clone());
    ctx.set_deadline_from_header(header.ts, header.ttl);
    let span = tracing::debug_span!(
        "rpc.serve",
        request_id = %ctx.request_id(),
        global_request_id = ctx.global_request_id().unwrap_or(ctx.request_id()),
        method = %body.method,
        kind = header.kind.as_str(),
        msg_id = %header.id,
        caller = ?principal.as_ref().map(Principal::as_str),
    );
    let timer = crate::observe::CallTimer::server(&body.method, header.kind);
    let peer = reply_peer(principal.as_ref(), &header.src);
    let beats = Beats::plan(
        Some(heartbeats),
        &header,
        reply_to.as_deref(),
        &peer,
        body.monitor,
    );
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
    let outcome = beating(beats, dispatch.oneshot(request).instrument(span.clone()))
        .await
        .map_err(|e| into_handler_error(e.into()));
    timer.finish_served(&outcome);
    if outcome
        .as_ref()
        .is_err_and(|e| e.code() == ErrorCode::Forbidden.as_str())
    {
        security.count_forbidden();
    }
    span.clone()
        .in_scope(|| reply_for(header, reply_to, peer, outcome, span))
}

/// What a served request answers: `Some` for a call with a reply address.
fn reply_for(
    request: Header,
    reply_to: Option<String>,
    peer: Peer,
    outcome: Result<Encoded, HandlerError>,
    span: tracing::Span,
) -> Option<Reply> {
    if let Err(e) = &outcome {
        tracing::debug!(code = e.code(), "request failed");
    }
    if request.kind != Kind::Call {
        return None;
    }
    let Some(route) = reply_to.or_else(|| request.reply.clone()) else {
        tracing::debug!("call without a reply address: no reply sent");
        return None;
    };
    let (body, carries_secret) = match outcome {
        Ok(enc) => {
            let secret = enc.carries_secret();
            (ReplyBody::Ok(enc.into_bytes()), secret)
        }
        Err(e) => (ReplyBody::Err(e.into_body()), false),
    };
    Some(Reply {
        request,
        route,
        peer,
        body,
        carries_secret,
        span,
    })
}

fn into_handler_error(e: BoxError) -> HandlerError {
    match e.downcast::<HandlerError>() {
        Ok(h) => *h,
        Err(other) => HandlerError::remote(other.to_string()),
    }
}
