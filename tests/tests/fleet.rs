//! A fleet of guests on RabbitMQ, each with its own bundle, broker user and connection,
//! provisioned in bulk through the management API: every guest answers a call, one fanout
//! reaches all of them, one full rekey over the bus installs every new bundle while calls
//! keep running, no call fails, and every user, queue and policy is gone afterwards.
//! CI runs 100 guests; the full 1,000 is `cargo test -p sealrpc-tests --test fleet --
//! --ignored` (or the demo: `trove_cluster --amqp --fleet 1000`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealrpc_amqp::AmqpOptions;
use sealrpc_amqp::management::{ManagementApi, ManagementError};
use sealrpc_examples::trove::fleet::{self, FleetOptions, FleetReport};

async fn gone(api: &ManagementApi, path: &str) -> bool {
    matches!(
        api.get(path).await,
        Err(ManagementError::Status { status: 404, .. })
    )
}

async fn run_fleet(guests: usize) -> FleetReport {
    let mut opts = FleetOptions::new(guests, AmqpOptions::from_env().url);
    opts.call_rounds = 1;
    let mut out = Vec::new();
    let report = fleet::run(&opts, &mut out).await;
    println!("{}", String::from_utf8_lossy(&out));
    let report = report.unwrap();
    let api = ManagementApi::from_env();
    for u in &report.users {
        assert!(!api.user_exists(u).await.unwrap(), "user {u} left behind");
    }
    for q in &report.queues {
        assert!(
            gone(&api, &format!("/api/queues/%2F/{q}")).await,
            "queue {q} left behind"
        );
    }
    let (_, name) = report.policy.clone().unwrap();
    assert!(gone(&api, &format!("/api/operator-policies/%2F/{name}")).await);
    report
}

fn check(report: &FleetReport, guests: usize) {
    assert_eq!(report.provisioned, guests);
    assert_eq!(report.users.len(), guests, "a broker user per guest");
    if report.cap_note.is_none() {
        assert_eq!(report.connected, guests, "a connection per guest");
    }
    let p = &report.phases;
    assert_eq!(p.call_failures, 0);
    assert_eq!(p.calls, report.connected as u64, "every guest called");
    assert_eq!(p.fanout_reached, report.connected, "the fanout reached all");
    assert_eq!(p.rekey_installed, report.connected, "every guest rekeyed");
    assert_eq!(p.rekey_failed, 0);
    assert_eq!(p.load_failures, 0, "no call failed during the rekey");
    assert!(report.cleaned_up);
    assert!(report.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_100_guests_is_called_reached_rekeyed_and_removed() {
    let report = run_fleet(100).await;
    check(&report, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the full fleet: 1,000 guests, about a minute; run with --ignored"]
async fn a_fleet_of_1000_guests_is_called_reached_rekeyed_and_removed() {
    let report = run_fleet(1000).await;
    check(&report, 1000);
}
