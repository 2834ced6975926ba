//! The crate's error type.

pub use crate::error_code::ErrorCode;
use crate::security::RejectReason;
use crate::transport::{TransportError, TransportErrorKind};
use crate::version::Version;
use crate::wire::CodecError;

/// Everything that can go wrong in sealrpc-core. Messages never carry secrets or argument
/// values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No reply within the call's timeout.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// A monitored call heard neither a reply nor a heartbeat within its
    /// `call_monitor_timeout`: the server is presumed dead. Retriable.
    #[error("no heartbeat from the server within {0:?} (call monitor)")]
    MonitorTimeout(std::time::Duration),
    /// Nothing serves the target.
    #[error("no listener for {0}")]
    NoListener(String),
    /// The server does not serve the method in that namespace.
    #[error("no such method {method:?}")]
    NoSuchMethod {
        /// The method called.
        method: String,
    },
    /// The server's interface is older than the version requested.
    #[error("version {requested} not supported (server supports {supported})")]
    UnsupportedVersion {
        /// What the caller asked for.
        requested: Version,
        /// What the server has.
        supported: Version,
    },
    /// The client's version cap forbids sending this version.
    #[error("version {requested} is above the cap {cap}")]
    VersionCap {
        /// What the caller asked for.
        requested: Version,
        /// The client's cap.
        cap: Version,
    },
    /// The peer refused the message for a security or validity reason (coarse on purpose).
    #[error("rejected by peer: {code}: {msg}")]
    Rejected {
        /// `Unauthenticated`, `Forbidden`, `Replay`, `Expired`, `Revoked` or `BadRequest`.
        code: ErrorCode,
        /// The peer's message.
        msg: String,
    },
    /// This node refused a message it received (e.g. a reply) for `reason`.
    #[error("refused received message: {0}")]
    Refused(RejectReason),
    /// The handler returned an error.
    #[error("remote error {code}: {msg}")]
    Remote {
        /// The handler's error name.
        code: String,
        /// The handler's message.
        msg: String,
        /// Encoded details, if any.
        data: Option<bytes::Bytes>,
    },
    /// A `Secret` would travel over a channel that is not sealed.
    #[error("refusing to send a Secret over an unsealed channel")]
    SecretOverUnsealedChannel,
    /// Signing or sealing an outgoing message failed.
    #[error("cannot secure outgoing message: {0}")]
    Security(#[from] crate::security::KeyError),
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The transport failed.
    #[error(transparent)]
    Transport(TransportError),
    /// The client or server was shut down.
    #[error("shut down")]
    Shutdown,
    /// Invalid configuration or arguments.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// Lets a send stack end in a service that cannot fail.
impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        match e.kind {
            TransportErrorKind::NoListener => Error::NoListener(e.message),
            _ => Error::Transport(e),
        }
    }
}

impl Error {
    /// The wire code that best describes this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Timeout(_) | Error::MonitorTimeout(_) => ErrorCode::Timeout,
            Error::NoListener(_) => ErrorCode::NoListener,
            Error::NoSuchMethod { .. } => ErrorCode::NoSuchMethod,
            Error::UnsupportedVersion { .. } | Error::VersionCap { .. } => {
                ErrorCode::UnsupportedVersion
            }
            Error::Rejected { code, .. } => *code,
            Error::Refused(r) => r.wire_code(),
            Error::Remote { .. } => ErrorCode::Remote,
            Error::Codec(_) | Error::Invalid(_) | Error::SecretOverUnsealedChannel => {
                ErrorCode::BadRequest
            }
            Error::Security(_) | Error::Transport(_) | Error::Shutdown => ErrorCode::Transport,
        }
    }

    /// True when the same call may succeed if retried (transport hiccups, timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Timeout(_) | Error::MonitorTimeout(_) => true,
            Error::Transport(t) => t.is_retriable(),
            _ => false,
        }
    }
}
