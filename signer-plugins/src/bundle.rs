//! The guest bundle: everything a guest receives at provisioning, and its JSON file format
//! (docs/key-bundle.md). Hex values; unknown JSON fields ignored; file mode 0600.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use sealrpc_core::Principal;
use sealrpc_core::wire::{KeyId, Role};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::keyfile;
use crate::secret::SecretKey;

/// The `format` value of a bundle file.
pub const BUNDLE_FORMAT: &str = "sealrpc-guest-bundle-v1";

/// What a guest holds: its own K2, K3, KB and signing seed, and the control plane's public
/// signing keys it pins. It can derive nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct GuestBundle {
    principal: Principal,
    epoch: u64,
    secret_keys: BTreeMap<KeyId, SecretKey>,
    public_keys: BTreeMap<KeyId, [u8; 32]>,
}

/// Whether a secret key id may be in `guest`'s bundle: its own k2, k3 and sig, and kb.
pub(crate) fn guest_may_hold_secret(guest: &Principal, key_id: &KeyId) -> bool {
    match key_id.role() {
        Role::K2 | Role::K3 | Role::Sig => key_id.principal() == guest,
        Role::Kb => *key_id.principal() == Principal::guests(),
        Role::K1 => false,
    }
}

/// Whether a public key id may be pinned by a guest: control-plane services only.
pub(crate) fn guest_may_pin(key_id: &KeyId) -> bool {
    let p = key_id.principal();
    key_id.role() == Role::Sig && p.is_control_plane() && *p != Principal::control()
}

impl GuestBundle {
    /// An empty bundle for `principal` (a `guest:<id>`) at `epoch`.
    pub fn new(principal: Principal, epoch: u64) -> Result<Self, Error> {
        if principal.guest_id().is_none() {
            return Err(Error::invalid("guest principal", principal.as_str()));
        }
        Ok(Self {
            principal,
            epoch,
            secret_keys: BTreeMap::new(),
            public_keys: BTreeMap::new(),
        })
    }

    /// Adds a secret key (the guest's own k2, k3 or signing seed, or kb).
    pub fn insert_secret(&mut self, key_id: KeyId, key: SecretKey) -> Result<(), Error> {
        if !guest_may_hold_secret(&self.principal, &key_id) {
            return Err(Error::BadKey {
                key_id: key_id.to_string(),
                reason: "this guest may not hold that key",
            });
        }
        self.secret_keys.insert(key_id, key);
        Ok(())
    }

    /// Pins a control-plane service's public signing key.
    pub fn insert_public(&mut self, key_id: KeyId, key: [u8; 32]) -> Result<(), Error> {
        if !guest_may_pin(&key_id) {
            return Err(Error::BadKey {
                key_id: key_id.to_string(),
                reason: "a guest pins only control-plane service signing keys",
            });
        }
        self.public_keys.insert(key_id, key);
        Ok(())
    }

    /// The guest's principal.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The guest's epoch (of its k2, k3 and signing key).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The secret keys, by key id.
    pub fn secret_keys(&self) -> &BTreeMap<KeyId, SecretKey> {
        &self.secret_keys
    }

    /// The pinned public keys, by key id.
    pub fn public_keys(&self) -> &BTreeMap<KeyId, [u8; 32]> {
        &self.public_keys
    }

    /// The key id of the guest's own key of `role` at the bundle's epoch.
    pub fn own_key_id(&self, role: Role) -> KeyId {
        KeyId::new(role, self.principal.clone(), self.epoch)
    }

    /// The guest's signing seed, if the bundle holds it.
    pub fn signing_seed(&self) -> Option<&SecretKey> {
        self.secret_keys.get(&self.own_key_id(Role::Sig))
    }

    /// The bundle as its JSON file content (holds secrets: wiped on drop).
    pub fn to_json(&self) -> Zeroizing<String> {
        let file = BundleFile {
            format: BUNDLE_FORMAT.to_owned(),
            principal: self.principal.to_string(),
            epoch: self.epoch,
            secret_keys: self
                .secret_keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_hex().to_string()))
                .collect(),
            public_keys: self
                .public_keys
                .iter()
                .map(|(k, v)| (k.to_string(), hex::encode(v)))
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        Zeroizing::new(text)
    }

    /// Parses a bundle file's content. The error never quotes a secret.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: BundleFile = serde_json::from_str(text)
            .map_err(|e| format!("not a bundle: {}", redact_serde(&e)))?;
        if file.format != BUNDLE_FORMAT {
            return Err(format!("unknown bundle format {:?}", file.format));
        }
        let principal = Principal::parse(&file.principal)
            .filter(|p| p.guest_id().is_some())
            .ok_or_else(|| format!("principal {:?} is not a guest", file.principal))?;
        let mut bundle = Self::new(principal, file.epoch).map_err(|e| e.to_string())?;
        for (id, value) in &file.secret_keys {
            let key_id = KeyId::parse(id).map_err(|_| format!("bad key id {id:?}"))?;
            let key = SecretKey::from_hex(value).map_err(|why| format!("key {id}: {why}"))?;
            bundle
                .insert_secret(key_id, key)
                .map_err(|e| e.to_string())?;
        }
        for (id, value) in &file.public_keys {
            let key_id = KeyId::parse(id).map_err(|_| format!("bad key id {id:?}"))?;
            let mut key = [0u8; 32];
            if value.len() != 64 || hex::decode_to_slice(value, &mut key).is_err() {
                return Err(format!("public key {id}: expected 64 hex digits"));
            }
            bundle
                .insert_public(key_id, key)
                .map_err(|e| e.to_string())?;
        }
        Ok(bundle)
    }

    /// Loads a bundle file (refused if group or others can access it).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = keyfile::read_private(path)?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| Error::corrupt(path, "bundle is not UTF-8"))?;
        Self::from_json(text).map_err(|why| Error::corrupt(path, why))
    }

    /// Writes the bundle to a new file, mode 0600; refuses to overwrite.
    pub fn save_new(&self, path: &Path) -> Result<(), Error> {
        keyfile::write_new_private(path, self.to_json().as_bytes())
    }

    /// Replaces the bundle file atomically, mode 0600 (a guest installing a new bundle).
    pub fn save_replace(&self, path: &Path) -> Result<(), Error> {
        keyfile::replace_private(path, self.to_json().as_bytes())
    }
}

/// serde_json's messages can quote the offending input: keep only the position.
fn redact_serde(e: &serde_json::Error) -> String {
    format!(
        "invalid JSON ({:?}) at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

impl fmt::Debug for GuestBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestBundle")
            .field("principal", &self.principal.as_str())
            .field("epoch", &self.epoch)
            .field(
                "secret_keys",
                &self
                    .secret_keys
                    .keys()
                    .map(KeyId::as_str)
                    .collect::<Vec<_>>(),
            )
            .field(
                "public_keys",
                &self
                    .public_keys
                    .iter()
                    .map(|(k, v)| (k.as_str(), hex::encode(v)))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish()
    }
}

/// The file as serialized. Values are hex; the secret ones are wiped on drop.
#[derive(Serialize, Deserialize)]
struct BundleFile {
    format: String,
    principal: String,
    epoch: u64,
    #[serde(default)]
    secret_keys: BTreeMap<String, String>,
    #[serde(default)]
    public_keys: BTreeMap<String, String>,
}

impl Drop for BundleFile {
    fn drop(&mut self) {
        for v in self.secret_keys.values_mut() {
            v.zeroize();
        }
    }
}
