//! The receive pipeline. Its order decides which error is reported and keeps rejection
//! cheap: size -> envelope -> `v` -> signatures -> header -> direction/principal/`dst` ->
//! policy -> replay/expiry -> open -> body.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Security;
use super::applied::AppliedPolicy;
use super::evidence;
use super::hooks::KeyError;
use super::open::{ReceivedBytes, span_in};
use super::policy::{Auth, Mode};
use super::reject::RejectReason;
use crate::principal::Principal;
use crate::wire::{
    Body, CodecError, EnvelopeRef, Header, KeyId, Kind, NotificationBody, ReplyBody, RequestBody,
};

/// A message that passed every check.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The header, as decoded from the exact bytes received.
    pub header: Header,
    /// The decoded body.
    pub body: AdmittedBody,
    /// The authenticated principal: the signer, or what a pairwise seal proves
    /// (`guest:<id>` for k3, `control` for k1/k2). `None` when nothing was proven.
    pub principal: Option<Principal>,
    /// A known signature verified.
    pub signed: bool,
    /// The body was sealed (and opened).
    pub sealed: bool,
    /// The policy the message was judged by: the class of `principal`, or the strictest
    /// class when `principal` is `None` (docs/wire-format.md §7.1).
    pub applied: AppliedPolicy,
}

/// The body of an admitted message, decoded from the plaintext: a request (call, cast or
/// fanout), a reply, or a notification.
pub type AdmittedBody = Body;

/// A message that did not pass, with the header when it could be decoded (so that a call
/// can get a coarse error reply).
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Why.
    pub reason: RejectReason,
    /// The header, when it decoded; never trusted beyond addressing an error reply.
    pub header: Option<Box<Header>>,
}

fn codec_reason(e: &CodecError) -> RejectReason {
    match e {
        CodecError::TooLarge { .. } => RejectReason::Oversized,
        CodecError::UnsupportedEnvelope(_) => RejectReason::UnsupportedEnvelope,
        _ => RejectReason::Malformed,
    }
}

pub(super) fn key_reason(e: KeyError) -> RejectReason {
    match e {
        KeyError::Revoked => RejectReason::RevokedKey,
        KeyError::Stale => RejectReason::StaleKey,
        KeyError::BadSignature => RejectReason::BadSignature,
        KeyError::OpenFailed => RejectReason::OpenFailed,
        _ => RejectReason::UnknownKey,
    }
}

/// What the checks before the replay step established (the message is authenticated as
/// far as it can be before opening; the time window and the deadline hold).
pub(super) struct Checked {
    /// Where the envelope's `h` lies in the bytes received.
    pub(super) header_at: Range<usize>,
    /// Where the envelope's `b` lies in the bytes received.
    pub(super) body_at: Range<usize>,
    pub(super) header: Header,
    signer: Option<Principal>,
    pub(super) seal_key: Option<KeyId>,
    sealed_as: Option<Principal>,
    applied: AppliedPolicy,
    pairwise_ok: bool,
    now_ms: u64,
}

impl Checked {
    pub(super) fn fail(&self, reason: RejectReason) -> Rejection {
        Rejection {
            reason,
            header: Some(Box::new(self.header.clone())),
        }
    }

    /// The principal to record before opening: the signer.
    fn record_before_open(&self) -> Option<&Principal> {
        (self.applied.mode != Mode::Off)
            .then_some(self.signer.as_ref())
            .flatten()
    }

    /// The principal to record once the seal opened: what a pairwise seal proves, when
    /// nothing was signed (a pairwise seal authenticates only once it has opened).
    fn record_after_open(&self) -> Option<&Principal> {
        (self.applied.mode != Mode::Off && self.signer.is_none())
            .then_some(self.sealed_as.as_ref())
            .flatten()
    }
}

fn millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

impl Security {
    /// Runs the receive pipeline on `bytes` now. `served` says whether a `dst` is an address
    /// this node serves. With a shared replay store registered this refuses every
    /// authenticated message (`ReplayStoreUnavailable`): use [`admit_async`](Self::admit_async).
    ///
    /// Pass the bytes by value when nothing else holds them: a sealed body is then opened
    /// where it lies ([`ReceivedBytes`]).
    pub fn admit(
        &self,
        bytes: impl ReceivedBytes,
        served: &dyn Fn(&str) -> bool,
    ) -> Result<Admitted, Rejection> {
        self.admit_at(bytes, served, SystemTime::now())
    }

