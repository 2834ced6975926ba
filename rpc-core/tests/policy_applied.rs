//! `Admitted::applied` says which policy judged a message: the class of its proven
//! principal, or, when nothing was proven, the strictest class the receiver could assign.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod forged;

use forged::table::{control_rows, guest_rows, policies};
use forged::{now, receiver};
use sealrpc_core::security::{PeerClass, Policy};
use sealrpc_core::wire::Kind;

fn check(me: &str, rows: &[forged::table::Row]) -> usize {
    let me_p = sealrpc_core::Principal::parse(me).unwrap();
    let built: Vec<_> = rows.iter().map(|r| r.msg.build()).collect();
    let mut seen = 0;
    // Every 5th combination keeps this quick; policy_class.rs runs them all.
    for policy in policies().into_iter().step_by(5) {
        for (row, bytes) in rows.iter().zip(&built) {
            let Ok(a) = receiver(me, policy).admit_at(bytes, &|_| true, now()) else {
                continue;
            };
            seen += 1;
            let want = match &a.principal {
                Some(p) => {
                    let class = PeerClass::of_proven(p, row.msg.kind);
                    assert_eq!(
                        class,
                        match (row.msg.kind, p.is_control_plane()) {
                            (Kind::Fanout, _) => PeerClass::Fanout,
                            (_, true) => PeerClass::ControlPlane,
                            (_, false) => PeerClass::Guests,
                        }
                    );
                    policy.applied(&me_p, Some(p), row.msg.kind, now())
                }
                None => policy.strictest(&me_p, now()),
            };
            assert_eq!(a.applied, want, "{me} <- {}: {policy:?}", row.name);
            if let Some(class) = a.applied.class {
                assert_eq!(a.applied.mode, policy.class(class).effective_mode(now()));
            }
        }
    }
    seen
}

#[test]
fn admitted_messages_say_which_class_judged_them() {
    assert!(check("control:conductor", &control_rows()) > 1_000);
    assert!(check("guest:g1", &guest_rows()) > 1_000);
}

#[test]
fn a_guest_never_judges_by_the_guests_class() {
    let me = sealrpc_core::Principal::parse("guest:g1").unwrap();
    let candidates = PeerClass::candidates(&me);
    assert!(!candidates.contains(&PeerClass::Guests));
    let control = sealrpc_core::Principal::parse("control:conductor").unwrap();
    assert_eq!(PeerClass::candidates(&control), &PeerClass::ALL);
    // So a guest whose guests class is Enforce but whose other classes are Off checks
    // nothing, while the same policy on the control plane verifies every signature.
    let p = Policy {
        control_plane: sealrpc_core::security::ClassPolicy::off(),
        fanout: sealrpc_core::security::ClassPolicy::off(),
        ..Policy::default()
    };
    assert!(!p.verifies_signatures(&me, now()));
    assert!(p.verifies_signatures(&control, now()));
}
