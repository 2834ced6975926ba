//! The security modes the benchmarks compare, and the keys and policies that make them.
//!
//! Every mode runs the same call: a control-plane client (`control:api`) calling a guest
//! agent (`guest:<id>`), requests sealed under k2(g), replies under k3(g) — the channel
//! where pairwise authentication applies. The client's `guests` class and the server's
//! `control_plane` class carry the mode; nothing else changes between modes.

use std::sync::Arc;

use sealrpc_core::Principal;
use sealrpc_core::security::Security;
use sealrpc_core::security::{Auth, ClassPolicy, Mode, Policy, ReplayConfig};
use sealrpc_signers::{ControlPlaneKeys, GuestKeys, MasterSecret, RotationTable};

use crate::BoxError;

/// One security mode of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecMode {
    /// Policy `Off` both ways: neither signed nor sealed.
    Plain,
    /// Requests signed, replies plain; nothing sealed (the client accepts unauthenticated
    /// replies, `Permissive`).
    SignedReq,
    /// Signed both ways, not sealed.
    Signed,
    /// Sealed both ways, authenticated by the pairwise seal alone (no signature).
    Sealed,
    /// Requests signed and sealed, replies sealed (authenticated by the pairwise k3 seal).
    SignedReqSealed,
    /// Signed and sealed both ways: the default policy.
    SignedSealed,
}

impl SecMode {
    /// Every mode, in report order.
    pub const ALL: [SecMode; 6] = [
        SecMode::Plain,
        SecMode::SignedReq,
        SecMode::Signed,
        SecMode::Sealed,
        SecMode::SignedReqSealed,
        SecMode::SignedSealed,
    ];

    /// The short name used in tables, JSON and bench ids.
    pub fn name(self) -> &'static str {
        match self {
            SecMode::Plain => "plain",
            SecMode::SignedReq => "signed-req",
            SecMode::Signed => "signed",
            SecMode::Sealed => "sealed",
            SecMode::SignedReqSealed => "signed-req+sealed",
            SecMode::SignedSealed => "signed+sealed",
        }
    }

    /// Parses [`SecMode::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// What the mode protects, in a few words (for the report).
    pub fn describe(self) -> &'static str {
        match self {
            SecMode::Plain => "no protection",
            SecMode::SignedReq => "requests authenticated; nothing confidential",
            SecMode::Signed => "both ways authenticated (signatures); nothing confidential",
            SecMode::Sealed => "confidential + pairwise-authenticated (no signatures)",
            SecMode::SignedReqSealed => {
                "confidential; requests signed, replies pairwise-authenticated"
            }
            SecMode::SignedSealed => "confidential; both ways signed (default)",
        }
    }

    /// The client's (control plane's) policy for the `guests` class: what its requests
    /// carry and what it requires of replies.
    pub fn client_policy(self) -> ClassPolicy {
        let signed_only = ClassPolicy {
            seal: false,
            require_sealed: false,
            ..ClassPolicy::enforce()
        };
        match self {
            SecMode::Plain => ClassPolicy::off(),
            // Replies come back unsigned and unsealed: accept them (counted, logged at debug).
            SecMode::SignedReq => ClassPolicy {
                mode: Mode::Permissive,
                ..signed_only
            },
            SecMode::Signed => signed_only,
            SecMode::Sealed => ClassPolicy::pairwise(),
            SecMode::SignedReqSealed => ClassPolicy {
                auth: Auth::SignatureOrPairwise,
                ..ClassPolicy::enforce()
            },
            SecMode::SignedSealed => ClassPolicy::enforce(),
        }
    }

    /// The server's (guest's) policy for the `control_plane` class: what it requires of
    /// requests and what its replies carry.
    pub fn server_policy(self) -> ClassPolicy {
        match self {
            SecMode::Plain => ClassPolicy::off(),
            SecMode::SignedReq => ClassPolicy {
                sign: false,
                seal: false,
                require_sealed: false,
                ..ClassPolicy::enforce()
            },
            SecMode::Signed => ClassPolicy {
                seal: false,
                require_sealed: false,
                ..ClassPolicy::enforce()
            },
            SecMode::Sealed => ClassPolicy::pairwise(),
            SecMode::SignedReqSealed => ClassPolicy {
                sign: false,
                ..ClassPolicy::enforce()
            },
            SecMode::SignedSealed => ClassPolicy::enforce(),
        }
    }
}

/// The replay guard used by the benchmarks: the default window, with room for every call a
/// long run makes inside it (the default capacity, and the default per-guest share that the
/// client's guard applies to the guest's replies, would fail closed under a bench's flood).
pub fn bench_replay() -> ReplayConfig {
    ReplayConfig {
        skew_ms: 60_000,
        capacity: 2_000_000,
        per_guest: 2_000_000,
        ..ReplayConfig::default()
    }
}

/// The key material of one bench topology: a master secret, the control-plane service
/// `control:api` (the client) and guest `guest:<id>` (the server) with its bundle.
#[derive(Clone)]
pub struct BenchKeys {
    control: ControlPlaneKeys,
    guest: GuestKeys,
    guest_id: String,
}

impl std::fmt::Debug for BenchKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchKeys")
            .field("guest_id", &self.guest_id)
            .finish_non_exhaustive()
    }
}

/// A client and server security runtime for one mode.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The mode.
    pub mode: SecMode,
    /// The control-plane client's runtime.
    pub client: Arc<Security>,
    /// The guest server's runtime.
    pub server: Arc<Security>,
}

impl BenchKeys {
    /// Fresh keys: a random master, `control:api`, and guest `guest_id`.
    pub fn new(guest_id: &str) -> Result<Self, BoxError> {
        let master = Arc::new(MasterSecret::generate()?);
        let table = Arc::new(RotationTable::new());
        let control = ControlPlaneKeys::new(master, table, "api")?;
        let bundle = control.issue_guest_bundle(guest_id)?;
        let guest = GuestKeys::from_bundle(&bundle)?;
        Ok(Self {
            control,
            guest,
            guest_id: guest_id.to_owned(),
        })
    }

    /// The guest's instance id.
    pub fn guest_id(&self) -> &str {
        &self.guest_id
    }

    /// The guest's principal.
    pub fn guest_principal(&self) -> Principal {
        self.guest.principal().clone()
    }

    /// Fresh client and server runtimes (own replay guards and counters) for `mode`.
    pub fn pair(&self, mode: SecMode) -> Pair {
        let client = self
            .control
            .security()
            .policy(Policy::uniform(mode.client_policy()))
            .replay(bench_replay())
            .build();
        let server = self
            .guest
            .security()
            .policy(Policy::uniform(mode.server_policy()))
            .replay(bench_replay())
            .build();
        Pair {
            mode,
            client,
            server,
        }
    }
}
