//! The replay guard: replays refused per principal, a flooding guest confined to its own
//! share, expired entries pruned by time whatever order they arrived in, and fail-closed
//! when full.
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
        capacity,
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
