//! The overhead run: the echo workload under every mode, per payload size, on the memory
//! transport and (optionally) on RabbitMQ with the raw lapin floors and oslo.messaging
//! beside it, every row interleaved with the others within each (transport, size) block.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::MemoryTransport;
use sealrpc_core::transport::Transport;

use crate::BoxError;
use crate::modes::{BenchKeys, SecMode};
use crate::oslo::echo::OsloEcho;
use crate::raw::{RawEcho, RawSemantics};
use crate::report::{Machine, Report, Row};
use crate::runner::{Budget, Setup, run_interleaved};
use crate::workload::EchoRpc;
use crate::{oslo, pieces_ratio};

/// The client's and the server's transports.
type ClientServer = (Arc<dyn Transport>, Arc<dyn Transport>);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tiny budgets (CI smoke): every row, no meaningful figures.
    pub quick: bool,
    /// Run on RabbitMQ at this URL too.
    pub amqp: Option<String>,
    /// Payload sizes (label, bytes).
    pub sizes: Vec<(String, usize)>,
    /// Modes, in report order.
    pub modes: Vec<SecMode>,
    /// Calls per batch instead of the time slice.
    pub calls: Option<u64>,
    /// Calls in flight in the concurrent batches.
    pub in_flight: usize,
    /// Interleaved rounds (default: 1 quick, 12 full).
    pub rounds: Option<usize>,
    /// Skip the memory transport.
    pub no_memory: bool,
    /// Skip the raw lapin floors on AMQP.
    pub no_raw: bool,
    /// Skip the oslo.messaging row on AMQP (it runs only in full runs).
    pub no_oslo: bool,
    /// The sealrpc rows publish calls straight to queues (`AmqpOptions::publish_to_queues`).
    pub publish_to_queues: bool,
    /// The command line, for the report.
    pub command: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            amqp: None,
            sizes: crate::SIZES
                .iter()
                .map(|(l, n)| ((*l).to_owned(), *n))
                .collect(),
            modes: SecMode::ALL.to_vec(),
            calls: None,
            in_flight: 32,
            rounds: None,
            no_memory: false,
            no_raw: false,
            no_oslo: false,
            publish_to_queues: false,
            command: String::new(),
        }
    }
}

impl Options {
    fn budget(&self) -> Budget {
        let (rounds, slice, min_calls, warmup) = if self.quick {
            (1, Duration::from_millis(5), 1, 1)
        } else {
            (12, Duration::from_millis(150), 5, 3)
        };
        Budget {
            rounds: self.rounds.unwrap_or(rounds).max(1),
            slice,
            // --calls N: N calls per row and kind, split over the rounds.
            calls: self.calls.map(|n| {
                n.div_ceil(self.rounds.unwrap_or(rounds).max(1) as u64)
                    .max(1)
            }),
            in_flight: self.in_flight.max(1),
            min_calls,
            warmup,
        }
    }
}

/// Parses a size: `100B`, `1KiB`, `64KiB`, `1MiB`, or a plain byte count.
pub fn parse_size(s: &str) -> Option<(String, usize)> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("MiB") {
        (n, 1024 * 1024)
    } else if let Some(n) = t.strip_suffix("KiB") {
        (n, 1024)
    } else if let Some(n) = t.strip_suffix('B') {
        (n, 1)
    } else {
        (t, 1)
    };
    let n: usize = num.parse().ok()?;
    let bytes = n.checked_mul(mult)?;
    let label = match mult {
        1 => format!("{n}B"),
        1024 => format!("{n}KiB"),
        _ => format!("{n}MiB"),
    };
    Some((label, bytes))
}

