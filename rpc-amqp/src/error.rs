//! Mapping lapin / AMQP errors to [`TransportError`]s operators can act on.

use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::{Error as LapinError, ErrorKind as LapinKind};
use sealrpc_core::transport::{TransportError, TransportErrorKind};

/// AMQP reply code for ACCESS_REFUSED.
pub const ACCESS_REFUSED: u16 = 403;
/// AMQP reply code for NOT_FOUND.
pub const NOT_FOUND: u16 = 404;
/// AMQP reply code for RESOURCE_LOCKED (e.g. an exclusive queue or consumer held elsewhere).
pub const RESOURCE_LOCKED: u16 = 405;

/// The broker's reply code and text when `err` is an AMQP protocol error (a channel or
/// connection the broker closed), e.g. `(403, "ACCESS_REFUSED - access to queue ...")`.
pub fn amqp_reply(err: &LapinError) -> Option<(u16, String)> {
    match err.kind() {
        LapinKind::ProtocolError(e) => Some((e.get_id(), e.get_message().to_string())),
        _ => None,
    }
}

fn kind_of_amqp(e: &AMQPError) -> TransportErrorKind {
    match e.kind() {
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => TransportErrorKind::AccessRefused,
        AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => TransportErrorKind::AccessRefused,
        AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED) => TransportErrorKind::Unavailable,
        AMQPErrorKind::Hard(AMQPHardError::FRAMEERROR) => TransportErrorKind::TooLarge,
        AMQPErrorKind::Soft(AMQPSoftError::NOROUTE) => TransportErrorKind::NoListener,
        AMQPErrorKind::Soft(AMQPSoftError::NOCONSUMERS) => TransportErrorKind::NoListener,
        AMQPErrorKind::Hard(_) => TransportErrorKind::Unavailable,
        AMQPErrorKind::Soft(_) => TransportErrorKind::Other,
    }
}

/// Maps a lapin error met while doing `what` (e.g. "publish to sealrpc/topic") to a
/// transport error. Broker-closed channels and connections keep their reply code and
/// text; lost connections are `Unavailable` (retriable).
pub fn from_lapin(err: &LapinError, what: &str) -> TransportError {
    let (kind, detail) = match err.kind() {
        LapinKind::ProtocolError(e) => (
            kind_of_amqp(e),
            format!(
                "broker closed the {} with {} {}",
                if matches!(e.kind(), AMQPErrorKind::Hard(_)) {
                    "connection"
                } else {
                    "channel"
                },
                e.get_id(),
                e.get_message()
            ),
        ),
        LapinKind::IOError(_)
        | LapinKind::RuntimeShutdownError(_)
        | LapinKind::MissingHeartbeatError
        | LapinKind::InvalidConnectionState(_)
        | LapinKind::InvalidChannelState(..)
        | LapinKind::InvalidChannel(_)
        | LapinKind::ChannelsLimitReached => (TransportErrorKind::Unavailable, err.to_string()),
        LapinKind::AuthProviderError(_) => (TransportErrorKind::AccessRefused, err.to_string()),
        _ => (TransportErrorKind::Other, err.to_string()),
    };
    TransportError::new(kind, format!("{what}: {detail}"))
}

/// The connection is down and did not come back in time.
pub(crate) fn unavailable(msg: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Unavailable, msg)
}

/// The transport was closed.
pub(crate) fn closed() -> TransportError {
    TransportError::new(TransportErrorKind::Closed, "the AMQP transport was closed")
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
