//! [`Caller`] (who is calling, as proven) and [`Access`] (server-wide or per-method
//! defaults for who may call).

use crate::principal::Principal;

/// The caller of a request as the security pipeline saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    principal: Option<Principal>,
    claimed: String,
    signed: bool,
    sealed: bool,
}

impl Caller {
    /// A caller proven to be `principal` (or unauthenticated, for `None`).
    pub fn new(principal: Option<Principal>) -> Self {
        let claimed = principal
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        Self {
            principal,
            claimed,
            signed: false,
            sealed: false,
        }
    }

    pub(crate) fn admitted(
        principal: Option<Principal>,
        claimed: String,
        signed: bool,
        sealed: bool,
    ) -> Self {
        Self {
            principal,
            claimed,
            signed,
            sealed,
        }
    }

    /// The authenticated principal; `None` when policy let an unauthenticated message in.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// True when the caller's identity was proven (by a signature or a pairwise seal).
    pub fn is_authenticated(&self) -> bool {
        self.principal.is_some()
    }

    /// True when the caller is proven to be the control plane (or one of its services).
    pub fn is_control_plane(&self) -> bool {
        self.principal
            .as_ref()
            .is_some_and(Principal::is_control_plane)
    }

    /// True when the caller is proven to be guest `instance_id`.
    pub fn is_guest(&self, instance_id: &str) -> bool {
        self.guest_id() == Some(instance_id)
    }

    /// The proven guest instance id, if the caller is a guest.
    pub fn guest_id(&self) -> Option<&str> {
        self.principal.as_ref().and_then(Principal::guest_id)
    }

    /// The header's `src`: a claim, not proof (equal to the principal when authenticated).
    pub fn claimed_source(&self) -> &str {
        &self.claimed
    }

    /// A known signature verified.
    pub fn signed(&self) -> bool {
        self.signed
    }

    /// The request was sealed.
    pub fn sealed(&self) -> bool {
        self.sealed
    }
}

/// Who may call a method, before its own `authorize` checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Access {
    /// Whoever the security policy admitted, authenticated or not (the default: the policy
    /// mode already decides whether unauthenticated input is acceptable).
    #[default]
    AllowAny,
    /// Only authenticated callers.
    Authenticated,
    /// Only the control plane.
    ControlPlane,
}

impl Access {
    /// True when `caller` passes.
    pub fn allows(self, caller: &Caller) -> bool {
        match self {
            Access::AllowAny => true,
            Access::Authenticated => caller.is_authenticated(),
            Access::ControlPlane => caller.is_control_plane(),
        }
    }
}
