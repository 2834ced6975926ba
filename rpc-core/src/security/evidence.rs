//! What a received message's evidence proves (a verified signature, a seal), and the rules
//! its pieces must agree on (docs/wire-format.md §7). These rules hold in every mode: a
//! mode decides what is *required*, never whether what is present may contradict itself.

use super::reject::RejectReason;
use crate::principal::Principal;
use crate::wire::{Header, KeyId, Kind, Role};

/// Whether a node that is `me` may open a seal under `key` on a message of `kind`: the
/// control plane opens k1 and k3; guest g opens only k2 of g, and kb of the guests on a
/// fanout (every guest holds kb, so a unicast under it could come from any of them).
/// Anything else is a reflection or a message for someone else.
pub(super) fn may_open(me: &Principal, key: &KeyId, kind: Kind) -> bool {
    let owner = key.principal();
    if me.is_control_plane() {
        match key.role() {
            Role::K1 => *owner == Principal::control(),
            Role::K3 => owner.guest_id().is_some(),
            _ => false,
        }
    } else if me.guest_id().is_some() {
        match key.role() {
            Role::K2 => owner == me,
            Role::Kb => *owner == Principal::guests() && kind == Kind::Fanout,
            _ => false,
        }
    } else {
        false
    }
}

/// What a seal key proves once it opens: k3 of g proves g; k1 and k2 prove only "the
/// control plane"; kb, held by every guest, proves nothing.
pub(super) fn seal_proves(key: &KeyId) -> Option<Principal> {
    match key.role() {
        Role::K3 => Some(key.principal().clone()),
        Role::K1 | Role::K2 => Some(Principal::control()),
        _ => None,
    }
}

/// The agreement rules between the verified `signer`, the seal key and the header's `src`:
/// under k3(g) the signer is g, under k1/k2/kb a control-plane principal; a guest, and any
/// receiver of a fanout, takes signatures only from the control plane; `src` is the proven
/// principal (or within `control` when a k1/k2 seal alone proves "the control plane").
pub(super) fn check_agreement(
    me: &Principal,
    header: &Header,
    signer: Option<&Principal>,
    seal_key: Option<&KeyId>,
) -> Result<(), RejectReason> {
    if let Some(p) = signer {
        let fits_seal = match seal_key {
            Some(k) if k.role() == Role::K3 => p == k.principal(),
            Some(_) => p.is_control_plane(),
            None => true,
        };
        let needs_control = me.guest_id().is_some() || header.kind == Kind::Fanout;
        if !fits_seal || (needs_control && !p.is_control_plane()) {
            return Err(RejectReason::SignerMismatch);
        }
    }
    let sealed_as = seal_key.and_then(seal_proves);
    let src_ok = match (signer, &sealed_as) {
        (Some(p), _) => header.src == p.as_str(),
        (None, Some(p)) if p.guest_id().is_some() => header.src == p.as_str(),
        (None, Some(_)) => Principal::parse(&header.src).is_some_and(|s| s.is_control_plane()),
        (None, None) => true,
    };
    if src_ok {
        Ok(())
    } else {
        Err(RejectReason::SourceMismatch)
    }
}
