//! The commands that read or change the state through a [`StateArgs`] and may deliver
//! bundles over the bus: `rotate`, `deliver`, `show`.

use std::time::Duration;

use sealrpc_core::Principal;
use sealrpc_core::wire::{KeyId, Role};
use sealrpc_signers::DerivedKeys;
use sealrpc_signers::rotation::EpochState;
use serde_json::json;

use crate::deliver::{self, DeliverArgs};
use crate::state::StateArgs;
use crate::{Res, Which, load_master, print_json};

/// `rotate`: next epoch for the chosen keys; then, with `--deliver`, the rotated guests'
/// bundles over the bus.
pub(crate) fn rotate(
    state: &StateArgs,
    which: &Which,
    deliver: bool,
    bus: &DeliverArgs,
    lock_timeout: Duration,
) -> Res<()> {
    let target = state.open(lock_timeout)?;
    let (what, epoch, grace, guests, fresh) = target.update(|t| {
        let mut guests = Vec::new();
        let (what, epoch) = if let Some(id) = &which.guest {
            guests.push(id.clone());
            (format!("guest:{id}"), t.rotate_guest(id)?)
        } else if which.control {
            ("control plane".to_owned(), t.rotate_control())
        } else if which.broadcast {
            ("broadcast key".to_owned(), t.rotate_broadcast())
        } else {
            for (id, _) in t.guests() {
                if !t.is_revoked(&id) {
                    t.rotate_guest(&id)?;
                    guests.push(id);
                }
            }
            (format!("{} guests", guests.len()), 0)
        };
        Ok((what, epoch, t.grace(), guests, t.snapshot()))
    })?;
    if which.all_guests {
        println!(
            "{what} moved to their next epoch; the previous epoch stays valid for {} s",
            grace.as_secs()
        );
    } else {
        println!(
            "{what} is now at epoch {epoch}; the previous epoch stays valid for {} s",
            grace.as_secs()
        );
    }
    if deliver {
        if guests.is_empty() {
            return Err("--deliver applies to --guest or --all-guests".into());
        }
        deliver::deliver(bus, deliver::master(state.dir()?)?, fresh, guests)?;
    }
    Ok(())
}

/// `deliver`: the current bundles of the given (or all non-revoked) guests over the bus.
pub(crate) fn deliver(
    state: &StateArgs,
    guests: Vec<String>,
    all_guests: bool,
    bus: &DeliverArgs,
    lock_timeout: Duration,
) -> Res<()> {
    let table = state.open(lock_timeout)?.load()?;
    let guests = if all_guests {
        table
            .guests()
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| !table.is_revoked(id))
            .collect()
    } else if guests.is_empty() {
        return Err("deliver needs --guest ID or --all-guests".into());
    } else {
        guests
    };
    deliver::deliver(bus, deliver::master(state.dir()?)?, table, guests)?;
    Ok(())
}

fn epoch_json(s: EpochState) -> serde_json::Value {
    json!({ "epoch": s.epoch, "rotated_at_ms": s.rotated_at_ms })
}

pub(crate) fn show(state: &StateArgs, lock_timeout: Duration) -> Res<()> {
    let dir = state.dir()?;
    let table = state.open(lock_timeout)?.load()?;
    let derived = DerivedKeys::new(load_master(dir)?);
    let pk = |id: &KeyId| -> Res<String> {
        derived
            .signing_key(id)
            .map(|k| hex::encode(k.verifying_key().to_bytes()))
            .map_err(|e| format!("{id}: {e}"))
    };
    let control = table.control_state();
    let mut signing = serde_json::Map::new();
    for s in table.services() {
        let p = Principal::service(&s).ok_or_else(|| format!("bad service {s:?}"))?;
        let id = KeyId::new(Role::Sig, p, control.epoch);
        signing.insert(id.to_string(), json!(pk(&id)?));
    }
    let mut guests = Vec::new();
    for (id, st) in table.guests() {
        let p = Principal::guest(&id).ok_or_else(|| format!("bad instance id {id:?}"))?;
        let sig = KeyId::new(Role::Sig, p.clone(), st.epoch);
        guests.push(json!({
            "instance_id": id,
            "epoch": epoch_json(st),
            "revoked": table.is_revoked(&id),
            "key_ids": [
                KeyId::new(Role::K2, p.clone(), st.epoch).to_string(),
                KeyId::new(Role::K3, p, st.epoch).to_string(),
                sig.to_string(),
            ],
            "public_key": pk(&sig)?,
        }));
    }
    print_json(&json!({
        "dir": dir.display().to_string(),
        "store": state.store.as_ref().map(|_| &state.store_table),
        "grace_secs": table.grace().as_secs(),
        "control": {
            "epoch": epoch_json(control),
            "k1": KeyId::new(Role::K1, Principal::control(), control.epoch).to_string(),
            "signing_keys": signing,
        },
        "broadcast": {
            "epoch": epoch_json(table.broadcast_state()),
            "kb": KeyId::new(Role::Kb, Principal::guests(), table.broadcast_epoch()).to_string(),
        },
        "guests": guests,
        "revoked": table.revoked(),
    }))
}