/// `prefix` and 12 random hex digits: a name no other run uses (topics, queues).
pub fn unique(prefix: &str) -> String {
    let mut id = [0u8; 6];
    sealrpc_core::rand::fill(&mut id);
    format!(
        "{prefix}-{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Progress lines go to stderr so that stdout stays the report.
fn progress(msg: &str) {
    eprintln!("[overhead] {msg}");
}

async fn rpc_setups(
    opts: &Options,
    keys: &BenchKeys,
    client: &Arc<dyn Transport>,
    server: &Arc<dyn Transport>,
    bytes: usize,
    running: &mut Vec<Arc<EchoRpc>>,
) -> Result<Vec<Setup>, BoxError> {
    let run = unique("bench");
    let mut setups = Vec::new();
    for &mode in &opts.modes {
        let topic = format!("{run}-{}", mode.name().replace('+', "_"));
        let rpc = Arc::new(
            EchoRpc::start(
                keys,
                mode,
                Arc::clone(client),
                Arc::clone(server),
                &topic,
                bytes,
            )
            .await?,
        );
        running.push(Arc::clone(&rpc));
        setups.push(Setup::per_call(mode.name(), rpc));
    }
    Ok(setups)
}

/// Starts the oslo.messaging row for one block, or says why it cannot run.
async fn start_oslo(
    url: &str,
    label: &str,
    bytes: usize,
    in_flight: usize,
) -> Result<OsloEcho, String> {
    progress(&format!(
        "amqp {label}: starting the oslo.messaging driver (benches/oslo/run.sh --driver)"
    ));
    let echo = oslo::start(oslo::driver_command(url, bytes), in_flight)
        .await
        .map_err(|e| e.to_string())?;
    progress(&format!(
        "amqp {label}: oslo.messaging {} ready",
        echo.driver().version()
    ));
    Ok(echo)
}

/// The payload of the pieces-bench ratio (`pipeline/signed+sealed/64KiB`).
const PIECES_BYTES: usize = 64 * 1024;

/// Runs the whole report.
pub async fn run(opts: &Options) -> Result<Report, BoxError> {
    let started = Instant::now();
    let budget = opts.budget();
    let keys = BenchKeys::new("0f1e2d3c4b5a6978")?;
    let mut report = Report {
        machine: Machine::probe(),
        command: opts.command.clone(),
        quick: opts.quick,
        seconds: 0.0,
        rows: Vec::new(),
        floors: Vec::new(),
        oslo_note: None,
        pieces: None,
        targets: Vec::new(),
    };
    if opts.amqp.is_some() && (opts.quick || opts.no_oslo) {
        report.oslo_note = Some(if opts.quick { "--quick" } else { "--no-oslo" }.into());
    }

    let mut transports: Vec<(&str, ClientServer)> = Vec::new();
    if !opts.no_memory {
        let mem: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
        transports.push(("memory", (Arc::clone(&mem), mem)));
    }
    let amqp_url = opts.amqp.clone();
    if let Some(url) = &amqp_url {
        let connect = |name: &str| {
            AmqpTransport::connect(AmqpOptions {
                connection_name: Some(name.to_owned()),
                publish_to_queues: opts.publish_to_queues,
                ..AmqpOptions::from_env().with_url(url.clone())
            })
        };
        let c: Arc<dyn Transport> = Arc::new(connect("sealrpc-bench-client").await?);
        let s: Arc<dyn Transport> = Arc::new(connect("sealrpc-bench-server").await?);
        transports.push(("amqp", (c, s)));
    }

    for (tname, (client, server)) in &transports {
        for (label, bytes) in &opts.sizes {
            let mut running = Vec::new();
            let mut setups = rpc_setups(opts, &keys, client, server, *bytes, &mut running).await?;
            let mut raws = Vec::new();
            if *tname == "amqp"
                && !opts.no_raw
                && let Some(url) = &amqp_url
            {
                for sem in RawSemantics::ALL {
                    let raw = Arc::new(RawEcho::start(url, sem, *bytes).await?);
                    raws.push(Arc::clone(&raw));
                    setups.push(Setup::per_call(sem.name(), raw));
                }
            }
            let mut oslo_echo = None;
            if *tname == "amqp"
                && report.oslo_note.is_none()
                && let Some(url) = &amqp_url
            {
                match start_oslo(url, label, *bytes, budget.in_flight).await {
                    Ok(echo) => {
                        let echo = Arc::new(echo);
                        oslo_echo = Some(Arc::clone(&echo));
                        setups.push(Setup::per_batch(oslo::ROW, echo));
                    }
                    Err(why) => report.oslo_note = Some(why),
                }
            }
            progress(&format!(
                "{tname} {label}: {} setups x {} rounds",
                setups.len(),
                budget.rounds
            ));
            let measured = run_interleaved(&setups, &budget).await?;
            for (s, m) in setups.iter().zip(&measured) {
                report.rows.push(Row::new(
                    tname,
                    (label, *bytes),
                    &s.name,
                    m,
                    budget.in_flight,
                ));
            }
            drop(setups);
            for raw in raws {
                raw.close().await;
            }
            if let Some(echo) = oslo_echo {
                echo.close().await;
            }
            for rpc in running {
                if let Ok(mut rpc) = Arc::try_unwrap(rpc) {
                    rpc.shutdown().await;
                }
            }
        }
    }
    if opts.sizes.iter().any(|(_, n)| *n == PIECES_BYTES) {
        progress("pipeline/signed+sealed/64KiB against its primitives");
        let (reps, per) = if opts.quick { (1, 1) } else { (31, 12) };
        let measured =
            tokio::task::spawn_blocking(move || pieces_ratio::measure(PIECES_BYTES, reps, per));
        report.pieces = Some(measured.await??);
    }
    report.machine.load_end = crate::report::load1();
    report.seconds = started.elapsed().as_secs_f64();
    report.finish();
    Ok(report)
}
