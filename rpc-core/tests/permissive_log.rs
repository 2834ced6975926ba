//! Permissive never lets an unauthenticated message through silently: it is counted and
//! logged; Enforce refuses the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use sealrpc_core::security::{ClassPolicy, Policy, RejectReason};

#[test]
fn permissive_counts_and_logs_what_enforce_refuses() {
    let out = common::Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let bytes = common::heartbeat_cast(&common::insecure("guest:old"));
    let conductor = common::secure("control:conductor");
    conductor.set_policy(Policy::uniform(ClassPolicy::permissive()));
    tracing::subscriber::with_default(subscriber, || {
        let admitted = conductor.admit(&bytes, &|_| true).unwrap();
        assert_eq!(admitted.principal, None);
    });
    let counters = conductor.counters();
    assert_eq!(
        (
            counters.accepted_unauthenticated,
            counters.accepted_unsealed
        ),
        (1, 1)
    );
    let log = out.text();
    assert!(log.contains("Permissive: accepting"), "{log}");
    assert!(log.contains("src=guest:old"), "{log}");

    conductor.set_policy(Policy::default());
    let again = common::heartbeat_cast(&common::insecure("guest:old"));
    assert_eq!(
        conductor.admit(&again, &|_| true).unwrap_err().reason,
        RejectReason::Unauthenticated
    );
}
