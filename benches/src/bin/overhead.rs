//! `cargo run --release -p sealrpc-benches --bin overhead -- [--quick] [--amqp [URL]] [--json]
//! [--sizes 100B,1KiB,64KiB,1MiB] [--calls N] [--modes plain,signed+sealed] [--in-flight N]
//! [--rounds N] [--no-memory] [--no-raw] [--no-oslo] [--publish-to-queues] [--workers N]`
//!
//! The same echo call under every security mode, side by side, interleaved; on the memory
//! transport and, with `--amqp`, on RabbitMQ beside the raw lapin floors and oslo.messaging.
//! Prints the table (or JSON with `--json`) on stdout, progress on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::time::Duration;

use sealrpc_benches::modes::SecMode;
use sealrpc_benches::overhead::{Options, parse_size, run};

const USAGE: &str = "usage: overhead [--quick] [--amqp [URL]] [--json] [--sizes LIST] \
[--calls N] [--modes LIST] [--in-flight N] [--rounds N] [--no-memory] [--no-raw] [--no-oslo]
  [--publish-to-queues] [--workers N]
  --quick         CI smoke: tiny budgets, every row (figures not meaningful)
  --amqp [URL]    also run on RabbitMQ (default: $AMQP_ADDR or amqp://guest:guest@127.0.0.1:5672/%2f)
  --json          print the report as JSON
  --sizes LIST    payload sizes, e.g. 100B,1KiB,64KiB,1MiB (default: all four)
  --calls N       N sequential and N in-flight calls per row instead of the time budget
  --modes LIST    plain,signed-req,signed,sealed,signed-req+sealed,signed+sealed (default: all)
  --in-flight N   calls in flight in the throughput batches (default 32)
  --rounds N      interleaved rounds (default 1 quick, 12 full)
  --no-memory     skip the memory transport
  --no-raw        skip the raw lapin floors
  --no-oslo       skip the oslo.messaging row (benches/oslo/run.sh --driver, interleaved
                  in each RabbitMQ block in full runs; skipped with a note when it cannot run)
  --publish-to-queues
                  the sealrpc rows publish calls straight to queues through the default
                  exchange (AmqpOptions::publish_to_queues; off by default)
  --workers N     tokio worker threads (default: one per CPU)";

fn parse(args: &[String]) -> Result<(Options, bool, Option<usize>), String> {
    let mut opts = Options {
        command: std::iter::once("overhead".to_owned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        ..Options::default()
    };
    let mut json = false;
    let mut workers = None;
    let mut it = args.iter().peekable();
    let value = |it: &mut std::iter::Peekable<std::slice::Iter<'_, String>>, flag: &str| {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--json" => json = true,
            "--no-memory" => opts.no_memory = true,
            "--no-raw" => opts.no_raw = true,
            "--no-oslo" => opts.no_oslo = true,
            "--publish-to-queues" => opts.publish_to_queues = true,
            "--workers" => {
                let v = value(&mut it, "--workers")?;
                workers = Some(v.parse().map_err(|_| format!("bad --workers {v:?}"))?);
            }
            "--amqp" => {
                let url = match it.peek() {
                    Some(v) if !v.starts_with("--") => value(&mut it, "--amqp")?,
                    _ => sealrpc_amqp::AmqpOptions::from_env().url,
                };
                opts.amqp = Some(url);
            }
            "--sizes" => {
                let v = value(&mut it, "--sizes")?;
                opts.sizes = v
                    .split(',')
                    .map(|s| parse_size(s).ok_or_else(|| format!("bad size {s:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--modes" => {
                let v = value(&mut it, "--modes")?;
                opts.modes = v
                    .split(',')
                    .map(|s| SecMode::parse(s.trim()).ok_or_else(|| format!("bad mode {s:?}")))
                    .collect::<Result<_, _>>()?;
                // Ratios need plain in the block.
                if !opts.modes.contains(&SecMode::Plain) {
                    opts.modes.insert(0, SecMode::Plain);
                }
            }
            "--calls" => {
                let v = value(&mut it, "--calls")?;
                opts.calls = Some(v.parse().map_err(|_| format!("bad --calls {v:?}"))?);
            }
            "--in-flight" => {
                let v = value(&mut it, "--in-flight")?;
                opts.in_flight = v.parse().map_err(|_| format!("bad --in-flight {v:?}"))?;
            }
            "--rounds" => {
                let v = value(&mut it, "--rounds")?;
                opts.rounds = Some(v.parse().map_err(|_| format!("bad --rounds {v:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((opts, json, workers))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (opts, json, workers) = match parse(&args) {
        Ok(v) => v,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("overhead: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    // One worker per CPU unless told; threads kept alive so that their CPU time stays
    // countable (see sealrpc_benches::cpu).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        )
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("tokio runtime");
    // The whole run is a task on the runtime, as calls are in a service: driving them from
    // `block_on` (the main thread) would add a thread hop to every sequential call.
    let report = rt.block_on(async move {
        tokio::spawn(async move { run(&opts).await })
            .await
            .unwrap_or_else(|e| Err(format!("the run panicked: {e}").into()))
    });
    match report {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("json"));
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("overhead: {e}");
            ExitCode::FAILURE
        }
    }
}
