//! `rotate --deliver`: send the rotated guests their new bundles over the bus (AMQP), with
//! bounded concurrency and a progress line, through the library's `Rekey`.

use std::path::Path;
use std::sync::Arc;

use clap::Args;
use sealrpc_signers::{ControlPlaneKeys, MasterSecret, RotationTable};

/// How `--deliver` reaches the guests.
#[derive(Args, Debug, Clone)]
pub struct DeliverArgs {
    /// The broker, `amqp://user:password@host:port/vhost` (built with the `amqp` feature).
    #[arg(long, value_name = "URL")]
    pub amqp: Option<String>,
    /// The bus's control exchange.
    #[arg(long, default_value = "sealrpc")]
    pub control_exchange: String,
    /// The guest agents' topic.
    #[arg(long, default_value = "guestagent")]
    pub agent_topic: String,
    /// The control-plane service to sign as (default: the first recorded).
    #[arg(long = "as-service")]
    pub service: Option<String>,
    /// Guests delivered at once (bulk rotation).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Attempts per guest while it is unreachable (bounded backoff, 200 ms to 10 s).
    #[arg(long, default_value_t = 8)]
    pub attempts: u32,
}

type Res<T> = Result<T, String>;

/// Delivers the bundles of `guests` (rotated in `table`) and prints progress on stderr.
pub fn deliver(
    args: &DeliverArgs,
    master: Arc<MasterSecret>,
    table: RotationTable,
    guests: Vec<String>,
) -> Res<()> {
    let url = args
        .amqp
        .clone()
        .ok_or("--deliver needs --amqp URL (the bus the guest agents listen on)")?;
    let service = match &args.service {
        Some(s) => s.clone(),
        None => table
            .services()
            .into_iter()
            .next()
            .ok_or("no control-plane service recorded")?,
    };
    let keys =
        ControlPlaneKeys::new(master, Arc::new(table), &service).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run(args, &url, keys, guests))
}

#[cfg(feature = "amqp")]
async fn run(
    args: &DeliverArgs,
    url: &str,
    keys: ControlPlaneKeys,
    guests: Vec<String>,
) -> Res<()> {
    use sealrpc_signers::rekey::{Rekey, RetryPolicy};
    use std::time::Duration;
    let opts = sealrpc_amqp::AmqpOptions {
        control_exchange: args.control_exchange.clone(),
        connection_name: Some("sealrpc-keys".into()),
        ..sealrpc_amqp::AmqpOptions::default().with_url(url)
    };
    let transport: Arc<dyn sealrpc_core::transport::Transport> = Arc::new(
        sealrpc_amqp::AmqpTransport::connect(opts)
            .await
            .map_err(|e| e.to_string())?,
    );
    let client = sealrpc_core::Client::builder(transport, keys.security().build())
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let rekey = Rekey::new(keys)
        .topic(&args.agent_topic)
        .retry(RetryPolicy::new(
            args.attempts,
            Duration::from_millis(200),
            Duration::from_secs(10),
        ));
    let total = guests.len();
    let report = rekey
        .deliver_all(&client, guests, args.concurrency, |p| {
            eprint!("\rdelivered {}/{} ({} failed)", p.done, p.total, p.failed);
        })
        .await;
    eprintln!();
    for (guest, e) in &report.failed {
        eprintln!("sealrpc-keys: {guest}: {e}");
    }
    println!(
        "delivered {} of {total} bundles ({} already current, {} failed)",
        report.installed + report.already_current,
        report.already_current,
        report.failed.len()
    );
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} deliveries failed; the previous epoch stays valid for the grace window: run `deliver --guest ID` (or `deliver --all-guests`, which skips guests already current)",
            report.failed.len()
        ))
    }
}

#[cfg(not(feature = "amqp"))]
async fn run(_: &DeliverArgs, _: &str, _: ControlPlaneKeys, _: Vec<String>) -> Res<()> {
    Err("--deliver --amqp needs sealrpc-keys built with the `amqp` feature (on by default: cargo build -p sealrpc-keys)".into())
}

/// The master secret of key directory `dir`.
pub fn master(dir: &Path) -> Res<Arc<MasterSecret>> {
    MasterSecret::load(&dir.join(sealrpc_signers::rotation_file::MASTER_FILE))
        .map(Arc::new)
        .map_err(|e| e.to_string())
}
