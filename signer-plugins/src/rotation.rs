//! The rotation table: current epochs (control plane, broadcast key, each guest), the
//! revoked instances, and the grace window during which the previous epoch is still
//! accepted. Shared behind an `Arc`, changed at run time, persisted as JSON.
//!
//! The file is written only by [`crate::RotationFile::update`] (or
//! [`RotationTable::update`]), under the key directory's lock: there is no unlocked save.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealrpc_core::Principal;
use sealrpc_core::security::KeyError;
use sealrpc_core::wire::{KeyId, Role};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keyfile;

mod epoch;
pub use epoch::EpochState;

/// The epoch every key starts at.
pub const INITIAL_EPOCH: u64 = 1;

/// Default grace window for the previous epoch after a rotation.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// The `format` value of a rotation state file.
pub const STATE_FORMAT: &str = "sealrpc-rotation-v1";

/// The persisted form (see docs/key-bundle.md). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    format: String,
    grace_secs: u64,
    control: EpochState,
    broadcast: EpochState,
    #[serde(default)]
    services: BTreeSet<String>,
    #[serde(default)]
    guests: BTreeMap<String, EpochState>,
    #[serde(default)]
    revoked: BTreeSet<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            format: STATE_FORMAT.to_owned(),
            grace_secs: DEFAULT_GRACE.as_secs(),
            control: EpochState::initial(),
            broadcast: EpochState::initial(),
            services: BTreeSet::new(),
            guests: BTreeMap::new(),
            revoked: BTreeSet::new(),
        }
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn valid_instance(id: &str) -> Result<(), Error> {
    Principal::guest(id)
        .map(|_| ())
        .ok_or_else(|| Error::invalid("instance id", id))
}

fn valid_service(name: &str) -> Result<(), Error> {
    Principal::service(name)
        .map(|_| ())
        .ok_or_else(|| Error::invalid("service name", name))
}

/// The control plane's rotation state. Thread-safe; share it with `Arc`.
///
/// A table that a [`crate::RotationWatcher`] keeps up to date *mirrors* its source: an
/// in-memory change to it would be replaced at the next reload, so the changes that decide
/// acceptance (revoking, rotating or registering a guest) are refused there with
/// [`Error::Mirrored`], and the others are logged. Change the source instead
/// ([`RotationTable::update`], `sealrpc-keys`).
#[derive(Debug, Default)]
pub struct RotationTable {
    state: RwLock<State>,
    mirrored: AtomicBool,
}

impl RotationTable {
    /// Every epoch at [`INITIAL_EPOCH`], no guests, nothing revoked, grace of one hour.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// True when a watcher keeps this table up to date from a source.
    pub fn is_mirrored(&self) -> bool {
        self.mirrored.load(Ordering::Relaxed)
    }

    pub(crate) fn set_mirrored(&self) {
        self.mirrored.store(true, Ordering::Relaxed);
    }

    /// Refuses an acceptance-deciding in-memory change to a mirrored table.
    fn local_change(&self, what: &'static str) -> Result<(), Error> {
        if self.is_mirrored() {
            return Err(Error::Mirrored { what });
        }
        Ok(())
    }

    /// Logs any other in-memory change to a mirrored table (it lasts until the next reload).
    fn note_local_change(&self, what: &'static str) {
        if self.is_mirrored() {
            tracing::warn!(
                change = what,
                "in-memory change to a rotation table that mirrors a source: the next reload replaces it; change the source instead"
            );
        }
    }

