//! Runs one row of the RabbitMQ report alone, for profilers (perf, callgrind) and for
//! counting per-call events (`perf stat -e context-switches,...`):
//! `amqp_profile ROW [SIZE] [N] [IN_FLIGHT]`, where ROW is a security mode
//! (`plain`, `signed+sealed`, ...), the same on the memory transport (`memory:plain`), or a
//! raw floor (`raw-lapin`, `raw-lapin+confirms`, `raw-lapin+topology`), e.g.
//! `amqp_profile raw-lapin+confirms 1KiB 3000`. Makes N calls with IN_FLIGHT (default 1)
//! at a time against `$AMQP_ADDR` (default the local broker) and prints the mean time and
//! this process's CPU per call (meaningless under a profiler).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_benches::cpu::{broker_cpu_ns, process_cpu_ns};
use sealrpc_benches::modes::{BenchKeys, SecMode};
use sealrpc_benches::overhead::{parse_size, unique};
use sealrpc_benches::raw::{RawEcho, RawSemantics};
use sealrpc_benches::runner::EchoCall;
use sealrpc_benches::workload::EchoRpc;
use sealrpc_core::MemoryTransport;
use sealrpc_core::transport::Transport;

const USAGE: &str = "usage: amqp_profile [--publish-to-queues] ROW [SIZE] [N] [IN_FLIGHT]
  --publish-to-queues  the sealrpc rows publish calls straight to queues
                       (AmqpOptions::publish_to_queues)
  ROW        plain, signed-req, signed, sealed, signed-req+sealed, signed+sealed,
             memory:MODE (MODE on the memory transport), raw-lapin,
             raw-lapin+confirms or raw-lapin+topology
  SIZE       payload size (default 1KiB)
  N          calls (default 3000)
  IN_FLIGHT  calls at a time (default 1)";

async fn run(
    row: &str,
    (size, n, in_flight): (usize, usize, usize),
    publish_to_queues: bool,
) -> Result<(), String> {
    let opts = AmqpOptions {
        publish_to_queues,
        ..AmqpOptions::from_env()
    };
    let url = opts.url.clone();
    let (caller, transports): (Arc<dyn EchoCall>, Vec<Arc<AmqpTransport>>) =
        if let Some(sem) = RawSemantics::ALL.into_iter().find(|s| s.name() == row) {
            let raw = RawEcho::start(&url, sem, size)
                .await
                .map_err(|e| e.to_string())?;
            (Arc::new(raw), Vec::new())
        } else {
            let (memory, mode) = match row.strip_prefix("memory:") {
                Some(m) => (true, m),
                None => (false, row),
            };
            let mode = SecMode::parse(mode).ok_or_else(|| format!("unknown row {row:?}"))?;
            let keys = BenchKeys::new("0f1e2d3c4b5a6978").map_err(|e| e.to_string())?;
            if memory {
                let mem: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
                let rpc = EchoRpc::start(&keys, mode, Arc::clone(&mem), mem, "profile", size)
                    .await
                    .map_err(|e| e.to_string())?;
                return measure(row, size, n, in_flight, Arc::new(rpc), Vec::new()).await;
            }
            let connect = |name: &str| {
                AmqpTransport::connect(AmqpOptions {
                    connection_name: Some(name.to_owned()),
                    ..opts.clone()
                })
            };
            let c = Arc::new(
                connect("sealrpc-profile-client")
                    .await
                    .map_err(|e| e.to_string())?,
            );
            let s = Arc::new(
                connect("sealrpc-profile-server")
                    .await
                    .map_err(|e| e.to_string())?,
            );
            let topic = unique("profile");
            let rpc = EchoRpc::start(
                &keys,
                mode,
                Arc::clone(&c) as Arc<dyn Transport>,
                Arc::clone(&s) as Arc<dyn Transport>,
                &topic,
                size,
            )
            .await
            .map_err(|e| e.to_string())?;
            (Arc::new(rpc), vec![c, s])
        };
    measure(row, size, n, in_flight, caller, transports).await
}

/// Warms `caller` up, then makes and times the calls; closes `transports` after.
async fn measure(
    row: &str,
    size: usize,
    n: usize,
    in_flight: usize,
    caller: Arc<dyn EchoCall>,
    transports: Vec<Arc<AmqpTransport>>,
) -> Result<(), String> {
    // Warm up, then measure.
    for _ in 0..100 {
        caller.call().await.map_err(|e| e.to_string())?;
    }
    let (t, cpu, broker) = (Instant::now(), process_cpu_ns(), broker_cpu_ns());
    futures_util::stream::iter(0..n)
        .map(|_| caller.call())
        .buffer_unordered(in_flight.max(1))
        .for_each(|r| {
            if let Err(e) = r {
                eprintln!("call failed: {e}");
            }
            std::future::ready(())
        })
        .await;
    let (wall, cpu) = (
        t.elapsed(),
        Duration::from_nanos(process_cpu_ns().saturating_sub(cpu)),
    );
    let broker = broker
        .zip(broker_cpu_ns())
        .map(|(b0, b1)| b1.saturating_sub(b0));
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let broker = broker.map_or_else(
        || "not visible".to_owned(),
        |b| format!("{:.1} us", per(Duration::from_nanos(b))),
    );
    println!(
        "{row} {size} B x {n}, {in_flight} in flight: {:.1} us per call, {:.1} us CPU per call \
         here, broker CPU per call {broker}",
        per(wall),
        per(cpu)
    );
    drop(caller);
    for t in transports {
        t.close().await;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let before = args.len();
    args.retain(|a| a != "--publish-to-queues");
    let publish_to_queues = args.len() != before;
    let Some(row) = args.first().filter(|a| !a.starts_with('-')) else {
        eprintln!("{USAGE}");
        return std::process::ExitCode::from(2);
    };
    let size = args
        .get(1)
        .map_or(Some(1024), |s| parse_size(s).map(|(_, b)| b));
    let n = args.get(2).map_or(Some(3000), |s| s.parse().ok());
    let in_flight = args.get(3).map_or(Some(1), |s| s.parse().ok());
    let (Some(size), Some(n), Some(in_flight)) = (size, n, in_flight) else {
        eprintln!("{USAGE}");
        return std::process::ExitCode::from(2);
    };
    eprintln!(
        "crypto backends: {}",
        sealrpc_signers::CryptoBackends::detect()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let row = row.clone();
    match rt.block_on(async move {
        tokio::spawn(async move { run(&row, (size, n, in_flight), publish_to_queues).await }).await
    }) {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("amqp_profile: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("amqp_profile: the run panicked: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
