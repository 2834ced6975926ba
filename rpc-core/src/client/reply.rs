//! The reply loop (admits replies, matches them to pending calls) and the mapping of error
//! replies to [`Error`].

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use super::pending::Pending;
use crate::error::{Error, ErrorCode};
use crate::payload::decode_value;
use crate::security::{AdmittedBody, RejectReason, Security};
use crate::transport::ReplyInbox;
use crate::version::Version;
use crate::wire::{ErrorBody, Kind, ReplyBody};

/// Consumes the reply inbox until it closes.
pub(crate) async fn reply_loop(inbox: ReplyInbox, security: Arc<Security>, pending: Arc<Pending>) {
    let ReplyInbox {
        route,
        mut deliveries,
    } = inbox;
    while let Some(mut delivery) = deliveries.recv().await {
        let admitted = security.admit(&delivery.payload, &|dst| dst == route);
        delivery.ack().await;
        // Rejections are counted (and rate-limited logged) by the pipeline itself.
        let Ok(admitted) = admitted else { continue };
        let delivered = match (admitted.header.kind, admitted.header.corr, admitted.body) {
            (Kind::Reply, Some(corr), AdmittedBody::Reply(body)) => {
                pending.complete(corr, admitted.principal.as_ref(), body)
            }
            _ => false,
        };
        if !delivered {
            // Late (timed out), unknown, or from a principal that may not answer the call.
            security.count_rejection(RejectReason::UnexpectedReply);
            tracing::debug!(id = %admitted.header.id, "dropped an unexpected reply");
        }
    }
    pending.close();
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
