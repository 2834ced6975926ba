//! A guest's keys: only what its bundle holds. Implements rpc-core's [`KeyResolver`] and
//! builds the guest's [`SecurityConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use ed25519_dalek::VerifyingKey;
use sealrpc_core::Principal;
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::security::{KeyError, KeyResolver, Peer};
use sealrpc_core::wire::{KeyId, Role};

use crate::bundle::{GuestBundle, guest_may_hold_secret, guest_may_pin};
use crate::ed25519::{Ed25519Signer, PinnedPublicKeys, PublicKeys, SigningKeys};
use crate::error::Error;
use crate::rotation::DEFAULT_GRACE;
use crate::secret::SecretKey;
use crate::xchacha::AeadKeys;

#[derive(Default)]
struct State {
    secrets: BTreeMap<KeyId, Arc<SecretKey>>,
    /// Keys of a replaced bundle, accepted until the instant given.
    retiring: BTreeMap<KeyId, SystemTime>,
    signer: Option<Arc<Ed25519Signer>>,
    revoked: BTreeSet<String>,
    epoch: u64,
}

struct Inner {
    me: Principal,
    grace: Duration,
    pinned: PinnedPublicKeys,
    state: RwLock<State>,
}

/// A guest's key store: its k2, k3, kb, signing key and the control plane's pinned public
/// keys. Cheap to clone (shared state).
#[derive(Clone)]
pub struct GuestKeys {
    inner: Arc<Inner>,
}

impl GuestKeys {
    fn empty(me: Principal, grace: Duration) -> Result<Self, Error> {
        if me.guest_id().is_none() {
            return Err(Error::invalid("guest principal", me.as_str()));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                me,
                grace,
                pinned: PinnedPublicKeys::new(),
                state: RwLock::new(State::default()),
            }),
        })
    }

    /// The keys of the bundle a guest received at provisioning.
    pub fn from_bundle(bundle: &GuestBundle) -> Result<Self, Error> {
        let keys = Self::empty(bundle.principal().clone(), DEFAULT_GRACE)?;
        keys.install_bundle(bundle)?;
        Ok(keys)
    }

    /// A receiver built from a plain key map, as the conformance vectors give it: key id ->
    /// bytes, secret 32-byte keys for `k2`/`k3`/`kb`, ed25519 **public** keys for `sig`.
    ///
    /// Keeps only what a guest may use: its own k2 and k3, kb, and control-plane service
    /// public keys; anything else (another guest's keys or public key, k1, its own public
    /// key) is ignored, so messages under those keys are refused as unknown. `revoked`
    /// lists instance ids whose keys are refused as revoked. Such a receiver has no signing
    /// key: it verifies and opens, and sends unsigned.
    pub fn from_key_map(
        me: Principal,
        keys: BTreeMap<String, Vec<u8>>,
        revoked: impl IntoIterator<Item = String>,
    ) -> Result<Self, Error> {
        let guest = Self::empty(me, DEFAULT_GRACE)?;
        let me = guest.inner.me.clone();
        let mut state = guest.write();
        for (id, bytes) in keys {
            let key_id = KeyId::parse(&id).map_err(|_| Error::invalid("key id", &id))?;
            if key_id.role() == Role::Sig {
                if guest_may_pin(&key_id) {
                    guest.inner.pinned.pin(key_id, &bytes)?;
                } else {
                    tracing::debug!(key_id = %key_id, "ignoring a public key a guest does not pin");
                }
            } else if guest_may_hold_secret(&me, &key_id) {
                let secret = SecretKey::from_slice(&bytes).ok_or_else(|| Error::BadKey {
                    key_id: id.clone(),
                    reason: "a secret key is 32 bytes",
                })?;
                if key_id.role() != Role::Kb {
                    state.epoch = state.epoch.max(key_id.epoch());
                }
                state.secrets.insert(key_id, Arc::new(secret));
            } else {
                tracing::debug!(key_id = %key_id, "ignoring a key this guest may not hold");
            }
        }
        state.revoked.extend(revoked);
        drop(state);
        Ok(guest)
    }

    /// Installs a newer bundle (after a rotation). Keys of the old bundle that the new one
    /// does not carry stay accepted for the grace window, then are refused as stale.
    pub fn install_bundle(&self, bundle: &GuestBundle) -> Result<(), Error> {
        self.install_bundle_at(bundle, SystemTime::now())
    }

    /// [`Self::install_bundle`] with the clock at `now`.
    pub fn install_bundle_at(&self, bundle: &GuestBundle, now: SystemTime) -> Result<(), Error> {
        if bundle.principal() != &self.inner.me {
            return Err(Error::invalid(
                "bundle for this guest",
                bundle.principal().as_str(),
            ));
        }
        let signer = match bundle.signing_seed() {
            Some(seed) => Some(Arc::new(Ed25519Signer::new(
                bundle.own_key_id(Role::Sig),
                seed,
            )?)),
            None => None,
        };
        let until = now + self.inner.grace;
        let mut state = self.write();
        state.retiring.retain(|_, t| *t > now);
        let old: Vec<KeyId> = state.secrets.keys().cloned().collect();
        for id in old {
            if !bundle.secret_keys().contains_key(&id) {
                state.retiring.entry(id).or_insert(until);
            }
        }
        for (id, _) in self.inner.pinned.entries() {
            if !bundle.public_keys().contains_key(&id) {
                state.retiring.entry(id).or_insert(until);
            }
        }
        let expired: Vec<KeyId> = state
            .secrets
            .keys()
            .filter(|k| state.retiring.get(*k).is_some_and(|t| *t <= now))
            .cloned()
            .collect();
        for id in &expired {
            state.secrets.remove(id);
        }
        self.inner
            .pinned
            .retain(|k| state.retiring.get(k).is_none_or(|t| *t > now));
        for (id, key) in bundle.secret_keys() {
            if id.role() != Role::Sig {
                state.secrets.insert(id.clone(), Arc::new(key.clone()));
            }
            state.retiring.remove(id);
        }
        for (id, key) in bundle.public_keys() {
            self.inner.pinned.pin(id.clone(), key)?;
            state.retiring.remove(id);
        }
        if signer.is_some() {
            state.signer = signer;
        }
        state.epoch = bundle.epoch();
        Ok(())
    }

    /// Treats `instance_id`'s keys as revoked from now on.
    pub fn revoke(&self, instance_id: &str) {
        self.write().revoked.insert(instance_id.to_owned());
    }

    /// The guest's principal.
    pub fn principal(&self) -> &Principal {
        &self.inner.me
    }

    /// The guest's current epoch.
    pub fn epoch(&self) -> u64 {
        self.read().epoch
    }

    /// The guest's own signing key id and public key, if it holds a signing key.
    pub fn signing_public_key(&self) -> Option<(KeyId, [u8; 32])> {
        let s = self.read().signer.clone()?;
        Some((sealrpc_core::security::Signer::key_id(&*s), s.public_key()))
    }

    /// The guest's security config: ed25519 signer (if the bundle has a seed), ed25519
    /// verifier over the pinned keys, XChaCha20-Poly1305 sealer and opener, this resolver,
    /// and rpc-core's default policy.
    pub fn security(&self) -> SecurityConfig {
        let keys = Arc::new(self.clone());
        crate::assemble::security_config(self, keys.clone(), keys)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn secret(&self, key_id: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
        self.check_key(key_id)?;
        self.read()
            .secrets
            .get(key_id)
            .cloned()
            .ok_or(KeyError::UnknownKey)
    }
}

