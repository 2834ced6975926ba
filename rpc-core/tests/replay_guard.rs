//! The replay guard: replays refused per principal, a flooding guest confined to its own
//! share, expired entries pruned by time whatever order they arrived in, and fail-closed
//! when full. The fair-share guarantee (no set of guests denies the control plane or an
//! honest guest) is in `replay_fairness.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealrpc_core::security::{RejectReason, ReplayConfig, ReplayGuard};
use sealrpc_core::wire::MessageId;

const NOW: u64 = 1_763_900_000_000;
const SKEW: u64 = 60_000;

fn id(n: u32) -> MessageId {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&n.to_be_bytes());
    MessageId(b)
}

fn guard(capacity: usize, per_guest: usize) -> ReplayGuard {
    ReplayGuard::new(ReplayConfig {
        skew_ms: SKEW,
        future_skew_ms: SKEW,
        capacity,
        control_reserve: capacity / 4,
        per_guest,
    })
}

#[test]
fn a_replay_is_refused_per_principal() {
    let g = guard(100, 100);
    assert_eq!(g.check_and_record("guest:a", id(1), NOW, NOW), Ok(()));
    assert_eq!(
        g.check_and_record("guest:a", id(1), NOW, NOW),
        Err(RejectReason::Replay)
    );
    // The same id from another principal is another message.
    assert_eq!(g.check_and_record("guest:b", id(1), NOW, NOW), Ok(()));
    assert_eq!(g.len(), 2);
}

#[test]
fn a_flooding_guest_exhausts_only_its_own_share() {
    let g = guard(10, 3);
    for n in 0..3 {
        assert_eq!(g.check_and_record("guest:evil", id(n), NOW, NOW), Ok(()));
    }
    assert_eq!(
        g.check_and_record("guest:evil", id(99), NOW, NOW),
        Err(RejectReason::ReplayGuardFull)
    );
    assert_eq!(g.check_and_record("guest:good", id(1), NOW, NOW), Ok(()));
    assert_eq!(g.check_and_record("control:api", id(1), NOW, NOW), Ok(()));
    // Once its entries age out, the guest has its share back.
    let later = NOW + SKEW + 1;
    assert_eq!(
        g.check_and_record("guest:evil", id(100), later, later),
        Ok(())
    );
}

#[test]
fn expired_entries_are_pruned_even_behind_a_future_dated_one() {
    let g = guard(3, 3);
    // Inserted first, but forgotten last (its sender's clock runs ahead).
    g.check_and_record("control:a", id(1), NOW + SKEW, NOW)
        .unwrap();
    g.check_and_record("control:a", id(2), NOW - SKEW, NOW)
        .unwrap();
    g.check_and_record("control:a", id(3), NOW - SKEW, NOW)
        .unwrap();
    assert_eq!(
        g.check_and_record("control:a", id(4), NOW, NOW),
        Err(RejectReason::ReplayGuardFull),
        "full: fails closed"
    );
    // One millisecond later the two old entries are gone, the future-dated one stays.
    assert_eq!(g.check_and_record("control:a", id(4), NOW, NOW + 1), Ok(()));
    assert_eq!(g.len(), 2);
}

#[test]
fn time_checks_skew_and_deadline() {
    let g = guard(10, 10);
    assert_eq!(g.check_time(NOW, None, NOW + SKEW), Ok(()));
    assert_eq!(
        g.check_time(NOW, None, NOW + SKEW + 1),
        Err(RejectReason::ClockSkew)
    );
    assert_eq!(
        g.check_time(NOW + SKEW + 1, None, NOW),
        Err(RejectReason::ClockSkew)
    );
    assert_eq!(g.check_time(NOW, Some(500), NOW + 500), Ok(()));
    assert_eq!(
        g.check_time(NOW, Some(500), NOW + 501),
        Err(RejectReason::Expired)
    );
}

