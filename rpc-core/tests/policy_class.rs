//! The policy that judges a received message follows from what is proven, never from the
//! header's claims (docs/wire-format.md §7.1): before proof the strictest class the
//! message could belong to applies, a present signature of a known algorithm is verified
//! unless the receiver is Off for every class, and after proof the class of the proven
//! principal decides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod forged;

use std::sync::Arc;
use std::time::Duration;

use forged::table::{Row, control_rows, guest_rows, policies};
use forged::{Msg, now, receiver};
use sealrpc_core::security::{Auth, ClassPolicy, Mode, Policy, RejectReason};
use sealrpc_core::transport::{Address, Outgoing};
use sealrpc_core::wire::Kind;
use sealrpc_core::{Context, HandlerError, Principal, Server};

fn rank(m: Mode) -> u8 {
    match m {
        Mode::Off => 0,
        Mode::Permissive => 1,
        Mode::Enforce => 2,
    }
}

fn mode(c: &ClassPolicy) -> Mode {
    c.effective_mode(now())
}

/// The strictest mode over the classes the receiver could assign: a guest proves only the
/// control plane (unicast or fanout), a control-plane node any of the three.
fn strictest(p: &Policy, guest_receiver: bool) -> Mode {
    let mut classes = vec![&p.control_plane, &p.fanout];
    if !guest_receiver {
        classes.push(&p.guests);
    }
    classes
        .into_iter()
        .map(mode)
        .max_by_key(|m| rank(*m))
        .unwrap()
}

/// The class of a proven principal.
fn class_of<'p>(p: &'p Policy, principal: &Principal, kind: Kind) -> &'p ClassPolicy {
    if kind == Kind::Fanout {
        &p.fanout
    } else if principal.is_control_plane() {
        &p.control_plane
    } else {
        &p.guests
    }
}

/// Runs every row under every policy combination and checks the invariant; returns how
/// many (policy, row) pairs were admitted.
fn check_table(me: &str, rows: &[Row]) -> usize {
    let guest_receiver = me.starts_with("guest:");
    let built: Vec<_> = rows.iter().map(|r| r.msg.build()).collect();
    let mut admitted = 0;
    for policy in policies() {
        let strict = strictest(&policy, guest_receiver);
        for (row, bytes) in rows.iter().zip(&built) {
            let security = receiver(me, policy);
            let result = security.admit_at(bytes, &|_| true, now());
            let seen = format!("{result:?}");
            let ctx = || format!("{me} <- {}: {policy:?} -> {seen}", row.name);
            let proven_by_nothing = row.msg.signer.is_none() && !row.pairwise;
            if row.always_admitted {
                assert!(
                    result.is_ok(),
                    "a legitimate message was refused: {}",
                    ctx()
                );
            }
            if proven_by_nothing {
                // Nothing can be proven: the strictest class decides alone.
                let want = match (strict, row.msg.kind) {
                    (Mode::Off, _) => true,
                    (Mode::Permissive, kind) => kind != Kind::Fanout,
                    (Mode::Enforce, _) => false,
                };
                assert_eq!(result.is_ok(), want, "{}", ctx());
            }
            if row.msg.garbage && strict != Mode::Off {
                let reason = result.as_ref().map(|_| ()).unwrap_err().reason;
                assert_eq!(reason, RejectReason::BadSignature, "{}", ctx());
            }
            let Ok(a) = result else { continue };
            admitted += 1;
            match &a.principal {
                None => {
                    assert_ne!(strict, Mode::Enforce, "unproven under Enforce: {}", ctx());
                    if row.msg.signer.is_some() {
                        assert_eq!(strict, Mode::Off, "signature unchecked: {}", ctx());
                    }
                }
                Some(p) => {
                    let class = class_of(&policy, p, row.msg.kind);
                    if mode(class) == Mode::Enforce {
                        let pairwise = class.auth == Auth::SignatureOrPairwise && row.pairwise;
                        assert!(a.signed || pairwise, "unauthenticated: {}", ctx());
                        assert!(!class.require_sealed || a.sealed, "unsealed: {}", ctx());
                    }
                }
            }
        }
    }
    admitted
}

/// The invariant, over every per-class policy combination (Off, Permissive, Permissive
/// with an end in the past and in the future, Enforce; both authentications; sealed or
/// not) and every kind of evidence: an admitted message's mode is never looser than the
/// class of its proven principal, and unproven messages get the strictest class.
#[test]
fn the_proven_class_decides_for_a_control_plane_receiver() {
    let admitted = check_table("control:conductor", &control_rows());
    assert!(admitted > 10_000, "only {admitted} admitted");
}

/// The same for a guest receiver (which can prove only the control plane).
#[test]
fn the_proven_class_decides_for_a_guest_receiver() {
    let admitted = check_table("guest:g1", &guest_rows());
    assert!(admitted > 10_000, "only {admitted} admitted");
}

fn guests_enforce_control_permissive() -> Policy {
    Policy {
        control_plane: ClassPolicy::permissive(),
        ..Policy::default()
    }
}