    /// Runs the receive pipeline with the clock at `now` (tests and vectors).
    pub fn admit_at(
        &self,
        bytes: impl ReceivedBytes,
        served: &dyn Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<Admitted, Rejection> {
        let result = self.run(bytes.into_received(), served, now);
        self.conclude(result)
    }

    /// Runs the receive pipeline on `bytes` now, awaiting the replay store (the shared one
    /// if registered, within its bounded wait; else this process's memory, at once).
    pub async fn admit_async(
        &self,
        bytes: impl ReceivedBytes,
        served: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Admitted, Rejection> {
        self.admit_async_at(bytes, served, SystemTime::now()).await
    }

    /// [`admit_async`](Self::admit_async) with the clock at `now`.
    pub async fn admit_async_at(
        &self,
        bytes: impl ReceivedBytes,
        served: &(dyn Fn(&str) -> bool + Sync),
        now: SystemTime,
    ) -> Result<Admitted, Rejection> {
        let bytes = bytes.into_received();
        let result = async {
            let checked = self.check(&bytes, served, now)?;
            if let Some(p) = checked.record_before_open() {
                self.record_async(p, &checked.header, checked.now_ms)
                    .await
                    .map_err(|r| checked.fail(r))?;
            }
            let plain = self.open(&checked, bytes)?;
            if let Some(p) = checked.record_after_open() {
                self.record_async(p, &checked.header, checked.now_ms)
                    .await
                    .map_err(|r| checked.fail(r))?;
            }
            self.finish(checked, plain)
        }
        .await;
        self.conclude(result)
    }

    /// Counts and (rate-limited) logs the outcome.
    fn conclude(&self, result: Result<Admitted, Rejection>) -> Result<Admitted, Rejection> {
        match &result {
            Ok(a) => self.counters.accept(a.principal.is_some(), a.sealed),
            Err(r) => {
                self.counters.reject(r.reason);
                if self.log_limit.allow() {
                    tracing::warn!(
                        reason = %r.reason,
                        id = ?r.header.as_ref().map(|h| h.id),
                        "rejected a received message"
                    );
                }
            }
        }
        result
    }

    fn run(
        &self,
        bytes: Bytes,
        served: &dyn Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<Admitted, Rejection> {
        let checked = self.check(&bytes, served, now)?;
        if let Some(p) = checked.record_before_open() {
            self.record_now(p, &checked.header, checked.now_ms)
                .map_err(|r| checked.fail(r))?;
        }
        let plain = self.open(&checked, bytes)?;
        if let Some(p) = checked.record_after_open() {
            self.record_now(p, &checked.header, checked.now_ms)
                .map_err(|r| checked.fail(r))?;
        }
        self.finish(checked, plain)
    }

    /// size -> envelope -> v -> signatures -> header -> direction/principal/dst -> policy
    /// -> time (the replay step that records comes next).
    fn check(
        &self,
        bytes: &Bytes,
        served: &dyn Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<Checked, Rejection> {
        let reject = |reason: RejectReason| Rejection {
            reason,
            header: None,
        };
        let now_ms = millis(now);
        // size -> envelope -> v
        let env = EnvelopeRef::decode(bytes, &self.config.limits)
            .map_err(|e| reject(codec_reason(&e)))?;
        // Where `h` and `b` lie, for the open step (which may take the buffer over).
        let (Some(header_at), Some(body_at)) =
            (span_in(bytes, env.header), span_in(bytes, env.body))
        else {
            return Err(reject(RejectReason::Malformed));
        };
        let me = &self.config.principal;
        let policy = self.policy();

        // signatures: verified unless this node is Off for every class it could assign (a
        // header's claims cannot be trusted to pick the class yet, so they decide nothing).
        let signer = if policy.verifies_signatures(me, now) {
            // The header is not authenticated here, but a call whose signature is refused
            // (e.g. by a key that is not pinned) still gets the coarse, rate-limited error
            // reply to its own reply address, rather than leaving an honest but
            // misconfigured caller to time out.
            self.verify_signatures(&env).map_err(|reason| Rejection {
                reason,
                header: Header::decode(env.header).ok().map(Box::new),
            })?
        } else {
            None
        };

        // header
        let header = Header::decode(env.header).map_err(|e| reject(codec_reason(&e)))?;
        let fail = |reason: RejectReason| Rejection {
            reason,
            header: Some(Box::new(header.clone())),
        };

        // direction / principal / dst
        let seal_key = match &header.seal {
            None => None,
            Some(seal) => {
                let key = KeyId::parse(&seal.key_id).map_err(|_| fail(RejectReason::Malformed))?;
                if !evidence::may_open(me, &key, header.kind) {
                    return Err(fail(RejectReason::WrongDirection));
                }
                if let Some(keys) = &self.config.keys {
                    keys.check_key(&key).map_err(|e| fail(key_reason(e)))?;
                }
                Some(key)
            }
        };
        let sealed_as = seal_key.as_ref().and_then(evidence::seal_proves);
        evidence::check_agreement(me, &header, signer.as_ref(), seal_key.as_ref()).map_err(fail)?;
        if !served(&header.dst) {
            return Err(fail(RejectReason::Misdirected));
        }

        // policy: the class of what is proven (the signer, else what a pairwise seal will
        // prove once it opens), or the strictest class when nothing is.
        let applied = policy.applied(me, signer.as_ref().or(sealed_as.as_ref()), header.kind, now);
        let mode = applied.mode;
        let pairwise_ok = applied.auth == Auth::SignatureOrPairwise && sealed_as.is_some();
        let control_signed = signer.as_ref().is_some_and(|p| p.is_control_plane());
        if mode != Mode::Off && header.kind == Kind::Fanout && !control_signed {
            // kb is held by every guest: only a control-plane signature authenticates a fanout.
            return Err(fail(RejectReason::Unauthenticated));
        }
        if mode == Mode::Enforce {
            if signer.is_none() && !pairwise_ok {
                return Err(fail(RejectReason::Unauthenticated));
            }
            if applied.require_sealed && seal_key.is_none() {
                return Err(fail(RejectReason::Unsealed));
            }
        }

        // time: the window and the deadline
        if mode == Mode::Off {
            if header
                .ttl
                .is_some_and(|ttl| now_ms > header.ts.saturating_add(ttl))
            {
                return Err(fail(RejectReason::Expired));
            }
        } else {
            self.guard
                .check_time(header.ts, header.ttl, now_ms)
                .map_err(fail)?;
        }
        Ok(Checked {
            header_at,
            body_at,
            header,
            signer,
            seal_key,
            sealed_as,
            applied,
            pairwise_ok,
            now_ms,
        })
    }

    /// body: decode it, and note what Permissive let through.
    fn finish(&self, c: Checked, plain: Bytes) -> Result<Admitted, Rejection> {
        let mode = c.applied.mode;
        let body = match c.header.kind {
            Kind::Reply => ReplyBody::decode(&plain).map(AdmittedBody::Reply),
            Kind::Notify => NotificationBody::decode(&plain).map(AdmittedBody::Notification),
            _ => RequestBody::decode(&plain).map(AdmittedBody::Request),
        }
        .map_err(|e| c.fail(codec_reason(&e)))?;
        // A guest's notification names a publisher of its own (wire-format §4.3).
        if let AdmittedBody::Notification(n) = &body
            && let Some(p) = c.signer.as_ref().or(c.sealed_as.as_ref())
            && !crate::notify::publisher_fits(p, &n.publisher_id)
        {
            return Err(c.fail(RejectReason::SourceMismatch));
        }

        // Permissive lets this through: never silently (it is counted by `conclude` too).
        let unauthenticated = c.signer.is_none() && !c.pairwise_ok;
        let unsealed = c.applied.require_sealed && c.seal_key.is_none();
        if mode == Mode::Permissive && (unauthenticated || unsealed) {
            crate::observe::record_permissive(c.applied.class, unauthenticated, unsealed);
            tracing::info!(
                id = %c.header.id, src = %c.header.src, signed = c.signer.is_some(), sealed = c.seal_key.is_some(),
                "Permissive: accepting a message that Enforce would refuse"
            );
        }

        Ok(Admitted {
            principal: c.signer.clone().or(c.sealed_as),
            applied: c.applied,
            signed: c.signer.is_some(),
            sealed: c.seal_key.is_some(),
            body,
            header: c.header,
        })
    }
}
