//! Load: many concurrent signed+sealed clients (guests and control-plane services) calling
//! several servers, on the memory transport and on RabbitMQ. Count- and time-limited,
//! loopback only. Prints throughput, p50/p99/p999 latency and resident memory; asserts
//! zero failed calls (never timings).
//!
//! Knobs: `SEALRPC_LOAD_CALLS` (calls per worker), `SEALRPC_LOAD_SECS` (time limit),
//! `SEALRPC_LOAD_GUESTS`, `SEALRPC_LOAD_CP`, `SEALRPC_LOAD_CONCURRENCY`. The `#[ignore]`d
//! `*_long` variants default to larger runs (see docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::MemoryTransport;
use sealrpc_core::transport::Transport;
use sealrpc_tests::load::{Cluster, LoadSpec, report};
use sealrpc_tests::metrics::{knob, rss_kib};

fn spec(calls: u64, secs: u64) -> LoadSpec {
    LoadSpec {
        guests: knob("SEALRPC_LOAD_GUESTS", 16),
        cp_clients: knob("SEALRPC_LOAD_CP", 4),
        conductors: 2,
        calls_per_worker: knob("SEALRPC_LOAD_CALLS", calls),
        concurrency: knob("SEALRPC_LOAD_CONCURRENCY", 4),
        time_limit: Duration::from_secs(knob("SEALRPC_LOAD_SECS", secs)),
        timeout: Duration::from_secs(30),
        casts: false,
    }
}

/// The tests of this binary run one at a time, so that RSS figures are each test's own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the load on a started cluster and checks it.
async fn run(label: &str, spec: &LoadSpec, cluster: Cluster) {
    let rss_before = rss_kib();
    let t0 = Instant::now();
    let outcomes = cluster.drive(spec).await;
    let elapsed = t0.elapsed();
    let rss_after = rss_kib();
    let (ok, failed) = report(label, &outcomes, elapsed);
    println!(
        "[{label}] rss before={}KiB after={}KiB; replay guard: conductor={} api={}; rejections: conductor={} api={}",
        rss_before.unwrap_or(0),
        rss_after.unwrap_or(0),
        cluster.cond_security.replay_guard().len(),
        cluster.api_security.replay_guard().len(),
        cluster.cond_security.counters().total_rejected(),
        cluster.api_security.counters().total_rejected(),
    );
    let errors: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.error.as_ref().map(|e| format!("{:?}: {e}", o.kind)))
        .take(5)
        .collect();
    assert_eq!(failed, 0, "failed calls, e.g. {errors:?}");
    assert!(ok > 0, "no call completed");
    // Every call finished: nothing is left in any pending table.
    assert_eq!(cluster.in_flight(), 0);
    // Nothing was rejected anywhere: all traffic was signed, sealed and fresh.
    assert_eq!(cluster.cond_security.counters().total_rejected(), 0);
    assert_eq!(cluster.api_security.counters().total_rejected(), 0);
    for g in &cluster.guests {
        assert_eq!(g.security.counters().total_rejected(), 0, "{}", g.id);
    }
    cluster.shutdown().await;
    println!("[{label}] rss after shutdown={}KiB", rss_kib().unwrap_or(0));
}

async fn memory(calls: u64, secs: u64) {
    let _serial = SERIAL.lock().await;
    let spec = spec(calls, secs);
    let t: Arc<dyn Transport> = Arc::new(MemoryTransport::with_capacity(256));
    let cluster = Cluster::start(&spec, &t, std::slice::from_ref(&t)).await;
    run("load/memory", &spec, cluster).await;
}

async fn amqp_transport() -> AmqpTransport {
    let opts = AmqpOptions::from_env();
    sealrpc_amqp::wait_for_broker(&opts.url, Duration::from_secs(30))
        .await
        .expect("broker up");
    AmqpTransport::connect(opts).await.expect("connect")
}

async fn amqp(calls: u64, secs: u64) {
    let _serial = SERIAL.lock().await;
    let spec = spec(calls, secs);
    // The control plane shares one connection; each guest has its own, as separate VMs do.
    let cp_amqp = amqp_transport().await;
    let cp: Arc<dyn Transport> = Arc::new(cp_amqp.clone());
    let mut guests: Vec<Arc<dyn Transport>> = Vec::new();
    for _ in 0..spec.guests {
        guests.push(Arc::new(amqp_transport().await));
    }
    let cluster = Cluster::start(&spec, &cp, &guests).await;
    run("load/amqp", &spec, cluster).await;
    // Confirms of calls whose reply came first finish on their own: none is left behind.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cp_amqp.late_confirms() > 0 {
        assert!(Instant::now() < deadline, "late call confirms left behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_memory() {
    memory(250, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_amqp() {
    amqp(100, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long load run; see docs/reliability.md"]
async fn load_memory_long() {
    memory(5_000, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long load run on RabbitMQ; see docs/reliability.md"]
async fn load_amqp_long() {
    amqp(2_000, 300).await;
}
