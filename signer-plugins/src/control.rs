//! The control plane's keys: one master secret, the rotation table, and the service this
//! process runs as. Implements rpc-core's [`KeyResolver`] and builds the
//! [`SecurityConfig`] of a control-plane service.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sealrpc_core::Principal;
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::security::{KeyError, KeyResolver, Peer};
use sealrpc_core::wire::{KeyId, Role};

use crate::bundle::GuestBundle;
use crate::derived::DerivedKeys;
use crate::ed25519::{Ed25519Signer, SigningKeys};
use crate::error::Error;
use crate::guest::GuestKeys;
use crate::rotation::{RotationTable, unix_ms};
use crate::rotation_file::{MASTER_FILE, RotationFile};
use crate::secret::MasterSecret;

/// A control-plane service's view of the key hierarchy. Cheap to clone (shared state).
#[derive(Clone)]
pub struct ControlPlaneKeys {
    service: String,
    me: Principal,
    table: Arc<RotationTable>,
    keys: Arc<DerivedKeys>,
    signer: Arc<Mutex<Option<Arc<Ed25519Signer>>>>,
}

impl ControlPlaneKeys {
    /// The keys of service `service` (principal `control:<service>`), deriving from
    /// `master` and checking key ids against `table`. Records the service in the table, so
    /// that bundles issued afterwards pin its public key.
    pub fn new(
        master: Arc<MasterSecret>,
        table: Arc<RotationTable>,
        service: &str,
    ) -> Result<Self, Error> {
        Self::with_derived(Arc::new(DerivedKeys::new(master)), table, service)
    }

    /// The keys of service `service` under a fresh master secret (from the OS random source)
    /// and an empty in-memory rotation table: nothing is stored, so the keys die with the
    /// process. For tests, examples and demos; in production `sealrpc-keys init` makes the
    /// key directory that [`Self::from_dir`] loads.
    pub fn ephemeral(service: &str) -> Result<Self, Error> {
        let master = Arc::new(MasterSecret::generate()?);
        Self::new(master, Arc::new(RotationTable::new()), service)
    }

    /// The keys guest `instance_id` would hold after loading the bundle
    /// [`Self::issue_guest_bundle`] issues: both sides in one process, for tests and demos.
    /// A real guest gets its bundle file delivered and loads it ([`GuestKeys::from_bundle`]).
    pub fn issue_guest_keys(&self, instance_id: &str) -> Result<GuestKeys, Error> {
        GuestKeys::from_bundle(&self.issue_guest_bundle(instance_id)?)
    }

    fn with_derived(
        keys: Arc<DerivedKeys>,
        table: Arc<RotationTable>,
        service: &str,
    ) -> Result<Self, Error> {
        let me =
            Principal::service(service).ok_or_else(|| Error::invalid("service name", service))?;
        table.add_service(service)?;
        Ok(Self {
            service: service.to_owned(),
            me,
            table,
            keys,
            signer: Arc::new(Mutex::new(None)),
        })
    }

    /// The keys of service `service` from key directory `dir`: its master secret and its
    /// rotation state as they are now. Keep the state current with
    /// [`crate::RotationWatcher::start_for_keys`].
    pub fn from_dir(dir: &std::path::Path, service: &str) -> Result<Self, Error> {
        let master = Arc::new(MasterSecret::load(&dir.join(MASTER_FILE))?);
        let table = Arc::new(RotationFile::new(dir).load()?);
        Self::new(master, table, service)
    }

