//! `trove_cluster`: a Trove-like control plane (API, task manager, conductor) and N guest
//! agents talking sealrpc in one process, on the in-memory transport or RabbitMQ.
//!
//! [`run_demo`] runs the phases in order: Trove-shaped traffic ([`traffic`]), latency and
//! throughput per security mode ([`bench`]), the compromised-guest attack table
//! ([`attack_rows`]), and a rolling upgrade on a fresh cluster ([`upgrade`]). On the local
//! RabbitMQ cluster, `--node-loss` adds a node loss in the middle of traffic ([`node_loss`]).
//! `--fleet N` runs only the fleet phase ([`fleet`]): N guests provisioned in bulk, each
//! with its own broker user and connection.

pub mod api;
mod attack_kit;
mod attack_review;
mod attack_review_broker;
mod attack_review_hops;
pub mod attack_rows;
pub mod attacks;
pub mod bench;
pub mod cluster;
pub mod fleet;
pub mod fleet_guest;
mod fleet_phases;
pub mod forge;
pub mod guest;
pub mod keys;
pub mod ledger;
pub mod msgpack;
pub mod net;
pub mod node_loss;
pub mod report;
pub mod services;
pub mod traffic;
pub mod upgrade;
pub mod usage;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sealrpc_core::security::RejectReason;

use attacks::Row;
use bench::{BenchConfig, ModeResult};
use cluster::{Cluster, ClusterConfig};
use ledger::Ledger;
use net::TransportChoice;
use traffic::TrafficReport;
use upgrade::UpgradeReport;

/// The demo's error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the demo prints.
pub type Out<'a> = &'a mut (dyn std::io::Write + Send);

/// Polls `done` every 5 ms until it holds or `timeout` passes; returns its last value.
pub async fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until no handler has run for 150 ms (the cluster is quiet), at most 10 s.
pub async fn settle(ledger: &Ledger) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = ledger.total_executed();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = ledger.total_executed();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Which phases to run, and how big.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Guest agents (default 8).
    pub guests: usize,
    /// The transport.
    pub transport: TransportChoice,
    /// Run the traffic, measurements and attack table.
    pub cluster_phases: bool,
    /// Run the rolling upgrade.
    pub upgrade: bool,
    /// After the traffic, stop the control plane's broker node mid-traffic (the local
    /// cluster of `rpc-amqp/scripts/rabbitmq-cluster.sh`).
    pub node_loss: bool,
    /// The measurements (`rounds = 0` skips them).
    pub bench: BenchConfig,
}

impl DemoOptions {
    /// Everything, with `guests` guests on `transport`.
    pub fn new(guests: usize, transport: TransportChoice) -> Self {
        let bench = match transport {
            TransportChoice::Memory => BenchConfig {
                rounds: 6,
                batch: 250,
                concurrency: 4,
            },
            TransportChoice::Amqp(_) => BenchConfig {
                rounds: 3,
                batch: 60,
                concurrency: 4,
            },
        };
        Self {
            guests,
            transport,
            cluster_phases: true,
            upgrade: true,
            node_loss: false,
            bench,
        }
    }
}

/// Everything the demo measured.
#[derive(Debug, Default)]
pub struct DemoReport {
    /// The traffic phase.
    pub traffic: Option<TrafficReport>,
    /// The attack table.
    pub attacks: Vec<Row>,
    /// Per-mode measurements.
    pub bench: Vec<ModeResult>,
    /// The rolling upgrade.
    pub upgrade: Option<UpgradeReport>,
    /// The node-loss phase.
    pub node_loss: Option<node_loss::NodeLossReport>,
    /// Rejections by reason over the whole run.
    pub rejections: BTreeMap<RejectReason, u64>,
    /// RPCs made (traffic, upgrade and measurements).
    pub calls: u64,
    /// Failed RPCs (must be 0).
    pub failures: u64,
}

impl DemoReport {
    /// True when every instance became ACTIVE, every attack was rejected for its expected
    /// reason, nothing failed, and the upgrade (if run) went through cleanly.
    pub fn success(&self) -> bool {
        let upgrade_ok = self.upgrade.as_ref().is_none_or(|u| {
            u.failures == 0
                && u.unsigned_last_round == 0
                && u.rejections == 0
                && u.newer_sender_accepted
        });
        let traffic_ok = self
            .traffic
            .as_ref()
            .is_none_or(|t| t.active == t.instances);
        let node_loss_ok = self
            .node_loss
            .as_ref()
            .is_none_or(node_loss::NodeLossReport::success);
        self.failures == 0
            && traffic_ok
            && node_loss_ok
            && self.attacks.iter().all(Row::as_expected)
            && upgrade_ok
    }
}

