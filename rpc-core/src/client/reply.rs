//! The reply loop (admits replies, matches them to pending calls) and the mapping of error
//! replies to [`Error`].

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use tokio::task::JoinSet;
use tower::{Layer, Service, ServiceExt, service_fn};

use super::pending::Pending;
use crate::error::{Error, ErrorCode};
use crate::layer::{AdmitLayer, AdmittedMessage, Inbound};
use crate::payload::decode_value;
use crate::security::{Admitted, AdmittedBody, RejectReason, Security};
use crate::transport::{ReplyInbox, Subscription};
use crate::version::Version;
use crate::wire::{ErrorBody, Kind, ReplyBody};

/// When a reply is admitted in a task of its own instead of in the reply loop.
///
/// Admitting a large reply costs tens of microseconds per 64 KiB (signature, digest, open);
/// in a task of its own it can run on another worker while the loop admits the next reply.
/// A task hop costs about as much as admitting a small reply, so small replies, and any
/// reply while its call is the only one in flight, stay in the loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offload {
    /// Replies of at least this many bytes (as received) may go to a task.
    pub(crate) min_bytes: usize,
    /// Most replies being admitted in tasks at once (more are admitted in the loop).
    pub(crate) max_tasks: usize,
}

/// Consumes the reply inbox until it closes: each reply goes through an
/// [`AdmitLayer`](crate::layer::AdmitLayer) to the pending call it answers.
pub(crate) async fn reply_loop(
    inbox: ReplyInbox,
    security: Arc<Security>,
    pending: Arc<Pending>,
    offload: Offload,
) {
    let ReplyInbox {
        route,
        mut deliveries,
    } = inbox;
    let complete = {
        let security = Arc::clone(&security);
        let pending = Arc::clone(&pending);
        service_fn(move |msg: AdmittedMessage| {
            let delivered = complete(&security, &pending, msg.message);
            std::future::ready(Ok::<bool, Infallible>(delivered))
        })
    };
    let admit = AdmitLayer::new(security, [route]).layer(complete);
    admit_replies(&mut deliveries, admit, &pending, offload).await;
    pending.close();
}

/// Admits every reply of `deliveries` with `admit` until the inbox closes, and returns once
/// the replies admitted in tasks are done too (so that none is lost to the closing of the
/// pending table). Aborted, it aborts those tasks with it.
async fn admit_replies<S>(
    deliveries: &mut Subscription,
    mut admit: S,
    pending: &Pending,
    offload: Offload,
) where
    S: Service<Inbound, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    let mut tasks = JoinSet::new();
    while let Some(mut delivery) = deliveries.recv().await {
        let inbound = Inbound::take(&mut delivery);
        delivery.ack().await;
        while tasks.try_join_next().is_some() {}
        // Rejections are counted (and rate-limited logged) by the pipeline itself.
        if inbound.payload.len() >= offload.min_bytes
            && tasks.len() < offload.max_tasks
            && pending.len() > 1
        {
            tasks.spawn(admit.clone().oneshot(inbound));
        } else {
            let Ok(ready) = admit.ready().await;
            let Ok(_admission) = ready.call(inbound).await;
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Hands an admitted reply to the call waiting for it; false (counted) when none is.
fn complete(security: &Security, pending: &Pending, reply: Admitted) -> bool {
    let delivered = match (reply.header.kind, reply.header.corr, reply.body) {
        (Kind::Reply, Some(corr), AdmittedBody::Reply(ReplyBody::Heartbeat)) => {
            pending.heartbeat(corr, reply.principal.as_ref())
        }
        (Kind::Reply, Some(corr), AdmittedBody::Reply(body)) => {
            pending.complete(corr, reply.principal.as_ref(), body)
        }
        _ => false,
    };
    if !delivered {
        // Late (timed out), unknown, or from a principal that may not answer the call.
        security.count_rejection(RejectReason::UnexpectedReply);
        tracing::debug!(id = %reply.header.id, "dropped an unexpected reply");
    }
    delivered
}

#[derive(Deserialize)]
struct VersionData {
    requested: String,
    supported: String,
}

/// The result of a reply: the encoded `ok` value, or the error it carries.
pub(crate) fn into_result(method: &str, body: ReplyBody) -> Result<Bytes, Error> {
    match body {
        ReplyBody::Ok(result) => Ok(result),
        ReplyBody::Err(e) => Err(map_error(method, e)),
        // Heartbeats never complete a call (the reply loop keeps them apart).
        ReplyBody::Heartbeat => Err(Error::Invalid("a heartbeat is not a reply".into())),
    }
}

fn map_error(method: &str, e: ErrorBody) -> Error {
    match ErrorCode::parse(&e.code) {
        Some(ErrorCode::NoSuchMethod) => Error::NoSuchMethod {
            method: method.to_owned(),
        },
        Some(ErrorCode::UnsupportedVersion) => {
            let versions = e
                .data
                .as_ref()
                .and_then(|d| decode_value::<VersionData>(d, "version data").ok())
                .and_then(|v| Some((Version::parse(&v.requested)?, Version::parse(&v.supported)?)));
            match versions {
                Some((requested, supported)) => Error::UnsupportedVersion {
                    requested,
                    supported,
                },
                None => remote(e),
            }
        }
        Some(
            code @ (ErrorCode::Unauthenticated
            | ErrorCode::Forbidden
            | ErrorCode::Replay
            | ErrorCode::Expired
            | ErrorCode::Revoked
            | ErrorCode::BadRequest),
        ) => Error::Rejected { code, msg: e.msg },
        _ => remote(e),
    }
}

fn remote(e: ErrorBody) -> Error {
    Error::Remote {
        code: e.code,
        msg: e.msg,
        data: e.data,
    }
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
