//! Why a received message was rejected: fine-grained for counters and operators, coarse on
//! the wire so that an attacker learns nothing useful.

use crate::error_code::ErrorCode;

/// The reason a received message was rejected. Every variant is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectReason {
    /// Over a size limit.
    Oversized,
    /// Not a well-formed envelope, header or body.
    Malformed,
    /// A newer envelope major version.
    UnsupportedEnvelope,
    /// A known-algorithm signature failed, or was malformed.
    BadSignature,
    /// A signature or seal named a key this node does not know or may not use.
    UnknownKey,
    /// A key of a revoked principal.
    RevokedKey,
    /// A key of an old epoch past its grace window.
    StaleKey,
    /// Signers disagree, or the signer does not fit the seal's key.
    SignerMismatch,
    /// The header's `src` is not the proven principal.
    SourceMismatch,
    /// A seal key travelling the wrong way (e.g. a k2 seal sent to the control plane).
    WrongDirection,
    /// `dst` is not an address this node serves.
    Misdirected,
    /// Policy requires authentication the message lacks.
    Unauthenticated,
    /// Policy requires a seal the message lacks.
    Unsealed,
    /// `ts` outside the skew window.
    ClockSkew,
    /// Seen before.
    Replay,
    /// Past its deadline.
    Expired,
    /// The replay guard is full: failing closed.
    ReplayGuardFull,
    /// The seal did not open.
    OpenFailed,
    /// A reply nobody is waiting for, or from a principal that may not answer it.
    UnexpectedReply,
    /// The broker-validated publisher (AMQP `user-id`) does not belong to the principal.
    BrokerUserMismatch,
    /// The shared replay store did not answer within its bounded wait (unreachable, timed
    /// out, failed): the message is refused rather than admitted unchecked.
    ReplayStoreUnavailable,
    /// Stamped before this node's in-process replay store started: it cannot be told from
    /// a replay of what a previous incarnation admitted (see `RestartRule`).
    StampedBeforeStart,
}

impl RejectReason {
    /// Every reason, for counters and reports.
    pub const ALL: [RejectReason; 22] = [
        RejectReason::Oversized,
        RejectReason::Malformed,
        RejectReason::UnsupportedEnvelope,
        RejectReason::BadSignature,
        RejectReason::UnknownKey,
        RejectReason::RevokedKey,
        RejectReason::StaleKey,
        RejectReason::SignerMismatch,
        RejectReason::SourceMismatch,
        RejectReason::WrongDirection,
        RejectReason::Misdirected,
        RejectReason::Unauthenticated,
        RejectReason::Unsealed,
        RejectReason::ClockSkew,
        RejectReason::Replay,
        RejectReason::Expired,
        RejectReason::ReplayGuardFull,
        RejectReason::OpenFailed,
        RejectReason::UnexpectedReply,
        RejectReason::BrokerUserMismatch,
        RejectReason::ReplayStoreUnavailable,
        RejectReason::StampedBeforeStart,
    ];

    /// The coarse code sent back to the peer.
    pub fn wire_code(self) -> ErrorCode {
        match self {
            RejectReason::Oversized
            | RejectReason::Malformed
            | RejectReason::UnsupportedEnvelope => ErrorCode::BadRequest,
            RejectReason::RevokedKey => ErrorCode::Revoked,
            RejectReason::Replay
            | RejectReason::ReplayGuardFull
            | RejectReason::ReplayStoreUnavailable
            | RejectReason::StampedBeforeStart => ErrorCode::Replay,
            RejectReason::Expired | RejectReason::ClockSkew => ErrorCode::Expired,
            _ => ErrorCode::Unauthenticated,
        }
    }

    /// A stable snake_case name for logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::Malformed => "malformed",
            RejectReason::UnsupportedEnvelope => "unsupported_envelope",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::RevokedKey => "revoked_key",
            RejectReason::StaleKey => "stale_key",
            RejectReason::SignerMismatch => "signer_mismatch",
            RejectReason::SourceMismatch => "source_mismatch",
            RejectReason::WrongDirection => "wrong_direction",
            RejectReason::Misdirected => "misdirected",
            RejectReason::Unauthenticated => "unauthenticated",
            RejectReason::Unsealed => "unsealed",
            RejectReason::ClockSkew => "clock_skew",
            RejectReason::Replay => "replay",
            RejectReason::Expired => "expired",
            RejectReason::ReplayGuardFull => "replay_guard_full",
            RejectReason::OpenFailed => "open_failed",
            RejectReason::UnexpectedReply => "unexpected_reply",
            RejectReason::BrokerUserMismatch => "broker_user_mismatch",
            RejectReason::ReplayStoreUnavailable => "replay_store_unavailable",
            RejectReason::StampedBeforeStart => "stamped_before_start",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
