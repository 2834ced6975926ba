//! Which policy judges a received message: the class of what is **proven**, never of what
//! the header claims (docs/wire-format.md §7.1).
//!
//! `src` and `kind` are unauthenticated until a signature verifies or a seal opens, so a
//! sender that could choose the class by its claim would always choose the loosest one.
//! Before proof, the strictest class the message could belong to applies; after proof, the
//! class of the proven principal; a message that proves nothing stays under the strictest.

use std::time::SystemTime;

use super::policy::{Auth, ClassPolicy, Mode, PeerClass, Policy};
use crate::principal::Principal;
use crate::wire::Kind;

/// The policy a received message was judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedPolicy {
    /// The class of the proven principal; `None` when nothing was proven, and then the
    /// strictest of the classes the receiver could assign applied (componentwise).
    pub class: Option<PeerClass>,
    /// The mode in force (Permissive past its end time is Enforce).
    pub mode: Mode,
    /// What Enforce required.
    pub auth: Auth,
    /// Whether Enforce required a seal.
    pub require_sealed: bool,
}

impl AppliedPolicy {
    fn of_class(class: PeerClass, policy: &ClassPolicy, now: SystemTime) -> Self {
        Self {
            class: Some(class),
            mode: policy.effective_mode(now),
            auth: policy.auth,
            require_sealed: policy.require_sealed,
        }
    }
}

impl Policy {
    /// The strictest policy over every class `me` could assign a message to, taken
    /// componentwise: the strictest mode, the strictest authentication, and a seal if any
    /// class requires one. It applies to a message before anything about it is proven, and
    /// to a message that proves nothing.
    pub fn strictest(&self, me: &Principal, now: SystemTime) -> AppliedPolicy {
        let mut out = AppliedPolicy {
            class: None,
            mode: Mode::Off,
            auth: Auth::SignatureOrPairwise,
            require_sealed: false,
        };
        for class in PeerClass::candidates(me) {
            let p = self.class(*class);
            out.mode = out.mode.max(p.effective_mode(now));
            out.auth = out.auth.max(p.auth);
            out.require_sealed |= p.require_sealed;
        }
        out
    }

    /// True unless `me` is Off for every class it could assign: only then are signatures
    /// left unverified (a present signature of a known algorithm is otherwise always
    /// verified, and a bad one rejects the message).
    pub fn verifies_signatures(&self, me: &Principal, now: SystemTime) -> bool {
        self.strictest(me, now).mode != Mode::Off
    }

    /// The policy that judges a message received by `me`: the class of the `proven`
    /// principal (the signer, or what a pairwise seal proves), or, when nothing is proven,
    /// [`Policy::strictest`]. `kind` counts only once something is proven (it is covered by
    /// the signature and the seal).
    pub fn applied(
        &self,
        me: &Principal,
        proven: Option<&Principal>,
        kind: Kind,
        now: SystemTime,
    ) -> AppliedPolicy {
        match proven {
            Some(p) => {
                let class = PeerClass::of_proven(p, kind);
                AppliedPolicy::of_class(class, self.class(class), now)
            }
            None => self.strictest(me, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(cp: Mode, guests: Mode, fanout: Mode) -> Policy {
        let with = |mode| ClassPolicy {
            mode,
            ..ClassPolicy::enforce()
        };
        Policy {
            control_plane: with(cp),
            guests: with(guests),
            fanout: with(fanout),
        }
    }

    #[test]
    fn a_claim_never_loosens_the_policy() {
        let me = Principal::service("conductor").unwrap_or_else(Principal::control);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let p = policy(Mode::Permissive, Mode::Enforce, Mode::Enforce);
        assert_eq!(p.applied(&me, None, Kind::Cast, now).mode, Mode::Enforce);
        let tm = Principal::service("taskmanager").unwrap_or_else(Principal::control);
        let proven = p.applied(&me, Some(&tm), Kind::Cast, now);
        assert_eq!(proven.class, Some(PeerClass::ControlPlane));
        assert_eq!(proven.mode, Mode::Permissive);
    }

    #[test]
    fn a_guest_never_assigns_the_guests_class() {
        let me = Principal::guest("g").unwrap_or_else(Principal::guests);
        let now = SystemTime::UNIX_EPOCH;
        let p = policy(Mode::Off, Mode::Enforce, Mode::Off);
        assert!(!p.verifies_signatures(&me, now));
        let control = Principal::control();
        assert!(p.verifies_signatures(&control, now));
    }

    #[test]
    fn permissive_past_its_end_counts_as_enforce() {
        let me = Principal::control();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let mut p = Policy::uniform(ClassPolicy::permissive());
        p.guests.permissive_until = Some(SystemTime::UNIX_EPOCH);
        assert_eq!(p.strictest(&me, now).mode, Mode::Enforce);
        let g = Principal::guest("g").unwrap_or_else(Principal::guests);
        assert_eq!(
            p.applied(&me, Some(&g), Kind::Call, now).mode,
            Mode::Enforce
        );
        assert_eq!(
            p.applied(&me, Some(&me), Kind::Call, now).mode,
            Mode::Permissive
        );
    }
}
