//! The control plane's key source: any key derived on demand from the master secret, with
//! a small cache. Used by the control plane's sealer, opener, verifier and signer.

use std::fmt;
use std::sync::Arc;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sealrpc_core::Principal;
use sealrpc_core::security::KeyError;
use sealrpc_core::wire::{KeyId, Role};

use crate::cache::KeyCache;
use crate::derive::derive_key;
use crate::ed25519::PublicKeys;
use crate::secret::{MasterSecret, SecretKey};
use crate::xchacha::AeadKeys;

/// Keys derived from the master secret on demand (and cached).
///
/// Enforces the direction rules for AEAD keys: the control plane seals with k1, k2 and kb
/// and opens k1 and k3 — never the reverse, so nothing can be reflected. It does not check
/// epochs or revocation: that is the rotation table's job, which rpc-core consults (through
/// [`sealrpc_core::security::KeyResolver::check_key`]) before any key is used.
pub struct DerivedKeys {
    master: Arc<MasterSecret>,
    secrets: KeyCache<SecretKey>,
    publics: KeyCache<VerifyingKey>,
}

impl DerivedKeys {
    /// A key source over `master`.
    pub fn new(master: Arc<MasterSecret>) -> Self {
        Self {
            master,
            secrets: KeyCache::default(),
            publics: KeyCache::default(),
        }
    }

    /// The secret key (AEAD key or ed25519 seed) named by `key_id`, cached.
    pub fn secret(&self, key_id: &KeyId) -> Arc<SecretKey> {
        let derived: Result<_, std::convert::Infallible> = self
            .secrets
            .get_or_try_insert(key_id, || Ok(derive_key(&self.master, key_id)));
        match derived {
            Ok(k) => k,
            Err(never) => match never {},
        }
    }

    /// The ed25519 signing key for a `sig/...` key id (not cached: the caller keeps it).
    pub fn signing_key(&self, key_id: &KeyId) -> Result<SigningKey, KeyError> {
        if !is_signing_principal(key_id) {
            return Err(KeyError::UnknownKey);
        }
        let seed = derive_key(&self.master, key_id);
        Ok(SigningKey::from_bytes(seed.as_bytes()))
    }

    pub(crate) fn master(&self) -> &MasterSecret {
        &self.master
    }

    /// Drops every cached key (they are derived again when needed).
    pub fn clear_cache(&self) {
        self.secrets.clear();
        self.publics.clear();
    }
}

/// A `sig` key id of a control-plane service or of a guest (the only signing principals).
fn is_signing_principal(key_id: &KeyId) -> bool {
    let p = key_id.principal();
    key_id.role() == Role::Sig
        && (p.guest_id().is_some() || (p.is_control_plane() && *p != Principal::control()))
}

impl PublicKeys for DerivedKeys {
    fn public_key(&self, key_id: &KeyId) -> Result<Arc<VerifyingKey>, KeyError> {
        self.publics
            .get_or_try_insert(key_id, || Ok(self.signing_key(key_id)?.verifying_key()))
    }
}

impl AeadKeys for DerivedKeys {
    fn sealing_key(&self, key_id: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
        let owner = key_id.principal();
        let ok = match key_id.role() {
            Role::K1 => *owner == Principal::control(),
            Role::K2 => owner.guest_id().is_some(),
            Role::Kb => *owner == Principal::guests(),
            _ => false,
        };
        if !ok {
            return Err(KeyError::UnknownKey);
        }
        Ok(self.secret(key_id))
    }

    fn opening_key(&self, key_id: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
        let owner = key_id.principal();
        let ok = match key_id.role() {
            Role::K1 => *owner == Principal::control(),
            Role::K3 => owner.guest_id().is_some(),
            _ => false,
        };
        if !ok {
            return Err(KeyError::UnknownKey);
        }
        Ok(self.secret(key_id))
    }
}

impl fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivedKeys")
            .field("master", &self.master)
            .field("cached_secrets", &self.secrets.len())
            .field("cached_public_keys", &self.publics.len())
            .finish()
    }
}