    /// The grace window for the previous epoch.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.read().grace_secs)
    }

    /// Sets the grace window (zero: the previous epoch dies at once).
    pub fn set_grace(&self, grace: Duration) {
        self.note_local_change("set grace");
        self.write().grace_secs = grace.as_secs();
    }

    /// The control plane's epoch (k1 and every `sig/control:*`).
    pub fn control_epoch(&self) -> u64 {
        self.read().control.epoch
    }

    /// The control plane's epoch state.
    pub fn control_state(&self) -> EpochState {
        self.read().control
    }

    /// The broadcast key's epoch (kb).
    pub fn broadcast_epoch(&self) -> u64 {
        self.read().broadcast.epoch
    }

    /// The broadcast key's epoch state.
    pub fn broadcast_state(&self) -> EpochState {
        self.read().broadcast
    }

    /// A guest's epoch state, if it was ever issued keys.
    pub fn guest_state(&self, instance_id: &str) -> Option<EpochState> {
        self.read().guests.get(instance_id).copied()
    }

    /// A guest's current epoch, if it was ever issued keys.
    pub fn guest_epoch(&self, instance_id: &str) -> Option<u64> {
        self.guest_state(instance_id).map(|s| s.epoch)
    }

    /// Every known guest and its epoch state.
    pub fn guests(&self) -> Vec<(String, EpochState)> {
        let s = self.read();
        s.guests.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Records a guest at [`INITIAL_EPOCH`] if it is new; returns its current epoch.
    pub fn register_guest(&self, instance_id: &str) -> Result<u64, Error> {
        valid_instance(instance_id)?;
        let mut s = self.write();
        if !s.guests.contains_key(instance_id) {
            self.local_change("register a guest")?;
        }
        Ok(s.guests
            .entry(instance_id.to_owned())
            .or_insert(EpochState::initial())
            .epoch)
    }

    /// Sets a guest's epoch outright, with no grace for any earlier one (provisioning,
    /// restoring state, replaying test vectors).
    pub fn set_guest_epoch(&self, instance_id: &str, epoch: u64) -> Result<(), Error> {
        valid_instance(instance_id)?;
        self.local_change("set a guest's epoch")?;
        self.write().guests.insert(
            instance_id.to_owned(),
            EpochState {
                epoch,
                rotated_at_ms: None,
            },
        );
        Ok(())
    }

    /// Moves a known guest to its next epoch now; returns the new epoch.
    pub fn rotate_guest(&self, instance_id: &str) -> Result<u64, Error> {
        self.rotate_guest_at(instance_id, SystemTime::now())
    }

    /// Moves a known guest to its next epoch, the rotation happening at `now`.
    pub fn rotate_guest_at(&self, instance_id: &str, now: SystemTime) -> Result<u64, Error> {
        valid_instance(instance_id)?;
        self.local_change("rotate a guest")?;
        let mut s = self.write();
        let g = s.guests.get_mut(instance_id).ok_or_else(|| {
            Error::invalid("known instance id (issue its keys first)", instance_id)
        })?;
        Ok(g.rotate(unix_ms(now)))
    }

    /// Moves the control plane (k1, every service's signing key) to its next epoch now.
    pub fn rotate_control(&self) -> u64 {
        self.rotate_control_at(SystemTime::now())
    }

    /// Moves the control plane to its next epoch, the rotation happening at `now`.
    pub fn rotate_control_at(&self, now: SystemTime) -> u64 {
        self.note_local_change("rotate the control plane");
        self.write().control.rotate(unix_ms(now))
    }

    /// Moves the broadcast key to its next epoch now (do it after a revocation: the revoked
    /// guest still holds the current kb).
    pub fn rotate_broadcast(&self) -> u64 {
        self.rotate_broadcast_at(SystemTime::now())
    }

    /// Moves the broadcast key to its next epoch, the rotation happening at `now`.
    pub fn rotate_broadcast_at(&self, now: SystemTime) -> u64 {
        self.note_local_change("rotate the broadcast key");
        self.write().broadcast.rotate(unix_ms(now))
    }

    /// Revokes an instance: every key id of `guest:<id>` is refused from now on. Returns
    /// false if it was already revoked.
    pub fn revoke(&self, instance_id: &str) -> Result<bool, Error> {
        valid_instance(instance_id)?;
        self.local_change("revoke a guest")?;
        Ok(self.write().revoked.insert(instance_id.to_owned()))
    }

    /// Lifts a revocation; returns false if the instance was not revoked.
    pub fn unrevoke(&self, instance_id: &str) -> bool {
        self.note_local_change("lift a revocation");
        self.write().revoked.remove(instance_id)
    }

    /// True when the instance is revoked.
    pub fn is_revoked(&self, instance_id: &str) -> bool {
        self.read().revoked.contains(instance_id)
    }

    /// The revoked instance ids.
    pub fn revoked(&self) -> Vec<String> {
        self.read().revoked.iter().cloned().collect()
    }

    /// Records a control-plane service whose signing keys guests pin (see
    /// [`crate::ControlPlaneKeys::issue_guest_bundle`]). Returns false if already known.
    pub fn add_service(&self, name: &str) -> Result<bool, Error> {
        valid_service(name)?;
        Ok(self.write().services.insert(name.to_owned()))
    }

    /// The recorded control-plane services.
    pub fn services(&self) -> Vec<String> {
        self.read().services.iter().cloned().collect()
    }

    /// Whether `key_id` is acceptable now; see [`RotationTable::check_at`].
    pub fn check(&self, key_id: &KeyId) -> Result<(), KeyError> {
        self.check_at(key_id, SystemTime::now())
    }

    /// Whether `key_id` is acceptable at `now`:
    ///
    /// - a key id whose role does not fit its principal (`k1` of a guest, `sig/control`,
    ///   `kb` of anyone but `guests`, ...) or of a guest never issued keys: `UnknownKey`;
    /// - any key of a revoked instance: `Revoked`;
    /// - an epoch newer than the current one: `UnknownKey`;
    /// - the previous epoch past the grace window, or anything older: `Stale`.
    pub fn check_at(&self, key_id: &KeyId, now: SystemTime) -> Result<(), KeyError> {
        let s = self.read();
        let owner = key_id.principal();
        let guest = owner.guest_id();
        let fits = match key_id.role() {
            Role::K1 => *owner == Principal::control(),
            Role::K2 | Role::K3 => guest.is_some(),
            Role::Kb => *owner == Principal::guests(),
            Role::Sig => {
                guest.is_some() || (owner.is_control_plane() && *owner != Principal::control())
            }
        };
        if !fits {
            return Err(KeyError::UnknownKey);
        }
        let state = match guest {
            Some(id) => {
                if s.revoked.contains(id) {
                    return Err(KeyError::Revoked);
                }
                s.guests.get(id).ok_or(KeyError::UnknownKey)?
            }
            None if key_id.role() == Role::Kb => &s.broadcast,
            None => &s.control,
        };
        state.check(
            key_id.epoch(),
            unix_ms(now),
            s.grace_secs.saturating_mul(1000),
        )
    }

    /// The state as JSON (the rotation state file's content).
    pub fn to_json(&self) -> String {
        // Serializing plain maps, strings and integers cannot fail.
        serde_json::to_string_pretty(&*self.read()).unwrap_or_default()
    }

    /// Parses a rotation state file's content.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let state: State = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if state.format != STATE_FORMAT {
            return Err(format!("unknown format {:?}", state.format));
        }
        for id in state.guests.keys().chain(state.revoked.iter()) {
            valid_instance(id).map_err(|e| e.to_string())?;
        }
        for name in &state.services {
            valid_service(name).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            state: RwLock::new(state),
            mirrored: AtomicBool::new(false),
        })
    }

    /// Loads a rotation state file (refused if group or others may write it).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = keyfile::read_protected(path)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::corrupt(path, "rotation state is not UTF-8"))?;
        Self::from_json(text).map_err(|why| Error::corrupt(path, format!("rotation state: {why}")))
    }

    /// Replaces this table's state with the file's (so every holder of the `Arc` sees it).
    /// A running service rather uses [`crate::RotationWatcher`], which does this by itself
    /// whenever the file changes.
    pub fn reload(&self, path: &Path) -> Result<(), Error> {
        self.replace_with(Self::load(path)?);
        Ok(())
    }

    /// A copy of the current state (not mirrored: changes to it are the caller's).
    pub fn snapshot(&self) -> Self {
        Self {
            state: RwLock::new(self.read().clone()),
            mirrored: AtomicBool::new(false),
        }
    }

    /// Swaps in `fresh`'s state in one step: every reader sees the old state or the new
    /// one, never a mix.
    pub(crate) fn replace_with(&self, fresh: Self) {
        let state = fresh.state.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.write() = state;
    }

    /// The file content: the JSON and a final newline.
    pub(crate) fn file_content(&self) -> String {
        let mut text = self.to_json();
        text.push('\n');
        text
    }
}
