//! The wire error codes (a reply's `err.code`): below both the crate's [`Error`](crate::Error)
//! and the security pipeline's [`RejectReason`](crate::security::RejectReason), which map
//! onto them.

use std::fmt;

/// Error codes carried in a reply's `err.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No handler for the method (in that namespace).
    NoSuchMethod,
    /// The server's interface is older than the version requested.
    UnsupportedVersion,
    /// The message was not authenticated as policy requires.
    Unauthenticated,
    /// Authenticated, but the caller may not call this.
    Forbidden,
    /// Seen before.
    Replay,
    /// Past its deadline.
    Expired,
    /// The caller's key has been revoked.
    Revoked,
    /// The request could not be decoded.
    BadRequest,
    /// The handler failed (its own error name is carried instead where it has one).
    Remote,
    /// No reply in time.
    Timeout,
    /// Nothing serves the target.
    NoListener,
    /// The transport failed.
    Transport,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::NoSuchMethod,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::Replay,
        ErrorCode::Expired,
        ErrorCode::Revoked,
        ErrorCode::BadRequest,
        ErrorCode::Remote,
        ErrorCode::Timeout,
        ErrorCode::NoListener,
        ErrorCode::Transport,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NoSuchMethod => "NoSuchMethod",
            ErrorCode::UnsupportedVersion => "UnsupportedVersion",
            ErrorCode::Unauthenticated => "Unauthenticated",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::Replay => "Replay",
            ErrorCode::Expired => "Expired",
            ErrorCode::Revoked => "Revoked",
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::Remote => "Remote",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::NoListener => "NoListener",
            ErrorCode::Transport => "Transport",
        }
    }

    /// Parses a wire name; `None` for an application's own error names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
