//! Key ids: `<role>/<principal>/<epoch>`, which are also the HKDF labels of the keys.

use std::fmt;

use super::error::CodecError;
use crate::principal::Principal;

/// What a key is for; the first part of a key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// `k1`: control-plane traffic key.
    K1,
    /// `k2`: control plane -> guest key.
    K2,
    /// `k3`: guest -> control plane key.
    K3,
    /// `kb`: the guests' broadcast (fanout) key.
    Kb,
    /// `sig`: an ed25519 signing seed (its public key is what peers pin).
    Sig,
}

impl Role {
    /// The role's wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::K1 => "k1",
            Role::K2 => "k2",
            Role::K3 => "k3",
            Role::Kb => "kb",
            Role::Sig => "sig",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "k1" => Role::K1,
            "k2" => Role::K2,
            "k3" => Role::K3,
            "kb" => Role::Kb,
            "sig" => Role::Sig,
            _ => return None,
        })
    }
}

/// A parsed key id, e.g. `k3/guest:7f3a/4` or `sig/control:conductor/1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId {
    role: Role,
    principal: Principal,
    epoch: u64,
    text: String,
}

impl KeyId {
    /// Builds a key id from its parts.
    pub fn new(role: Role, principal: Principal, epoch: u64) -> Self {
        let text = format!("{}/{}/{}", role.as_str(), principal, epoch);
        Self {
            role,
            principal,
            epoch,
            text,
        }
    }

    /// Parses `<role>/<principal>/<epoch>` exactly: a known role, a principal without `/`,
    /// and a decimal epoch without leading zeros.
    pub fn parse(s: &str) -> Result<Self, CodecError> {
        let bad = || CodecError::Malformed("key id");
        let mut parts = s.split('/');
        let (Some(role), Some(principal), Some(epoch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let role = Role::parse(role).ok_or_else(bad)?;
        let principal = Principal::parse(principal).ok_or_else(bad)?;
        let canonical = !epoch.is_empty()
            && epoch.bytes().all(|c| c.is_ascii_digit())
            && (epoch == "0" || !epoch.starts_with('0'));
        if !canonical {
            return Err(bad());
        }
        let epoch = epoch.parse::<u64>().map_err(|_| bad())?;
        Ok(Self {
            role,
            principal,
            epoch,
            text: s.to_owned(),
        })
    }

    /// The key's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The principal the key belongs to.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The key's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The key id as written on the wire (and used as the HKDF `info`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
