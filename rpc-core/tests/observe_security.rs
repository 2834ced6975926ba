//! The security pipeline's metrics at their real hooks, through a local recorder (the
//! receive pipeline runs synchronously here, so no global recorder is needed): Permissive
//! admissions by class and what they lacked, and rejections by reason, equal to the
//! node's own counters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use sealrpc_core::observe::{PERMISSIVE_ADMISSIONS, REJECTIONS};
use sealrpc_core::security::{ClassPolicy, Policy, RejectReason};

/// One recorded metric: name, sorted labels, value.
type Row = (String, Vec<(String, String)>, DebugValue);

fn counter(snapshot: &[Row], name: &str) -> Vec<(Vec<(String, String)>, u64)> {
    snapshot
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, labels, v)| match v {
            DebugValue::Counter(c) => (labels.clone(), *c),
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn permissive_admissions_and_rejections_are_recorded_where_they_happen() {
    let conductor = common::secure("control:conductor");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        // An unsigned, unsealed cast from an old guest: Permissive lets it through, counted.
        conductor.set_policy(Policy::uniform(ClassPolicy::permissive()));
        for _ in 0..2 {
            let bytes = common::heartbeat_cast(&common::insecure("guest:old"));
            assert!(conductor.admit(&bytes, &|_| true).is_ok());
        }
        // Enforce refuses the same kind of message; and a replay of a signed one.
        conductor.set_policy(Policy::default());
        let bytes = common::heartbeat_cast(&common::insecure("guest:old"));
        let refused = conductor.admit(&bytes, &|_| true).unwrap_err();
        assert_eq!(refused.reason, RejectReason::Unauthenticated);
        let signed = common::heartbeat_cast(&common::secure("control:api"));
        assert!(conductor.admit(&signed, &|_| true).is_ok());
        let again = conductor.admit(&signed, &|_| true).unwrap_err();
        assert_eq!(again.reason, RejectReason::Replay);
    });
    let snapshot: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut l: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            l.sort();
            (key.name().to_owned(), l, value)
        })
        .collect();

    let lacking = [
        ("class", "unproven"),
        ("lacking", "authentication_and_seal"),
    ];
    assert_eq!(
        counter(&snapshot, PERMISSIVE_ADMISSIONS),
        [(labels(&lacking), 2)]
    );
    let mut rejections = counter(&snapshot, REJECTIONS);
    rejections.sort();
    assert_eq!(
        rejections,
        [
            (labels(&[("reason", "replay")]), 1),
            (labels(&[("reason", "unauthenticated")]), 1),
        ]
    );
    let counters = conductor.counters();
    assert_eq!(counters.rejected_for(RejectReason::Replay), 1);
    assert_eq!(counters.rejected_for(RejectReason::Unauthenticated), 1);
}