/// Runs the demo, printing to `out`.
pub async fn run_demo(opts: &DemoOptions, out: Out<'_>) -> Result<DemoReport, BoxError> {
    let mut report = DemoReport::default();
    let started = Instant::now();
    if opts.cluster_phases {
        cluster_phases(opts, &mut report, out).await?;
    }
    if opts.upgrade {
        let _ = writeln!(
            out,
            "\n== rolling upgrade ({} guests, fresh cluster) ==",
            opts.guests.max(2)
        );
        let u = upgrade::run(opts.guests, &opts.transport, out).await?;
        report.calls += u.calls;
        report.failures += u.failures;
        report.upgrade = Some(u);
    }
    summary(&report, started.elapsed(), out);
    Ok(report)
}

async fn cluster_phases(
    opts: &DemoOptions,
    report: &mut DemoReport,
    out: Out<'_>,
) -> Result<(), BoxError> {
    let config = ClusterConfig::new(opts.guests.max(2), opts.transport.clone());
    let cluster = Cluster::start(&config).await?;
    let transport = if cluster.net.is_amqp() {
        let creds = if cluster.net.per_guest_credentials() {
            "each guest with its own generated broker user"
        } else {
            "guests share the control plane's broker user"
        };
        format!("RabbitMQ ({creds})")
    } else {
        "in-memory transport".to_owned()
    };
    let _ = writeln!(
        out,
        "== trove_cluster: api, taskmanager, conductor + {} guests on the {transport} ==",
        cluster.guests.len()
    );
    if let Some(note) = &cluster.net.note {
        let _ = writeln!(out, "  note: {note}");
    }
    let _ = writeln!(
        out,
        "  operator: master secret + rotation state + {} guest bundles (0600) in {}; each guest loaded only its own",
        cluster.guests.len(),
        cluster.operator.dir().display()
    );
    let _ = writeln!(out, "\n== traffic ==");
    let t = traffic::run(&cluster, out).await;
    let t = match t {
        Ok(t) => t,
        Err(e) => {
            cluster.shutdown().await;
            return Err(e);
        }
    };
    report.traffic = Some(t);

    if opts.node_loss {
        let _ = writeln!(out, "\n== node loss (broker cluster) ==");
        match node_loss::run(&cluster, out).await {
            Ok(n) => report.node_loss = Some(n),
            Err(e) => {
                cluster.shutdown().await;
                return Err(e);
            }
        }
    }

    if opts.bench.rounds > 0 {
        let _ = writeln!(
            out,
            "\n== latency and throughput per security mode (taskmanager -> guest get_status, 1 KiB args, {} rounds x {} calls per mode, {} in flight, interleaved) ==",
            opts.bench.rounds, opts.bench.batch, opts.bench.concurrency
        );
        let b = bench::run(&cluster, opts.bench).await?;
        report::bench_table(&b, out);
        report.calls += b.iter().map(|r| r.calls as u64).sum::<u64>();
        report.failures += b.iter().map(|r| r.failures as u64).sum::<u64>();
        report.bench = b;
    }

    let (a, b) = (&cluster.guests[0], &cluster.guests[1]);
    let _ = writeln!(
        out,
        "\n== attack table: guest A = {} (holds only its own bundle) attacks guest B = {} and the control plane ==",
        a.id, b.id
    );
    let rows = attack_rows::run(&cluster).await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            cluster.shutdown().await;
            return Err(e);
        }
    };
    report::attack_table(&rows, out);
    let ok = rows.iter().filter(|r| r.as_expected()).count();
    let _ = writeln!(
        out,
        "  => {ok}/{} attacks REJECTED for the expected reason; nothing executed",
        rows.len()
    );
    report.attacks = rows;
    report.calls += cluster.ledger.calls();
    report.failures += cluster.ledger.failures();
    report.rejections = cluster.rejections();
    cluster.shutdown().await;
    Ok(())
}

fn summary(report: &DemoReport, elapsed: Duration, out: Out<'_>) {
    let _ = writeln!(out, "\n== summary ==");
    let _ = writeln!(
        out,
        "  RPCs made:             {} (failures: {})",
        report.calls, report.failures
    );
    if !report.attacks.is_empty() {
        let ok = report.attacks.iter().filter(|r| r.as_expected()).count();
        let _ = writeln!(
            out,
            "  attacks rejected:      {ok}/{}",
            report.attacks.len()
        );
    }
    report::rejections(&report.rejections, out);
    if let Some(u) = &report.upgrade {
        let _ = writeln!(
            out,
            "  rolling upgrade:       {} RPCs, {} failures, {} rejections, unsigned in the last round before the flip: {}",
            u.calls, u.failures, u.rejections, u.unsigned_last_round
        );
    }
    if let (Some(plain), Some(full)) = (report.bench.first(), report.bench.last()) {
        let _ = writeln!(
            out,
            "  signed+sealed vs plain: p50 {:.2}x, throughput {:.2}x",
            full.p50.as_secs_f64() / plain.p50.as_secs_f64().max(1e-9),
            full.throughput / plain.throughput.max(1e-9)
        );
    }
    let verdict = if report.success() { "OK" } else { "FAILED" };
    let _ = writeln!(
        out,
        "  result:                {verdict} in {:.1} s",
        elapsed.as_secs_f64()
    );
}
