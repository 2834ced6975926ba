//! ed25519 signing and verification (`ed25519-sha256`: pure Ed25519 over the 47-byte
//! signature input rpc-core builds, verified with `verify_strict`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sealrpc_core::security::{KeyError, KeyResolver, Signer, Verifier};
use sealrpc_core::wire::{KeyId, Role};

use crate::error::Error;
use crate::secret::SecretKey;

/// The algorithm id written into signature items.
pub const ED25519_ALGORITHM: &str = "ed25519-sha256";

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// A signer holding one ed25519 key, named `sig/<principal>/<epoch>`.
pub struct Ed25519Signer {
    key_id: KeyId,
    key: SigningKey,
}

impl Ed25519Signer {
    /// A signer for `key_id` (which must be a `sig/...` id) from its 32-byte seed.
    pub fn new(key_id: KeyId, seed: &SecretKey) -> Result<Self, Error> {
        if key_id.role() != Role::Sig {
            return Err(Error::BadKey {
                key_id: key_id.to_string(),
                reason: "a signing key id must have the sig role",
            });
        }
        Ok(Self {
            key: SigningKey::from_bytes(seed.as_bytes()),
            key_id,
        })
    }

    pub(crate) fn from_signing_key(key_id: KeyId, key: SigningKey) -> Self {
        Self { key_id, key }
    }

    /// The public key peers pin.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("key_id", &self.key_id.as_str())
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl Signer for Ed25519Signer {
    fn key_id(&self) -> KeyId {
        self.key_id.clone()
    }

    fn algorithm(&self) -> &'static str {
        ED25519_ALGORITHM
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.key.sign(input).to_bytes().to_vec())
    }
}

/// Where the current signing key comes from, for a signer that follows key rotation.
pub trait SigningKeys: Send + Sync + fmt::Debug {
    /// The signer of the current epoch, if this node has a signing key.
    fn current_signer(&self) -> Option<Arc<Ed25519Signer>>;
}

/// A signer that always signs with the current epoch's key (the control plane's changes
/// when [`crate::RotationTable::rotate_control`] runs; a guest's when it installs a new
/// bundle).
///
/// rpc-core asks for the key id and the signature in two calls; a rotation landing exactly
/// between them makes that one message fail verification (it is never silently accepted).
#[derive(Debug, Clone)]
pub struct RotatingSigner {
    keys: Arc<dyn SigningKeys>,
    first: KeyId,
}

impl RotatingSigner {
    /// A signer following `keys`; `None` when `keys` has no signing key now.
    pub fn new(keys: Arc<dyn SigningKeys>) -> Option<Self> {
        let first = keys.current_signer()?.key_id();
        Some(Self { keys, first })
    }
}

impl Signer for RotatingSigner {
    fn key_id(&self) -> KeyId {
        self.keys
            .current_signer()
            .map_or_else(|| self.first.clone(), |s| s.key_id())
    }

    fn algorithm(&self) -> &'static str {
        ED25519_ALGORITHM
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.sign_with_id(input).map(|(_, sig)| sig)
    }

    fn sign_with_id(&self, input: &[u8]) -> Result<(KeyId, Vec<u8>), KeyError> {
        // One snapshot names the key and signs, so a rotation in between cannot mislabel.
        let signer = self.keys.current_signer().ok_or(KeyError::Unavailable)?;
        Ok((signer.key_id(), signer.sign(input)?))
    }
}

/// Looks up the ed25519 public key a `sig/...` key id names.
pub trait PublicKeys: Send + Sync + fmt::Debug {
    /// The public key, or [`KeyError::UnknownKey`] when this node does not know (or does
    /// not accept) that key.
    fn public_key(&self, key_id: &KeyId) -> Result<Arc<VerifyingKey>, KeyError>;
}

/// A fixed set of pinned public keys (a guest pins the control plane's).
#[derive(Default)]
pub struct PinnedPublicKeys {
    keys: RwLock<BTreeMap<KeyId, Arc<VerifyingKey>>>,
}

impl PinnedPublicKeys {
    /// No keys pinned.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pins the 32-byte public key `bytes` for the `sig/...` id `key_id`. Refuses keys that
    /// are not valid curve points or are of small order (weak keys).
    pub fn pin(&self, key_id: KeyId, bytes: &[u8]) -> Result<(), Error> {
        let bad = |reason| Error::BadKey {
            key_id: key_id.to_string(),
            reason,
        };
        if key_id.role() != Role::Sig {
            return Err(bad("a public key id must have the sig role"));
        }
        let bytes: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("an ed25519 public key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| bad("not an ed25519 public key"))?;
        if key.is_weak() {
            return Err(bad("weak (small-order) ed25519 public key"));
        }
        self.write().insert(key_id, Arc::new(key));
        Ok(())
    }

    /// Forgets a pinned key; true if it was pinned.
    pub fn unpin(&self, key_id: &KeyId) -> bool {
        self.write().remove(key_id).is_some()
    }

    /// Keeps only the keys for which `keep` is true.
    pub fn retain(&self, mut keep: impl FnMut(&KeyId) -> bool) {
        self.write().retain(|k, _| keep(k));
    }

    /// The pinned key ids and public keys.
    pub fn entries(&self) -> Vec<(KeyId, [u8; 32])> {
        let map = self.keys.read().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.to_bytes())).collect()
    }

    /// True when `key_id` is pinned.
    pub fn contains(&self, key_id: &KeyId) -> bool {
        let map = self.keys.read().unwrap_or_else(|p| p.into_inner());
        map.contains_key(key_id)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<KeyId, Arc<VerifyingKey>>> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl PublicKeys for PinnedPublicKeys {
    fn public_key(&self, key_id: &KeyId) -> Result<Arc<VerifyingKey>, KeyError> {
        let map = self.keys.read().unwrap_or_else(|p| p.into_inner());
        map.get(key_id).cloned().ok_or(KeyError::UnknownKey)
    }
}

impl fmt::Debug for PinnedPublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.keys.read().unwrap_or_else(|p| p.into_inner());
        f.debug_list()
            .entries(map.keys().map(KeyId::as_str))
            .finish()
    }
}

/// Verifies `ed25519-sha256` signature items.
///
/// Order: the key id must be a `sig` id accepted by the key resolver (not unknown, revoked
/// or stale), the signature exactly 64 bytes, then `verify_strict` with the key that
/// [`PublicKeys`] gives for that id.
#[derive(Debug, Clone)]
pub struct Ed25519Verifier {
    keys: Arc<dyn PublicKeys>,
    checker: Arc<dyn KeyResolver>,
}

impl Ed25519Verifier {
    /// A verifier taking public keys from `keys` and accepting only key ids that
    /// `checker.check_key` accepts (the rotation table, or a guest's bundle).
    pub fn new(keys: Arc<dyn PublicKeys>, checker: Arc<dyn KeyResolver>) -> Self {
        Self { keys, checker }
    }
}

impl Verifier for Ed25519Verifier {
    fn algorithm(&self) -> &'static str {
        ED25519_ALGORITHM
    }

    fn verify(&self, key_id: &KeyId, input: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        if key_id.role() != Role::Sig {
            return Err(KeyError::UnknownKey);
        }
        self.checker.check_key(key_id)?;
        let signature: &[u8; SIGNATURE_LEN] =
            signature.try_into().map_err(|_| KeyError::BadSignature)?;
        let key = self.keys.public_key(key_id)?;
        key.verify_strict(input, &Signature::from_bytes(signature))
            .map_err(|_| KeyError::BadSignature)
    }
}
