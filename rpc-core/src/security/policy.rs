//! Policy per peer class: what is sent, what is required of what is received, and the
//! mode that lets a fleet switch signing on without a flag day.

use std::time::SystemTime;

use crate::principal::Principal;
use crate::wire::Kind;

/// How strictly a peer class is treated. Ordered from the loosest to the strictest, so that
/// `max` is "the stricter of two".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Neither sign nor check (sealed input is still opened when a key is held: it cannot be
    /// read otherwise).
    Off,
    /// Sign and seal everything sent; accept unsigned or unsealed input, counted and logged.
    /// A signature that is present but bad is always rejected.
    Permissive,
    /// Reject anything lacking the required authentication or seal.
    Enforce,
}

/// What authenticates a message under [`Mode::Enforce`]. Ordered from the loosest to the
/// strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Auth {
    /// A signature, or a pairwise seal (k1/k2/k3) that opens: only the two ends hold the key.
    SignatureOrPairwise,
    /// A signature by a pinned key.
    Signature,
}

/// Peer classes, each with its own policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerClass {
    /// Control-plane services talking to each other.
    ControlPlane,
    /// Guests (calls, casts and replies from or to one guest).
    Guests,
    /// Fanout to all guests (or all servers of a topic).
    Fanout,
}

impl PeerClass {
    /// Every class.
    pub const ALL: [PeerClass; 3] = [
        PeerClass::ControlPlane,
        PeerClass::Guests,
        PeerClass::Fanout,
    ];

    /// The class of a message whose sender was **proven** to be `proven` (by a signature or
    /// a pairwise seal, which also make `kind` authentic): fanout by kind, else the class of
    /// the proven principal. Never call this with the header's claimed `src`: a claim
    /// decides nothing (see [`Policy::applied`]).
    pub fn of_proven(proven: &Principal, kind: Kind) -> Self {
        if kind == Kind::Fanout {
            PeerClass::Fanout
        } else if proven.is_control_plane() {
            PeerClass::ControlPlane
        } else {
            PeerClass::Guests
        }
    }

    /// The classes a receiver `me` could assign a message to, whatever it claims: those of
    /// every principal it could prove. A guest proves only the control plane (it pins no
    /// other signer, and opens only seals the control plane made), so it never assigns
    /// [`PeerClass::Guests`]; any other node may assign all three.
    pub fn candidates(me: &Principal) -> &'static [PeerClass] {
        if me.guest_id().is_some() {
            &[PeerClass::ControlPlane, PeerClass::Fanout]
        } else {
            &PeerClass::ALL
        }
    }
}

/// The policy for one peer class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPolicy {
    /// Off, Permissive or Enforce.
    pub mode: Mode,
    /// What Enforce requires.
    pub auth: Auth,
    /// Whether Enforce refuses unsealed input.
    pub require_sealed: bool,
    /// Sign what is sent (unless Off). Fanout is always signed.
    pub sign: bool,
    /// Seal what is sent, when a key for the peer is held (unless Off).
    pub seal: bool,
    /// When set, Permissive turns into Enforce at this instant: a migration with an end.
    pub permissive_until: Option<SystemTime>,
}

impl ClassPolicy {
    /// Signed and sealed both ways, enforced: the default.
    pub const fn enforce() -> Self {
        Self {
            mode: Mode::Enforce,
            auth: Auth::Signature,
            require_sealed: true,
            sign: true,
            seal: true,
            permissive_until: None,
        }
    }

    /// Signs and seals, accepts unauthenticated input (counted and logged).
    pub const fn permissive() -> Self {
        Self {
            mode: Mode::Permissive,
            ..Self::enforce()
        }
    }

    /// No security at all.
    pub const fn off() -> Self {
        Self {
            mode: Mode::Off,
            sign: false,
            seal: false,
            ..Self::enforce()
        }
    }

    /// Pairwise: sealed, authenticated by the pairwise seal alone, unsigned.
    pub const fn pairwise() -> Self {
        Self {
            auth: Auth::SignatureOrPairwise,
            sign: false,
            ..Self::enforce()
        }
    }

    /// The mode in force at `now` (Permissive past its end time is Enforce).
    pub fn effective_mode(&self, now: SystemTime) -> Mode {
        match (self.mode, self.permissive_until) {
            (Mode::Permissive, Some(until)) if now >= until => Mode::Enforce,
            (mode, _) => mode,
        }
    }
}

impl Default for ClassPolicy {
    fn default() -> Self {
        Self::enforce()
    }
}

/// Policy for every peer class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Control plane <-> control plane.
    pub control_plane: ClassPolicy,
    /// Control plane <-> guests.
    pub guests: ClassPolicy,
    /// Fanout.
    pub fanout: ClassPolicy,
}

impl Policy {
    /// The same class policy for every class.
    pub const fn uniform(p: ClassPolicy) -> Self {
        Self {
            control_plane: p,
            guests: p,
            fanout: p,
        }
    }

    /// The policy of one class.
    pub fn class(&self, class: PeerClass) -> &ClassPolicy {
        match class {
            PeerClass::ControlPlane => &self.control_plane,
            PeerClass::Guests => &self.guests,
            PeerClass::Fanout => &self.fanout,
        }
    }
}
