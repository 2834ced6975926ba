//! Sending calls and casts: version cap, deadline, header, body, then seal, sign and send
//! through the [`SealLayer`](crate::layer::SealLayer), and (for calls) waiting for the
//! matching reply.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, TryAcquireError};
use tracing::Instrument;

use super::pending::{PendingGuard, Waiting};
use super::request::{CallRequest, CallResponse};
use super::{Inner, reply};
use crate::error::Error;
use crate::layer::{CallNow, CallSender, Seal, SealRequest, call_now};
use crate::security::{Outbound, Peer};
use crate::transport::{Address, Confirm, Outgoing, TransportError, TransportErrorKind};
use crate::wire::{Header, Kind, MessageId, RequestBody};

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The time the call may take: its timeout, cut short by the context's deadline.
fn effective_timeout(timeout: Duration, deadline: Option<SystemTime>) -> Result<Duration, Error> {
    match deadline {
        None => Ok(timeout),
        Some(d) => match d.duration_since(SystemTime::now()) {
            Ok(left) if !left.is_zero() => Ok(timeout.min(left)),
            _ => Err(Error::Timeout(Duration::ZERO)),
        },
    }
}

impl Inner {
    fn check_cap(&self, req: &CallRequest) -> Result<(), Error> {
        match self.options.version_cap {
            Some(cap) if !cap.can_serve(req.target.version) => Err(Error::VersionCap {
                requested: req.target.version,
                cap,
            }),
            _ => Ok(()),
        }
    }

    async fn permit(&self, timeout: Duration) -> Result<OwnedSemaphorePermit, Error> {
        // A free slot is taken at once, without arming a timer. (A free slot is never one a
        // waiting call is owed: the semaphore hands released slots to its waiters first.)
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => return Ok(p),
            Err(TryAcquireError::NoPermits) if self.options.fail_when_full => {
                return Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Unavailable,
                    format!(
                        "{} calls already in flight on this client",
                        self.options.max_in_flight
                    ),
                )));
            }
            Err(_) => {}
        }
        let permits = Arc::clone(&self.permits);
        match tokio::time::timeout(timeout, permits.acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Error::Shutdown),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// The call monitor timeout of `req`: its own, else the client's default.
    fn monitor_timeout(&self, req: &CallRequest) -> Option<Duration> {
        req.call_monitor_timeout
            .or(self.options.call_monitor_timeout)
            .filter(|m| !m.is_zero())
    }

    /// The message to seal, sign and send for `req` to `to` and `peer` (its target's
    /// address and effective peer) under `header` (a call's or a cast's).
    fn message(
        &self,
        req: &CallRequest,
        to: Address,
        peer: Peer,
        header: Header,
        ttl: Option<Duration>,
    ) -> SealRequest {
        let is_call = header.kind == Kind::Call;
        // A monitored call asks the server to heartbeat at about half its monitor timeout.
        let monitor = self
            .monitor_timeout(req)
            .filter(|_| is_call)
            .map(|m| millis(m / 2));
        // The body's parts: `args` and `ctx` are shared, not copied, until the seal layer
        // writes them into the envelope.
        let body = RequestBody {
            method: req.method.clone(),
            version: req.target.version,
            namespace: req.target.namespace.as_deref().map(str::to_owned),
            args: req.args.clone().into_bytes(),
            ctx: req.ctx.clone().into_bytes(),
            monitor,
        };
        SealRequest {
            message: Outbound {
                header,
                body: body.into(),
                peer,
                carries_secret: req.carries_secret(),
            },
            outgoing: Outgoing {
                to,
                payload: Bytes::new(),
                reply_to: is_call.then(|| self.route.clone()),
                expiration: ttl,
                // A cast returns once the transport holds it; a call waits for its reply.
                confirm: !is_call,
            },
        }
    }

    /// Registers the call `req` (message `id`, worthless after `ttl`) and starts sending
    /// it. Not async: the header and the message (large) stay out of the call's future,
    /// which the caller holds (and may move) while it waits.
    fn send_call(
        &self,
        req: &mut CallRequest,
        id: MessageId,
        ttl: Duration,
        monitored: bool,
    ) -> Result<SentCall, Error> {
        // The request is this call's own: its peer moves into the message.
        let (to, peer) = (req.target.address(), req.target.take_effective_peer());
        let (guard, waiting) = self
            .pending
            .register(id, peer.clone(), monitored)
            .ok_or(Error::Shutdown)?;
        let header = Header::call(id, to.dst(), millis(ttl), self.route.clone());
        let message = self.message(req, to, peer, header, Some(ttl));
        Ok((guard, waiting, call_now(self.call_sender.clone(), message)))
    }
}

/// A call registered and on its way: its entry in the pending table, what it waits on,
/// and its send.
type SentCall = (
    PendingGuard,
    Waiting,
    CallNow<Seal<CallSender>, SealRequest>,
);

