//! The table of the policy tests: every combination of per-class policies a receiver can
//! hold, and the messages a control-plane or a guest receiver may get, each with what it
//! carries as evidence (so the tests can say which class its proof leads to).
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use sealrpc_core::security::{Auth, ClassPolicy, Mode, Policy};
use sealrpc_core::wire::Kind;

use super::{Msg, now};

/// The class policies each class runs through: every mode (Permissive with an end in the
/// past, which is Enforce, and in the future), both authentications, sealed or not (where
/// the mode makes them matter: Off requires nothing, and a Permissive that has not ended
/// behaves as Permissive).
pub fn class_policies() -> Vec<ClassPolicy> {
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
    let future = now() + Duration::from_secs(3_600);
    let all = [
        (Auth::Signature, true),
        (Auth::Signature, false),
        (Auth::SignatureOrPairwise, true),
        (Auth::SignatureOrPairwise, false),
    ];
    let mut out = Vec::new();
    for (mode, until, variants) in [
        (Mode::Off, None, &all[..1]),
        (Mode::Permissive, None, &all[..]),
        (Mode::Permissive, Some(past), &all[..]),
        (Mode::Permissive, Some(future), &all[..1]),
        (Mode::Enforce, None, &all[..]),
    ] {
        for (auth, require_sealed) in variants {
            out.push(ClassPolicy {
                mode,
                auth: *auth,
                require_sealed: *require_sealed,
                permissive_until: until,
                ..ClassPolicy::enforce()
            });
        }
    }
    out
}

/// Every policy combination: control plane x guests x fanout.
pub fn policies() -> Vec<Policy> {
    let each = class_policies();
    let mut out = Vec::with_capacity(each.len().pow(3));
    for cp in &each {
        for g in &each {
            for f in &each {
                out.push(Policy {
                    control_plane: *cp,
                    guests: *g,
                    fanout: *f,
                });
            }
        }
    }
    out
}

/// One row: a message and what it carries.
#[derive(Debug, Clone)]
pub struct Row {
    /// What it is.
    pub name: &'static str,
    /// The message.
    pub msg: Msg,
    /// Sealed under a pairwise key (k1, k2 or k3) that the receiver may open.
    pub pairwise: bool,
    /// A legitimate message: admitted under every policy.
    pub always_admitted: bool,
}

fn row(name: &'static str, msg: Msg, pairwise: bool, always_admitted: bool) -> Row {
    Row {
        name,
        msg,
        pairwise,
        always_admitted,
    }
}

/// What the conductor (`control:conductor`, serving `conductor`) may receive.
pub fn control_rows() -> Vec<Row> {
    let tm = "control:taskmanager";
    let g = "guest:g1";
    let to = |src: &str| Msg::cast(src, "conductor");
    vec![
        row("unsigned unsealed, claims control", to(tm), false, false),
        row("unsigned unsealed, claims a guest", to(g), false, false),
        row(
            "unsigned unsealed fanout, claims control",
            to(tm).kind(Kind::Fanout),
            false,
            false,
        ),
        row(
            "garbage signature by sig/control:taskmanager/1",
            to(tm).garbage_signed("sig/control:taskmanager/1"),
            false,
            false,
        ),
        row(
            "garbage signature by sig/guest:g1/1, k3 sealed",
            to(g)
                .garbage_signed("sig/guest:g1/1")
                .sealed("k3/guest:g1/1"),
            true,
            false,
        ),
        row(
            "guest signed and k3 sealed",
            to(g).signed("sig/guest:g1/1").sealed("k3/guest:g1/1"),
            true,
            true,
        ),
        row(
            "guest signed, unsealed",
            to(g).signed("sig/guest:g1/1"),
            false,
            false,
        ),
        row(
            "guest unsigned, k3 sealed (pairwise)",
            to(g).sealed("k3/guest:g1/1"),
            true,
            false,
        ),
        row(
            "guest unsigned, k3 sealed, claims control",
            to(tm).sealed("k3/guest:g1/1"),
            true,
            false,
        ),
        row(
            "control signed and k1 sealed",
            to(tm)
                .signed("sig/control:taskmanager/1")
                .sealed("k1/control/1"),
            true,
            true,
        ),
        row(
            "control signed and k1 sealed, a call",
            to(tm)
                .kind(Kind::Call)
                .signed("sig/control:taskmanager/1")
                .sealed("k1/control/1"),
            true,
            true,
        ),
        row(
            "control signed, unsealed",
            to(tm).signed("sig/control:taskmanager/1"),
            false,
            false,
        ),
        row(
            "control unsigned, k1 sealed (pairwise)",
            to(tm).sealed("k1/control/1"),
            true,
            false,
        ),
        row(
            "fanout signed by control, k1 sealed",
            to(tm)
                .kind(Kind::Fanout)
                .signed("sig/control:taskmanager/1")
                .sealed("k1/control/1"),
            true,
            true,
        ),
        row(
            "fanout signed by a guest, k3 sealed",
            to(g)
                .kind(Kind::Fanout)
                .signed("sig/guest:g1/1")
                .sealed("k3/guest:g1/1"),
            true,
            false,
        ),
        row(
            "guest reply, signed and k3 sealed",
            to(g)
                .kind(Kind::Reply)
                .signed("sig/guest:g1/1")
                .sealed("k3/guest:g1/1"),
            true,
            true,
        ),
    ]
}

/// What guest g1 (serving `guestagent.g1` and the fanout) may receive.
pub fn guest_rows() -> Vec<Row> {
    let tm = "control:taskmanager";
    let to = |src: &str| Msg::cast(src, "guestagent.g1");
    vec![
        row("unsigned unsealed, claims control", to(tm), false, false),
        row(
            "unsigned unsealed, claims another guest",
            to("guest:g2"),
            false,
            false,
        ),
        row(
            "garbage signature by sig/control:taskmanager/1",
            to(tm).garbage_signed("sig/control:taskmanager/1"),
            false,
            false,
        ),
        row(
            "control signed and k2 sealed",
            to(tm)
                .signed("sig/control:taskmanager/1")
                .sealed("k2/guest:g1/1"),
            true,
            true,
        ),
        row(
            "control signed, unsealed",
            to(tm).signed("sig/control:taskmanager/1"),
            false,
            false,
        ),
        row(
            "control unsigned, k2 sealed (pairwise)",
            to(tm).sealed("k2/guest:g1/1"),
            true,
            false,
        ),
        row(
            "fanout signed by control, kb sealed",
            to(tm)
                .kind(Kind::Fanout)
                .signed("sig/control:taskmanager/1")
                .sealed("kb/guests/1"),
            false,
            true,
        ),
        row(
            "fanout unsigned, kb sealed",
            to(tm).kind(Kind::Fanout).sealed("kb/guests/1"),
            false,
            false,
        ),
        row(
            "fanout unsigned, unsealed",
            to(tm).kind(Kind::Fanout),
            false,
            false,
        ),
        row(
            "cast signed by control, kb sealed",
            to(tm)
                .signed("sig/control:taskmanager/1")
                .sealed("kb/guests/1"),
            false,
            false,
        ),
        row(
            "cast signed by another guest",
            to("guest:g2").signed("sig/guest:g2/1"),
            false,
            false,
        ),
    ]
}
