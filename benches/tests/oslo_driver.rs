//! The oslo.messaging row's Rust side against a fake driver that speaks the protocol
//! (`fake_oslo_driver.sh`, bash only: no Python, no broker): start-up, failures that skip
//! the row with a reason, batches under the runner's budget, and no process left behind.
//! No timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sealrpc_benches::oslo::error::DriverError;
use sealrpc_benches::oslo::{self, echo::OsloEcho};
use sealrpc_benches::runner::{Budget, CallFuture, EchoCall, Setup, run_interleaved};

fn fake(mode: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fake_oslo_driver.sh"
    ))
    .arg(mode);
    c
}

fn budget(rounds: usize, calls: u64, in_flight: usize) -> Budget {
    Budget {
        rounds,
        slice: Duration::from_millis(1),
        calls: Some(calls),
        in_flight,
        min_calls: 1,
        warmup: 1,
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A per-call row beside the oslo row, to check that both kinds rotate together.
struct Instant;

impl EchoCall for Instant {
    fn call(&self) -> CallFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

async fn start(mode: &str) -> Arc<OsloEcho> {
    Arc::new(
        oslo::start(fake(mode), 4)
            .await
            .expect("the fake driver starts"),
    )
}

#[tokio::test]
async fn batches_follow_the_budget_beside_per_call_rows() {
    let echo = start("ok").await;
    let [pid, server_pid] = echo.driver().pids();
    assert_eq!(echo.driver().version(), "fake");
    assert!(alive(pid) && alive(server_pid));
    let setups = [
        Setup::per_call("instant", Arc::new(Instant)),
        Setup::per_batch(oslo::ROW, echo.clone()),
    ];
    let measured = run_interleaved(&setups, &budget(3, 5, 4)).await.unwrap();
    let o = &measured[1];
    assert_eq!(o.errors, 0);
    assert_eq!(o.seq_calls(), 15, "3 rounds x 5 calls, every latency back");
    assert_eq!(o.seq_wall_ns, 15_000);
    assert_eq!(o.quantile_us(0.5), 1.0);
    assert_eq!(o.conc_calls, 15);
    assert_eq!(o.conc_wall_ns, 7_500);
    assert!(
        o.seq_cpu_ns.is_some(),
        "the driver's CPU is read from /proc"
    );
    assert_eq!(measured[0].seq_calls(), 15);
    echo.close().await;
    assert!(!alive(pid), "the driver is gone after close");
}

#[tokio::test]
async fn a_driver_that_cannot_start_says_why() {
    match oslo::start(fake("exit"), 4).await {
        Err(DriverError::Exited { stderr }) => {
            assert!(stderr.contains("No module named"), "{stderr}");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    match oslo::start(fake("garbage"), 4).await {
        Err(DriverError::Protocol { line, .. }) => assert!(line.starts_with("Traceback")),
        other => panic!("expected Protocol, got {other:?}"),
    }
    let missing = Command::new("/nonexistent/oslo-driver");
    assert!(matches!(
        oslo::start(missing, 4).await,
        Err(DriverError::Spawn { .. })
    ));
}

#[tokio::test]
async fn failed_batches_are_counted_not_fatal() {
    for mode in ["failing-batches", "dies-on-batch"] {
        let echo = start(mode).await;
        let setups = [Setup::per_batch(oslo::ROW, echo.clone())];
        let measured = run_interleaved(&setups, &budget(2, 3, 2)).await.unwrap();
        assert_eq!(measured[0].errors, 4, "{mode}: 2 rounds x 2 batches");
        assert_eq!(measured[0].seq_calls() + measured[0].conc_calls, 0);
        echo.close().await;
    }
}

#[tokio::test]
async fn dropping_the_row_stops_the_driver() {
    let echo = start("ok").await;
    let [pid, _] = echo.driver().pids();
    drop(echo);
    assert!(!alive(pid));
}
