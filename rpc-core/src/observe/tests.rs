//! Exact values through a local recorder (no global recorder: tests run in parallel).

use metrics_util::debugging::{DebugValue, DebuggingRecorder};

use super::*;
use crate::error::Error;
use crate::security::{Counters, PeerClass, RejectReason, ReplayConfig, ReplayGuard};
use crate::server::HandlerError;
use crate::wire::{Kind, MessageId};

/// One metric as recorded: name, sorted labels, value.
type Row = (String, Vec<(String, String)>, DebugValue);

fn capture(f: impl FnOnce()) -> Vec<Row> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

fn find<'a>(rows: &'a [Row], name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    let mut want: Vec<_> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    rows.iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| v)
}

fn counter(rows: &[Row], name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(rows, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?} in {rows:?}"),
    }
}

fn gauge(rows: &[Row], name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(rows, name, labels) {
        Some(DebugValue::Gauge(g)) => g.0,
        other => panic!("{name} {labels:?}: {other:?} in {rows:?}"),
    }
}

#[test]
fn client_calls_count_outcomes_latency_and_in_flight() {
    let rows = capture(|| {
        let ok = CallTimer::client("resize", Kind::Call);
        let failed = CallTimer::client("resize", Kind::Call);
        let gone = CallTimer::client("resize", Kind::Call);
        ok.finish_call(&Ok::<(), Error>(()));
        failed.finish_call(&Err::<(), _>(Error::Timeout(std::time::Duration::ZERO)));
        drop(gone);
        CallTimer::client("notify", Kind::Cast).finish_call(&Ok::<(), Error>(()));
    });
    let call = [("method", "resize"), ("kind", "call")];
    let with = |o| [call[0], call[1], ("outcome", o)];
    assert_eq!(counter(&rows, CLIENT_CALLS, &with(OK)), 1);
    assert_eq!(counter(&rows, CLIENT_CALLS, &with("Timeout")), 1);
    assert_eq!(counter(&rows, CLIENT_CALLS, &with(CANCELLED)), 1);
    let cast = [("method", "notify"), ("kind", "cast"), ("outcome", OK)];
    assert_eq!(counter(&rows, CLIENT_CALLS, &cast), 1);
    match find(&rows, CLIENT_CALL_DURATION, &call) {
        Some(DebugValue::Histogram(v)) => assert_eq!(v.len(), 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(gauge(&rows, CLIENT_CALLS_IN_FLIGHT, &call), 0.0);
}

#[test]
fn in_flight_counts_calls_under_way() {
    let mut running = None;
    let rows = capture(|| {
        let a = CallTimer::client("slow", Kind::Call);
        running = Some(CallTimer::client("slow", Kind::Call));
        a.finish_call(&Ok::<(), Error>(()));
    });
    let labels = [("method", "slow"), ("kind", "call")];
    assert_eq!(gauge(&rows, CLIENT_CALLS_IN_FLIGHT, &labels), 1.0);
    assert!(running.is_some());
}

#[test]
fn server_labels_only_registered_methods_and_known_codes() {
    register_methods(["observe_test_registered"]);
    let rows = capture(|| {
        CallTimer::server("observe_test_registered", Kind::Call)
            .finish_served(&Err::<(), _>(HandlerError::new("MyAppError", "nope")));
        CallTimer::server("made-up-by-a-peer-1", Kind::Cast).finish_served(&Ok::<(), _>(()));
        CallTimer::server("made-up-by-a-peer-2", Kind::Cast).finish_served(&Ok::<(), _>(()));
    });
    let remote = [
        ("method", "observe_test_registered"),
        ("kind", "call"),
        ("outcome", "Remote"),
    ];
    assert_eq!(counter(&rows, SERVER_REQUESTS, &remote), 1);
    let unknown = [
        ("method", UNKNOWN_METHOD),
        ("kind", "cast"),
        ("outcome", OK),
    ];
    assert_eq!(counter(&rows, SERVER_REQUESTS, &unknown), 2);
    assert!(
        !rows
            .iter()
            .any(|(_, l, _)| l.iter().any(|(_, v)| v.contains("made-up"))),
        "a peer's method name became a label: {rows:?}"
    );
}

#[test]
fn rejections_by_reason_include_forbidden() {
    let counters = Counters::default();
    let rows = capture(|| {
        counters.reject(RejectReason::Replay);
        counters.reject(RejectReason::Replay);
        counters.reject(RejectReason::UnknownKey);
        counters.forbid();
    });
    assert_eq!(counter(&rows, REJECTIONS, &[("reason", "replay")]), 2);
    assert_eq!(counter(&rows, REJECTIONS, &[("reason", "unknown_key")]), 1);
    assert_eq!(counter(&rows, REJECTIONS, &[("reason", FORBIDDEN)]), 1);
    // The counters the application reads agree.
    let snap = counters.snapshot();
    assert_eq!(
        (snap.rejected_for(RejectReason::Replay), snap.forbidden),
        (2, 1)
    );
}

#[test]
fn permissive_admissions_by_class_and_what_they_lacked() {
    let rows = capture(|| {
        record_permissive(None, true, true);
        record_permissive(Some(PeerClass::Guests), false, true);
        record_permissive(Some(PeerClass::Guests), false, true);
        record_permissive(Some(PeerClass::ControlPlane), false, false);
    });
    let unproven = [
        ("class", "unproven"),
        ("lacking", "authentication_and_seal"),
    ];
    assert_eq!(counter(&rows, PERMISSIVE_ADMISSIONS, &unproven), 1);
    let guests = [("class", "guests"), ("lacking", "seal")];
    assert_eq!(counter(&rows, PERMISSIVE_ADMISSIONS, &guests), 2);
    assert_eq!(rows.len(), 2, "nothing lacking is not counted: {rows:?}");
}

#[test]
fn replay_gauge_follows_the_guards_and_forgets_a_dropped_one() {
    let now = 1_000_000;
    let kept = ReplayGuard::new(ReplayConfig::default());
    let rows = capture(|| {
        let dropped = ReplayGuard::new(ReplayConfig::default());
        let id = MessageId::random();
        assert!(dropped.check_and_record("guest:g1", id, now, now).is_ok());
        // A replay is refused and takes no room.
        assert_eq!(
            dropped.check_and_record("guest:g1", id, now, now),
            Err(RejectReason::Replay)
        );
        for _ in 0..3 {
            let fresh = MessageId::random();
            assert!(
                kept.check_and_record("control:api", fresh, now, now)
                    .is_ok()
            );
            assert!(
                dropped
                    .check_and_record("control:tm", fresh, now, now)
                    .is_ok()
            );
        }
        assert_eq!((dropped.len(), kept.len()), (4, 3));
    });
    // `dropped` took its 1 + 3 ids back; `kept` still holds its 3.
    assert_eq!(gauge(&rows, REPLAY_GUARD_IDS, &[("holder", "guests")]), 0.0);
    assert_eq!(
        gauge(&rows, REPLAY_GUARD_IDS, &[("holder", "control")]),
        3.0
    );
}

#[test]
fn replay_gauge_sums_live_guards() {
    let now = 1_000_000;
    let guard = ReplayGuard::new(ReplayConfig::default());
    let rows = capture(|| {
        for _ in 0..2 {
            let id = MessageId::random();
            assert!(guard.check_and_record("guest:g1", id, now, now).is_ok());
        }
        // Pruned once the window passed: the gauge goes down with the ledger.
        let later = now + ReplayConfig::default().skew_ms + 1;
        let id = MessageId::random();
        assert!(
            guard
                .check_and_record("control:api", id, later, later)
                .is_ok()
        );
    });
    assert_eq!(guard.len(), 1);
    assert_eq!(gauge(&rows, REPLAY_GUARD_IDS, &[("holder", "guests")]), 0.0);
    assert_eq!(
        gauge(&rows, REPLAY_GUARD_IDS, &[("holder", "control")]),
        1.0
    );
}

#[test]
fn reconnects_and_losses() {
    let rows = capture(|| {
        record_connection_lost("amqp");
        record_reconnect("amqp", false);
        record_reconnect("amqp", true);
    });
    assert_eq!(
        counter(&rows, TRANSPORT_CONNECTIONS_LOST, &[("transport", "amqp")]),
        1
    );
    let ok = [("transport", "amqp"), ("outcome", OK)];
    assert_eq!(counter(&rows, TRANSPORT_RECONNECTS, &ok), 1);
    let failed = [("transport", "amqp"), ("outcome", "failed")];
    assert_eq!(counter(&rows, TRANSPORT_RECONNECTS, &failed), 1);
}

#[test]
fn cached_keys_reach_each_recorder_in_force() {
    // The keys of this method are built here, with no recorder in force...
    CallTimer::client("observe_test_cached", Kind::Call).finish_call(&Ok::<(), Error>(()));
    CallTimer::server(UNKNOWN_METHOD, Kind::Cast).finish_served(&Ok::<(), _>(()));
    // ...and every later recorder still gets each call, once, with its own values.
    for _ in 0..2 {
        let rows = capture(|| {
            CallTimer::client("observe_test_cached", Kind::Call).finish_call(&Ok::<(), Error>(()));
            CallTimer::client("observe_test_cached", Kind::Call)
                .finish_call(&Err::<(), _>(Error::Timeout(std::time::Duration::ZERO)));
            CallTimer::server("observe_test_made_up", Kind::Cast).finish_served(&Ok::<(), _>(()));
        });
        let call = [("method", "observe_test_cached"), ("kind", "call")];
        let with = |o| [call[0], call[1], ("outcome", o)];
        assert_eq!(counter(&rows, CLIENT_CALLS, &with(OK)), 1);
        assert_eq!(counter(&rows, CLIENT_CALLS, &with("Timeout")), 1);
        assert_eq!(gauge(&rows, CLIENT_CALLS_IN_FLIGHT, &call), 0.0);
        let unknown = [
            ("method", UNKNOWN_METHOD),
            ("kind", "cast"),
            ("outcome", OK),
        ];
        assert_eq!(counter(&rows, SERVER_REQUESTS, &unknown), 1);
    }
}