impl KeyResolver for GuestKeys {
    fn me(&self) -> Principal {
        self.inner.me.clone()
    }

    fn seal_key_for(&self, peer: &Peer) -> Option<KeyId> {
        match peer {
            Peer::ControlPlane => {
                let s = self.read();
                s.secrets
                    .keys()
                    .filter(|k| k.role() == Role::K3 && !s.retiring.contains_key(*k))
                    .max_by_key(|k| k.epoch())
                    .cloned()
            }
            Peer::Guest(_) | Peer::Guests => None,
        }
    }

    fn check_key(&self, key_id: &KeyId) -> Result<(), KeyError> {
        let s = self.read();
        if let Some(id) = key_id.principal().guest_id()
            && s.revoked.contains(id)
        {
            return Err(KeyError::Revoked);
        }
        let held = s.secrets.contains_key(key_id) || self.inner.pinned.contains(key_id);
        if held {
            return match s.retiring.get(key_id) {
                Some(until) if *until <= SystemTime::now() => Err(KeyError::Stale),
                _ => Ok(()),
            };
        }
        // Not held: an older epoch of a key we hold in a newer epoch is stale.
        let newer_held = s
            .secrets
            .keys()
            .chain(self.inner.pinned.entries().iter().map(|(k, _)| k))
            .any(|k| {
                k.role() == key_id.role()
                    && k.principal() == key_id.principal()
                    && k.epoch() > key_id.epoch()
            });
        Err(if newer_held {
            KeyError::Stale
        } else {
            KeyError::UnknownKey
        })
    }
}

impl PublicKeys for GuestKeys {
    fn public_key(&self, key_id: &KeyId) -> Result<Arc<VerifyingKey>, KeyError> {
        self.inner.pinned.public_key(key_id)
    }
}

impl AeadKeys for GuestKeys {
    fn sealing_key(&self, key_id: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
        // A guest seals only towards the control plane, with its own k3.
        if key_id.role() != Role::K3 || key_id.principal() != &self.inner.me {
            return Err(KeyError::UnknownKey);
        }
        self.secret(key_id)
    }

    fn opening_key(&self, key_id: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
        // A guest opens its own k2 and the broadcast key.
        let ok = match key_id.role() {
            Role::K2 => key_id.principal() == &self.inner.me,
            Role::Kb => *key_id.principal() == Principal::guests(),
            _ => false,
        };
        if !ok {
            return Err(KeyError::UnknownKey);
        }
        self.secret(key_id)
    }
}

impl SigningKeys for GuestKeys {
    fn current_signer(&self) -> Option<Arc<Ed25519Signer>> {
        self.read().signer.clone()
    }
}

impl fmt::Debug for GuestKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.read();
        f.debug_struct("GuestKeys")
            .field("principal", &self.inner.me.as_str())
            .field("epoch", &s.epoch)
            .field(
                "secret_keys",
                &s.secrets.keys().map(KeyId::as_str).collect::<Vec<_>>(),
            )
            .field("pinned", &self.inner.pinned)
            .field("revoked", &s.revoked)
            .finish_non_exhaustive()
    }
}
