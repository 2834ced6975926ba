//! The main demo: a Trove-like control plane (API, task manager, conductor) and N guest
//! agents in one process, real signed and sealed traffic, the live compromised-guest attack
//! table, the cost of each security mode, and a rolling upgrade.
//!
//! ```sh
//! cargo run --release --example trove_cluster                 # in-memory transport
//! cargo run --release --example trove_cluster -- --amqp       # local RabbitMQ
//! cargo run --release --example trove_cluster -- --upgrade-demo
//! # on the local three-node cluster, with a node loss mid-traffic (root; see docs/amqp.md)
//! SEALRPC_RABBITMQCTL_NODE=c1@localhost cargo run --release --example trove_cluster -- \
//!     --amqp "$(rpc-amqp/scripts/rabbitmq-cluster.sh urls)" --node-loss
//! # a fleet of 1,000 guests on the local RabbitMQ (needs rabbitmq_management; see
//! # docs/reliability.md, "A fleet of 1,000 guests")
//! cargo run --release --example trove_cluster -- --amqp --fleet 1000
//! # serve Prometheus metrics while it runs, and for 60 s after
//! cargo run --release --example trove_cluster -- --metrics 127.0.0.1:9464 --metrics-linger 60
//! ```
//!
//! Exits non-zero if any attack is not rejected for its expected reason or any call fails.

use clap::Parser;
use sealrpc_examples::trove::fleet::{self, FleetOptions};
use sealrpc_examples::trove::net::TransportChoice;
use sealrpc_examples::trove::{DemoOptions, run_demo};

/// A Trove-like cluster on sealrpc.
#[derive(Debug, Parser)]
#[command(name = "trove_cluster")]
struct Args {
    /// Number of guest agents.
    #[arg(long, default_value_t = 8)]
    guests: usize,
    /// Run on RabbitMQ (default URL: $AMQP_ADDR or amqp://guest:guest@127.0.0.1:5672/%2f).
    #[arg(long, num_args = 0..=1, value_name = "URL")]
    amqp: Option<Option<String>>,
    /// Run only the rolling upgrade.
    #[arg(long)]
    upgrade_demo: bool,
    /// Skip the rolling upgrade.
    #[arg(long, conflicts_with = "upgrade_demo")]
    no_upgrade: bool,
    /// Skip the per-mode measurements.
    #[arg(long)]
    no_bench: bool,
    /// On the local RabbitMQ cluster (`--amqp $(rpc-amqp/scripts/rabbitmq-cluster.sh urls)`):
    /// stop the control plane's node in the middle of traffic, then bring it back.
    #[arg(long, requires = "amqp")]
    node_loss: bool,
    /// Run only the fleet phase with this many guests (RabbitMQ, bulk provisioning through
    /// the management API at $SEALRPC_MGMT_ADDR, default 127.0.0.1:15672).
    #[arg(long, requires = "amqp", value_name = "N")]
    fleet: Option<usize>,
    /// With --fleet: the default connection options instead of the lean ones (to compare
    /// memory per guest connection).
    #[arg(long, requires = "fleet")]
    fleet_default_options: bool,
    /// Serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9464; any path, `/metrics` by
    /// convention) while the demo runs. See docs/observability.md.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// With --metrics: keep serving for SECS after the demo ends, so it can be scraped.
    #[arg(long, value_name = "SECS", requires = "metrics", default_value_t = 0)]
    metrics_linger: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,lapin=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(addr) = args.metrics {
        if let Err(e) = sealrpc_examples::metrics_endpoint::install(addr) {
            eprintln!("trove_cluster: cannot serve metrics on {addr}: {e}");
            return std::process::ExitCode::FAILURE;
        }
        eprintln!("trove_cluster: Prometheus metrics on http://{addr}/metrics");
    }
    let transport = match args.amqp {
        None => TransportChoice::Memory,
        Some(url) => {
            TransportChoice::Amqp(url.unwrap_or_else(|| sealrpc_amqp::AmqpOptions::from_env().url))
        }
    };
    if let (Some(n), TransportChoice::Amqp(url)) = (args.fleet, &transport) {
        let mut opts = FleetOptions::new(n, url.clone());
        opts.lean = !args.fleet_default_options;
        let mut out = std::io::stdout();
        return match fleet::run(&opts, &mut out).await {
            Ok(report) if report.success() => std::process::ExitCode::SUCCESS,
            Ok(_) => std::process::ExitCode::FAILURE,
            Err(e) => {
                eprintln!("trove_cluster: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mut opts = DemoOptions::new(args.guests, transport);
    opts.cluster_phases = !args.upgrade_demo;
    opts.upgrade = !args.no_upgrade;
    opts.node_loss = args.node_loss;
    if args.no_bench {
        opts.bench.rounds = 0;
    }
    let mut out = std::io::stdout();
    let result = run_demo(&opts, &mut out).await;
    if args.metrics.is_some() && args.metrics_linger > 0 {
        eprintln!(
            "trove_cluster: serving metrics for {} s more",
            args.metrics_linger
        );
        tokio::time::sleep(std::time::Duration::from_secs(args.metrics_linger)).await;
    }
    match result {
        Ok(report) if report.success() => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("trove_cluster: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
