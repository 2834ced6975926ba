//! The security pipeline's metrics: rejections by reason (authorization refusals included),
//! what Permissive let through, and the ids the in-process replay guards hold.

use super::{FORBIDDEN, PERMISSIVE_ADMISSIONS, REJECTIONS, REPLAY_GUARD_IDS};
use crate::security::{PeerClass, RejectReason};

/// Counts a received message refused for `reason`.
pub(crate) fn record_rejection(reason: RejectReason) {
    metrics::counter!(REJECTIONS, "reason" => reason.as_str()).increment(1);
}

/// Counts an admitted call refused by authorization (`Forbidden`).
pub(crate) fn record_forbidden() {
    metrics::counter!(REJECTIONS, "reason" => FORBIDDEN).increment(1);
}

fn class_label(class: Option<PeerClass>) -> &'static str {
    match class {
        Some(PeerClass::ControlPlane) => "control_plane",
        Some(PeerClass::Guests) => "guests",
        Some(PeerClass::Fanout) => "fanout",
        None => "unproven",
    }
}

/// Counts a message Permissive admitted though Enforce would refuse it: it proved no sender
/// (`unauthenticated`), or lacked a seal its class requires (`unsealed`).
pub(crate) fn record_permissive(class: Option<PeerClass>, unauthenticated: bool, unsealed: bool) {
    let lacking = match (unauthenticated, unsealed) {
        (true, true) => "authentication_and_seal",
        (true, false) => "authentication",
        (false, true) => "seal",
        (false, false) => return,
    };
    metrics::counter!(PERMISSIVE_ADMISSIONS, "class" => class_label(class), "lacking" => lacking)
        .increment(1);
}

/// Moves the replay gauge by what one guard's holdings, `(control, guests)`, changed by.
/// The gauge is the sum over every guard of the process: each guard adds its own changes
/// (and takes its holdings back when dropped).
pub(crate) fn record_replay_holdings(before: (usize, usize), after: (usize, usize)) {
    for (holder, was, now) in [
        ("control", before.0, after.0),
        ("guests", before.1, after.1),
    ] {
        if was != now {
            let gauge = metrics::gauge!(REPLAY_GUARD_IDS, "holder" => holder);
            if now > was {
                gauge.increment((now - was) as f64);
            } else {
                gauge.decrement((was - now) as f64);
            }
        }
    }
}