/// Defect 1, first half: guests Enforce, control plane Permissive (a migration step). A
/// guest's unsigned, unsealed cast claiming `src=control:taskmanager` is refused as
/// unauthenticated, and the (AllowAny) handler never runs.
#[tokio::test]
async fn a_claimed_control_src_does_not_pick_the_permissive_class() {
    let t = common::transport();
    let conductor = receiver("control:conductor", guests_enforce_control_permissive());
    let count = common::Count::default();
    let c = count.clone();
    let server = Server::builder(Arc::clone(&t), Arc::clone(&conductor))
        .topic("conductor")
        .handler("heartbeat", move |_ctx: Context, (): ()| {
            c.hit();
            async move { Ok::<_, HandlerError>(()) }
        })
        .start()
        .await
        .unwrap();
    let forged = Msg::cast("control:taskmanager", "conductor");
    let send = |bytes| Outgoing {
        to: Address::Topic("conductor".into()),
        payload: bytes,
        reply_to: None,
        expiration: None,
        confirm: true,
    };
    // The clock of the forged header is the real one here (the server admits at "now").
    let header = sealrpc_core::wire::Header {
        ts: sealrpc_core::security::now_ms(),
        ..forged.header()
    };
    t.send(send(forged.envelope(&header, &forged.body())))
        .await
        .unwrap();
    let rejected = || {
        conductor
            .counters()
            .rejected_for(RejectReason::Unauthenticated)
    };
    for _ in 0..400 {
        if rejected() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rejected(), 1, "{:?}", conductor.counters());
    assert_eq!(
        count.get(),
        0,
        "the handler ran a forged control-plane cast"
    );

    // Not vacuous: once every class is Permissive, the same forgery is admitted (counted)
    // and the handler runs; that is what Permissive means.
    conductor.set_policy(Policy::uniform(ClassPolicy::permissive()));
    let header = sealrpc_core::wire::Header {
        ts: sealrpc_core::security::now_ms(),
        ..forged.header()
    };
    t.send(send(forged.envelope(&header, &forged.body())))
        .await
        .unwrap();
    for _ in 0..400 {
        if count.get() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(count.get(), 1);
    assert_eq!(conductor.counters().accepted_unauthenticated, 1);
    server.shutdown().await;
}

/// The pipeline-level verdict of the same forgery, and of its guest-claimed twin.
#[test]
fn unproven_messages_get_the_strictest_class() {
    let conductor = receiver("control:conductor", guests_enforce_control_permissive());
    for src in ["control:taskmanager", "control", "guest:g1", "nobody"] {
        let bytes = Msg::cast(src, "conductor").build();
        let r = conductor.admit_at(&bytes, &|_| true, now()).unwrap_err();
        assert_eq!(r.reason, RejectReason::Unauthenticated, "src={src}");
    }
}

/// Defect 1, second half: the control-plane class Off (guests Enforce). A garbage
/// signature "by" `sig/control:taskmanager/1` is verified, and rejected.
#[test]
fn a_garbage_control_signature_is_verified_when_the_control_class_is_off() {
    let policy = Policy {
        control_plane: ClassPolicy::off(),
        ..Policy::default()
    };
    for (me, dst) in [
        ("control:conductor", "conductor"),
        ("guest:g1", "guestagent.g1"),
    ] {
        let policy = if me.starts_with("guest:") {
            // A guest assigns only the control-plane and fanout classes.
            Policy {
                fanout: ClassPolicy::enforce(),
                ..policy
            }
        } else {
            policy
        };
        let security = receiver(me, policy);
        let bytes = Msg::cast("control:taskmanager", dst)
            .garbage_signed("sig/control:taskmanager/1")
            .build();
        let r = security.admit_at(&bytes, &|_| true, now()).unwrap_err();
        assert_eq!(r.reason, RejectReason::BadSignature, "{me}");
    }
    // Only a receiver Off for every class leaves signatures unchecked.
    let off = receiver("control:conductor", Policy::uniform(ClassPolicy::off()));
    let bytes = Msg::cast("control:taskmanager", "conductor")
        .garbage_signed("sig/control:taskmanager/1")
        .build();
    let a = off.admit_at(&bytes, &|_| true, now()).unwrap();
    assert_eq!((a.principal, a.signed), (None, false));
}

/// After proof, the proven principal's class applies, even when it is looser than the
/// strictest: the per-class migration still works for what is proven.
#[test]
fn a_proven_principal_gets_its_own_class() {
    let conductor = receiver("control:conductor", guests_enforce_control_permissive());
    // Signed by the task manager but unsealed: the control-plane class is Permissive.
    let bytes = Msg::cast("control:taskmanager", "conductor")
        .signed("sig/control:taskmanager/1")
        .build();
    let a = conductor.admit_at(&bytes, &|_| true, now()).unwrap();
    assert_eq!(a.principal, Principal::parse("control:taskmanager"));
    // The same from a guest: the guests class is Enforce, and it requires the seal.
    let bytes = Msg::cast("guest:g1", "conductor")
        .signed("sig/guest:g1/1")
        .build();
    let r = conductor.admit_at(&bytes, &|_| true, now()).unwrap_err();
    assert_eq!(r.reason, RejectReason::Unsealed);
}