    /// Another service sharing this one's master, table and key cache (several services in
    /// one process, like the demo's API, task manager and conductor).
    pub fn for_service(&self, service: &str) -> Result<Self, Error> {
        Self::with_derived(Arc::clone(&self.keys), Arc::clone(&self.table), service)
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// `control:<service>`.
    pub fn principal(&self) -> &Principal {
        &self.me
    }

    /// The shared rotation table.
    pub fn rotation(&self) -> &Arc<RotationTable> {
        &self.table
    }

    /// The derived-key source (sealing, opening, public keys).
    pub fn derived(&self) -> &Arc<DerivedKeys> {
        &self.keys
    }

    /// This service's signing key id at the current control-plane epoch.
    pub fn signing_key_id(&self) -> KeyId {
        KeyId::new(Role::Sig, self.me.clone(), self.table.control_epoch())
    }

    /// The ed25519 public key of any `sig/...` key id (derived from the master).
    pub fn public_key(&self, key_id: &KeyId) -> Result<[u8; 32], KeyError> {
        Ok(self.keys.signing_key(key_id)?.verifying_key().to_bytes())
    }

    /// The security config of this service: rotating ed25519 signer, ed25519 verifier,
    /// XChaCha20-Poly1305 sealer and opener, this resolver, and rpc-core's default policy
    /// (sign and seal everything, enforce). Adjust with the config's builder methods.
    pub fn security(&self) -> SecurityConfig {
        crate::assemble::security_config(self, self.keys.clone(), self.keys.clone())
    }

    /// Issues the bundle of guest `instance_id` at its current epoch (registering it at
    /// epoch 1 if it is new): its k2, k3 and signing seed, the current kb, and the public
    /// signing keys of every recorded control-plane service — for the current control
    /// epoch, the previous one while in grace, and the next one (public keys only, so that
    /// a control-plane rotation needs no flag day). A revoked instance gets nothing.
    pub fn issue_guest_bundle(&self, instance_id: &str) -> Result<GuestBundle, Error> {
        self.issue_guest_bundle_at(instance_id, SystemTime::now())
    }

    /// [`Self::issue_guest_bundle`] for a service whose table mirrors a key directory:
    /// records the guest in `file` under its lock (an in-memory registration would be
    /// undone by the next reload), applies that state here, then issues the bundle.
    pub fn issue_guest_bundle_persisted(
        &self,
        file: &RotationFile,
        instance_id: &str,
    ) -> Result<GuestBundle, Error> {
        let fresh = file.update(|t| {
            if t.is_revoked(instance_id) {
                return Err(Error::Key(KeyError::Revoked));
            }
            t.register_guest(instance_id)?;
            Ok(t.snapshot())
        })?;
        self.table.replace_with(fresh);
        self.issue_guest_bundle(instance_id)
    }

    /// [`Self::issue_guest_bundle`] with the clock at `now` (decides the grace window).
    pub fn issue_guest_bundle_at(
        &self,
        instance_id: &str,
        now: SystemTime,
    ) -> Result<GuestBundle, Error> {
        let guest = Principal::guest(instance_id)
            .ok_or_else(|| Error::invalid("instance id", instance_id))?;
        if self.table.is_revoked(instance_id) {
            return Err(Error::Key(KeyError::Revoked));
        }
        let epoch = self.table.register_guest(instance_id)?;
        let mut bundle = GuestBundle::new(guest.clone(), epoch)?;
        for role in [Role::K2, Role::K3, Role::Sig] {
            let id = KeyId::new(role, guest.clone(), epoch);
            bundle.insert_secret(id.clone(), crate::derive_key(self.master_ref(), &id))?;
        }
        let kb = KeyId::new(Role::Kb, Principal::guests(), self.table.broadcast_epoch());
        bundle.insert_secret(kb.clone(), crate::derive_key(self.master_ref(), &kb))?;

        let control = self.table.control_state();
        let grace_ms = self.table.grace().as_millis() as u64;
        let mut epochs = vec![control.epoch, control.epoch.saturating_add(1)];
        if control.epoch > 0 && control.previous_in_grace(unix_ms(now), grace_ms) {
            epochs.push(control.epoch - 1);
        }
        let mut services = self.table.services();
        if !services.contains(&self.service) {
            services.push(self.service.clone());
        }
        for service in services {
            let p = Principal::service(&service)
                .ok_or_else(|| Error::invalid("service name", &service))?;
            for &e in &epochs {
                let id = KeyId::new(Role::Sig, p.clone(), e);
                let pk = self.public_key(&id)?;
                bundle.insert_public(id, pk)?;
            }
        }
        Ok(bundle)
    }

    fn master_ref(&self) -> &MasterSecret {
        self.keys.master()
    }
}

impl SigningKeys for ControlPlaneKeys {
    fn current_signer(&self) -> Option<Arc<Ed25519Signer>> {
        let id = self.signing_key_id();
        let mut slot = self.signer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot
            .as_ref()
            .filter(|s| sealrpc_core::security::Signer::key_id(&***s) == id)
        {
            return Some(Arc::clone(s));
        }
        let key = self.keys.signing_key(&id).ok()?;
        let signer = Arc::new(Ed25519Signer::from_signing_key(id, key));
        *slot = Some(Arc::clone(&signer));
        Some(signer)
    }
}

impl KeyResolver for ControlPlaneKeys {
    fn me(&self) -> Principal {
        self.me.clone()
    }

    fn seal_key_for(&self, peer: &Peer) -> Option<KeyId> {
        match peer {
            Peer::ControlPlane => Some(KeyId::new(
                Role::K1,
                Principal::control(),
                self.table.control_epoch(),
            )),
            Peer::Guest(id) => {
                if self.table.is_revoked(id) {
                    return None;
                }
                // During the grace window after a guest's rotation, keep sealing under the
                // previous k2: the guest cannot hold the new one before its new bundle
                // arrives, and that bundle itself travels over this channel.
                let st = self.table.guest_state(id)?;
                let grace_ms = self.table.grace().as_millis() as u64;
                let epoch = if st.previous_in_grace(unix_ms(SystemTime::now()), grace_ms) {
                    st.epoch - 1
                } else {
                    st.epoch
                };
                Some(KeyId::new(Role::K2, Principal::guest(id)?, epoch))
            }
            Peer::Guests => Some(KeyId::new(
                Role::Kb,
                Principal::guests(),
                self.table.broadcast_epoch(),
            )),
        }
    }

    fn check_key(&self, key_id: &KeyId) -> Result<(), KeyError> {
        self.table.check(key_id)
    }

    fn no_seal_key(&self, peer: &Peer) -> KeyError {
        match peer {
            Peer::Guest(id) if self.table.is_revoked(id) => KeyError::Revoked,
            _ => KeyError::UnknownKey,
        }
    }
}

impl fmt::Debug for ControlPlaneKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlaneKeys")
            .field("principal", &self.me.as_str())
            .field("control_epoch", &self.table.control_epoch())
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}