/// Sends a call and waits for its reply.
pub(crate) async fn call(inner: &Arc<Inner>, mut req: CallRequest) -> Result<CallResponse, Error> {
    let id = MessageId::random();
    let span = tracing::debug_span!(
        "rpc.call",
        request_id = %req.request_id,
        global_request_id = %req.global_request_id,
        method = %req.method,
        target = %req.target.address().dst(),
        msg_id = %id,
    );
    let timer = crate::observe::CallTimer::client(&req.method, Kind::Call);
    async move {
        let result = call_inner(inner, &mut req, id).await;
        timer.finish_call(&result);
        match &result {
            Ok(_) => tracing::debug!("reply received"),
            Err(e) => tracing::debug!(code = %e.code(), error = %e, "call failed"),
        }
        result
    }
    .instrument(span)
    .await
}

async fn call_inner(
    inner: &Arc<Inner>,
    req: &mut CallRequest,
    id: MessageId,
) -> Result<CallResponse, Error> {
    if req.target.fanout {
        return Err(Error::Invalid(
            "a fanout target cannot be called; cast to it".into(),
        ));
    }
    inner.check_cap(req)?;
    let timeout = req.timeout.unwrap_or(inner.options.default_timeout);
    let timeout = effective_timeout(timeout, req.deadline)?;
    let started = Instant::now();

    let _permit = inner.permit(timeout).await?;
    // Time spent waiting for a slot counts: the server sees only what is left.
    let ttl = timeout.saturating_sub(started.elapsed());
    if ttl.is_zero() {
        return Err(Error::Timeout(timeout));
    }
    let monitor = inner.monitor_timeout(req);
    let (_guard, waiting, send) = inner.send_call(req, id, ttl, monitor.is_some())?;
    // The send counts against the timeout too: a full queue (a server that stopped
    // reading) or a transport waiting for a lost connection must not hold the call past it.
    let left = timeout.saturating_sub(started.elapsed());
    let confirm = match tokio::time::timeout(left, send).await {
        Ok(sent) => sent?,
        Err(_) => return Err(Error::Timeout(timeout)),
    };
    let deadline = tokio::time::Instant::from_std(started) + timeout;
    let body = wait_reply(waiting, confirm, deadline, timeout, monitor).await?;
    reply::into_result(&req.method, body).map(CallResponse::new)
}

/// Waits for the reply until `deadline`. A monitored call arms its monitor at the first
/// admitted heartbeat, and then fails once `monitor` passes without a reply or another
/// heartbeat. Before it (a server that does not heartbeat) only the deadline applies.
///
/// The request's `confirm` is awaited alongside: a failed one (unroutable, nacked, the
/// connection lost) fails the call with its error, a positive one changes nothing, and a
/// reply that comes first proves the call was routed, so the confirm is dropped.
async fn wait_reply(
    waiting: Waiting,
    mut confirm: Confirm,
    deadline: tokio::time::Instant,
    timeout: Duration,
    monitor: Option<Duration>,
) -> Result<crate::wire::ReplyBody, Error> {
    let Waiting { mut reply, beat } = waiting;
    let mut armed = None;
    let mut confirmed = false;
    loop {
        let watch_until = match armed {
            Some(m) => (tokio::time::Instant::now() + m).min(deadline),
            None => deadline,
        };
        tokio::select! {
            biased;
            r = &mut reply => return r.map_err(|_| Error::Shutdown),
            c = &mut confirm, if !confirmed => {
                c?;
                confirmed = true;
            }
            () = next_beat(beat.as_deref()), if beat.is_some() => armed = monitor,
            () = tokio::time::sleep_until(watch_until) => {
                return Err(match armed {
                    Some(m) if watch_until < deadline => Error::MonitorTimeout(m),
                    _ => Error::Timeout(timeout),
                });
            }
        }
    }
}

/// The next heartbeat of a monitored call; never, for a call that is not monitored.
async fn next_beat(beat: Option<&Notify>) {
    match beat {
        Some(beat) => beat.notified().await,
        None => std::future::pending().await,
    }
}

/// Sends a cast (or, to a fanout target, a fanout) and returns once the transport holds it.
pub(crate) async fn cast(inner: &Arc<Inner>, req: CallRequest) -> Result<(), Error> {
    let id = MessageId::random();
    let kind = if req.target.fanout {
        Kind::Fanout
    } else {
        Kind::Cast
    };
    let span = tracing::debug_span!(
        "rpc.cast",
        request_id = %req.request_id,
        global_request_id = %req.global_request_id,
        method = %req.method,
        target = %req.target.address().dst(),
        msg_id = %id,
    );
    let timer = crate::observe::CallTimer::client(&req.method, kind);
    let result = async move {
        inner.check_cap(&req)?;
        // A cast expires only when asked to: an explicit timeout or the context's deadline.
        let ttl = match (req.timeout, req.deadline) {
            (None, None) => None,
            (t, d) => Some(effective_timeout(t.unwrap_or(Duration::MAX), d)?),
        };
        let (to, ttl_ms) = (req.target.address(), ttl.map(millis));
        let header = match kind {
            Kind::Fanout => Header::fanout(id, to.dst(), ttl_ms),
            _ => Header::cast(id, to.dst(), ttl_ms),
        };
        let peer = req.target.effective_peer();
        let message = inner.message(&req, to, peer, header, ttl);
        let result = call_now(inner.sender.clone(), message).await;
        if let Err(e) = &result {
            tracing::debug!(code = %e.code(), "cast failed");
        }
        result
    }
    .instrument(span)
    .await;
    timer.finish_call(&result);
    result
}