#[test]
fn a_tighter_future_skew_applies_to_time_checks_and_records() {
    let g = ReplayGuard::new(ReplayConfig {
        future_skew_ms: 5_000,
        ..ReplayConfig::default()
    });
    assert_eq!(g.check_time(NOW + 5_000, None, NOW), Ok(()));
    assert_eq!(
        g.check_time(NOW + 5_001, None, NOW),
        Err(RejectReason::ClockSkew)
    );
    assert_eq!(g.check_time(NOW - SKEW, None, NOW), Ok(()));
    assert_eq!(
        g.check_and_record("guest:a", id(1), NOW + 5_001, NOW),
        Err(RejectReason::ClockSkew)
    );
    assert_eq!(
        g.check_and_record("guest:a", id(1), NOW - SKEW - 1, NOW),
        Err(RejectReason::ClockSkew)
    );
    assert!(g.is_empty());
}

#[test]
fn a_future_stamped_id_costs_one_place_like_a_present_one() {
    let g = guard(100, 100);
    g.check_and_record("guest:a", id(1), NOW + SKEW, NOW)
        .unwrap();
    g.check_and_record("guest:b", id(1), NOW, NOW).unwrap();
    assert_eq!((g.held_by("guest:a"), g.held_by("guest:b")), (1, 1));
    // Held until its own ts leaves the window, against its own principal only.
    let later = NOW + SKEW + 1;
    g.check_and_record("control:x", id(9), later, later)
        .unwrap();
    assert_eq!((g.held_by("guest:a"), g.held_by("guest:b")), (1, 0));
    assert_eq!(
        g.check_and_record("guest:a", id(1), NOW + SKEW, later),
        Err(RejectReason::Replay)
    );
}

#[test]
fn guests_never_take_the_control_planes_reserve() {
    // capacity 100, reserve 25: guests together stop at 75.
    let g = guard(100, 100);
    let mut n = 0;
    for guest in 0..10 {
        for _ in 0..10 {
            n += 1;
            let _ = g.check_and_record(&format!("guest:{guest}"), id(n), NOW, NOW);
        }
    }
    let u = g.usage();
    assert_eq!(u.guests, 75);
    for i in 0..25 {
        assert_eq!(
            g.check_and_record("control:api", id(10_000 + i), NOW, NOW),
            Ok(()),
            "control id {i}"
        );
    }
    assert_eq!(g.len(), 100);
    // Now full, with the control plane holding its reserve: it is refused too.
    assert_eq!(
        g.check_and_record("control:api", id(20_000), NOW, NOW),
        Err(RejectReason::ReplayGuardFull)
    );
}

#[test]
fn an_evicted_id_is_never_admitted_again() {
    // capacity 8, reserve 2, per guest 6: the guests' room is 6.
    let g = ReplayGuard::new(ReplayConfig {
        skew_ms: SKEW,
        future_skew_ms: SKEW,
        capacity: 8,
        control_reserve: 2,
        per_guest: 6,
    });
    for n in 0..6 {
        g.check_and_record("guest:hog", id(n), NOW + u64::from(n), NOW)
            .unwrap();
    }
    // The room is full; guest:new holds 0 < 6 / 2: the hog gives up its oldest id (ts NOW).
    g.check_and_record("guest:new", id(100), NOW, NOW).unwrap();
    assert_eq!(g.held_by("guest:hog"), 5);
    // A replay of the id given up, and anything else of the hog's stamped at or before it,
    // is refused: the guard can no longer tell them apart.
    assert_eq!(
        g.check_and_record("guest:hog", id(0), NOW, NOW),
        Err(RejectReason::ReplayGuardFull)
    );
    assert_eq!(
        g.check_and_record("guest:hog", id(50), NOW - 1, NOW),
        Err(RejectReason::ReplayGuardFull)
    );
    assert_eq!(
        g.check_and_record("guest:hog", id(1), NOW + 1, NOW),
        Err(RejectReason::Replay)
    );
    // The newcomer is under its fair share (3) until it holds 3.
    g.check_and_record("guest:new", id(101), NOW, NOW).unwrap();
    g.check_and_record("guest:new", id(102), NOW, NOW).unwrap();
    assert_eq!(
        g.check_and_record("guest:new", id(103), NOW, NOW),
        Err(RejectReason::ReplayGuardFull)
    );
    assert_eq!((g.held_by("guest:hog"), g.held_by("guest:new")), (3, 3));
}
