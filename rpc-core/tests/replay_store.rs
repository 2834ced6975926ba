//! The replay-store hook and the in-process store's restart rule: two receivers sharing
//! one store refuse each other's replays; a store that fails or hangs makes the receiver
//! refuse within its bound (`ReplayStoreUnavailable`, counted), never admit unchecked; the
//! synchronous pipeline refuses when it would have to wait; a restarted receiver refuses
//! what was stamped before it started, unless its rule is off or its clock reads earlier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sealrpc_core::security::{
    RejectReason, ReplayCheck, ReplayConfig, ReplayGuard, ReplayStore, ReplayStoreError,
    ReplayVerdict, RestartRule,
};
use sealrpc_core::wire::MessageId;

use common::{heartbeat_cast, secure, secure_config};

fn served(_: &str) -> bool {
    true
}

/// A store that fails, or never answers.
#[derive(Debug)]
struct Broken {
    hang: bool,
    calls: AtomicUsize,
}

#[async_trait]
impl ReplayStore for Broken {
    async fn check_and_record(
        &self,
        _check: ReplayCheck<'_>,
    ) -> Result<ReplayVerdict, ReplayStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(ReplayStoreError::new("connection failed"))
    }
}

#[tokio::test]
async fn two_receivers_sharing_a_store_refuse_each_others_replays() {
    let store = Arc::new(ReplayGuard::new(ReplayConfig::default()));
    let a = secure_config("control:conductor")
        .replay_store(store.clone())
        .build();
    let b = secure_config("control:conductor")
        .replay_store(store.clone())
        .build();
    // Built before the cast is stamped (else its restart rule refuses it).
    let c = secure("control:conductor");
    let cast = heartbeat_cast(&secure("guest:g1"));
    a.admit_async(&cast, &served).await.unwrap();
    let r = b.admit_async(&cast, &served).await.unwrap_err();
    assert_eq!(r.reason, RejectReason::Replay);
    assert_eq!(b.counters().rejected_for(RejectReason::Replay), 1);
    assert_eq!(store.len(), 1);
    // Without a store, `admit_async` uses the node's own memory.
    c.admit_async(&cast, &served).await.unwrap();
    assert_eq!(
        c.admit_async(&cast, &served).await.unwrap_err().reason,
        RejectReason::Replay
    );
}

#[tokio::test]
async fn a_failing_or_hanging_store_fails_closed() {
    for hang in [false, true] {
        let store = Arc::new(Broken {
            hang,
            calls: AtomicUsize::new(0),
        });
        let receiver = secure_config("control:conductor")
            .replay_store(store.clone())
            .replay_store_timeout(Duration::from_millis(50))
            .build();
        let cast = heartbeat_cast(&secure("guest:g1"));
        let r = receiver.admit_async(&cast, &served).await.unwrap_err();
        assert_eq!(
            r.reason,
            RejectReason::ReplayStoreUnavailable,
            "hang: {hang}"
        );
        assert_eq!(r.reason.wire_code(), sealrpc_core::ErrorCode::Replay);
        assert_eq!(store.calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            receiver
                .counters()
                .rejected_for(RejectReason::ReplayStoreUnavailable),
            1
        );
        // The synchronous pipeline cannot wait for the store: it refuses without asking.
        let r = receiver.admit(&cast, &served).unwrap_err();
        assert_eq!(r.reason, RejectReason::ReplayStoreUnavailable);
        assert_eq!(store.calls.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_restarted_receiver_refuses_what_was_stamped_before_it_started() {
    let sender = secure("guest:g1");
    let first = secure("control:conductor");
    let cast = heartbeat_cast(&sender);
    first.admit(&cast, &served).unwrap();
    std::thread::sleep(Duration::from_millis(5));

    // The process restarts: its memory is empty.
    let restarted = secure("control:conductor");
    let r = restarted.admit(&cast, &served).unwrap_err();
    assert_eq!(r.reason, RejectReason::StampedBeforeStart);
    let r = restarted.admit_async(&cast, &served).await.unwrap_err();
    assert_eq!(r.reason, RejectReason::StampedBeforeStart);
    // What was stamped after the start is admitted.
    restarted.admit(heartbeat_cast(&sender), &served).unwrap();

    // With the rule off, the replay of the last window goes through (one-shot verifiers).
    let off = secure_config("control:conductor")
        .restart_rule(RestartRule::Off)
        .build();
    off.admit(&cast, &served).unwrap();
}

#[test]
fn the_restart_rule_in_numbers() {
    const START: u64 = 1_763_900_000_000;
    let config = ReplayConfig::default();
    let g = ReplayGuard::with_restart_rule(config, RestartRule::RefuseBeforeStart, START);
    assert_eq!(g.started_ms(), Some(START));
    let id = MessageId::random;
    // Stamped before the start, received after it: refused for the first window.
    assert_eq!(
        g.check_and_record("guest:a", id(), START - 1, START + 10),
        Err(RejectReason::StampedBeforeStart)
    );
    // Later it is too old anyway.
    assert_eq!(
        g.check_and_record("control:api", id(), START - 1, START + config.skew_ms + 2),
        Err(RejectReason::ClockSkew)
    );
    assert_eq!(
        g.check_and_record("guest:a", id(), START, START + 10),
        Ok(())
    );
    // A clock that reads before the start (golden vectors) is not a restart.
    assert_eq!(
        g.check_and_record("guest:a", id(), START - 100, START - 50),
        Ok(())
    );
    let off = ReplayGuard::with_restart_rule(config, RestartRule::Off, START);
    assert_eq!(
        off.check_and_record("guest:a", id(), START - 1, START + 10),
        Ok(())
    );
}
