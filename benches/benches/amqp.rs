//! RabbitMQ benchmarks (criterion): call round trip at 100 B / 1 KiB / 64 KiB, plain and
//! signed+sealed, and confirmed-cast throughput, through `Client`/`Server` on
//! `AmqpTransport` (the path users take). Needs the broker at `$AMQP_ADDR` (default local);
//! without one it prints a note and measures nothing.
//!
//! `cargo bench -p sealrpc-benches --bench amqp`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealrpc_amqp::{AmqpOptions, AmqpTransport, wait_for_broker};
use sealrpc_benches::modes::{BenchKeys, SecMode};
use sealrpc_benches::workload::{Echo, EchoRpc};
use sealrpc_core::transport::Transport;
use sealrpc_core::{Context, HandlerError, Server, Target};

const SIZES: [(&str, usize); 3] = [("100B", 100), ("1KiB", 1024), ("64KiB", 64 * 1024)];
const MODES: [SecMode; 2] = [SecMode::Plain, SecMode::SignedSealed];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Two connections (client side, server side), or `None` without a broker.
fn transports(rt: &tokio::runtime::Runtime) -> Option<(Arc<dyn Transport>, Arc<dyn Transport>)> {
    let opts = AmqpOptions::from_env();
    rt.block_on(async {
        if wait_for_broker(&opts.url, Duration::from_secs(5))
            .await
            .is_err()
        {
            eprintln!(
                "amqp bench: no broker at {}; skipped",
                sealrpc_amqp::redact_url(&opts.url)
            );
            return None;
        }
        let a: Arc<dyn Transport> = Arc::new(AmqpTransport::connect(opts.clone()).await.ok()?);
        let b: Arc<dyn Transport> = Arc::new(AmqpTransport::connect(opts).await.ok()?);
        Some((a, b))
    })
}

fn uniq(prefix: &str) -> String {
    let mut b = [0u8; 4];
    sealrpc_core::rand::fill(&mut b);
    format!(
        "{prefix}-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

fn call_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let Some((client_t, server_t)) = transports(&rt) else {
        return;
    };
    let keys = BenchKeys::new(&uniq("g")).unwrap();
    let mut group = c.benchmark_group("amqp_call");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    for (name, size) in SIZES {
        for mode in MODES {
            let mut rpc = rt
                .block_on(EchoRpc::start(
                    &keys,
                    mode,
                    client_t.clone(),
                    server_t.clone(),
                    &uniq("bench"),
                    size,
                ))
                .unwrap();
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(mode.name(), name), |b| {
                b.to_async(&rt)
                    .iter(|| async { rpc.round_trip().await.unwrap() })
            });
            rt.block_on(rpc.shutdown());
        }
    }
    group.finish();
}

fn confirmed_casts(c: &mut Criterion) {
    let rt = runtime();
    let Some((client_t, server_t)) = transports(&rt) else {
        return;
    };
    let keys = BenchKeys::new(&uniq("g")).unwrap();
    let mut group = c.benchmark_group("amqp_confirmed_cast");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    group.throughput(Throughput::Elements(1));
    for mode in MODES {
        let pair = keys.pair(mode);
        let topic = uniq("sink");
        let (server, client) = rt.block_on(async {
            let server = Server::builder(server_t.clone(), pair.server.clone())
                .topic(&topic)
                .server_name(keys.guest_id())
                .shared(false)
                .fanout(false)
                .handler("sink", |_ctx: Context, _a: Echo| async {
                    Ok::<_, HandlerError>(())
                })
                .start()
                .await
                .unwrap();
            let client = sealrpc_core::Client::builder(client_t.clone(), pair.client.clone())
                .build()
                .await
                .unwrap();
            (server, client)
        });
        let target = Target::guest(&topic, keys.guest_id());
        let args = Echo {
            data: vec![7; 1024],
        };
        let ctx = Context::new();
        // A cast returns once the broker has confirmed it holds the message.
        group.bench_function(BenchmarkId::new(mode.name(), "1KiB"), |b| {
            b.to_async(&rt)
                .iter(|| async { client.cast(&ctx, &target, "sink", &args).await.unwrap() })
        });
        rt.block_on(server.shutdown());
    }
    group.finish();
}

criterion_group!(benches, call_round_trip, confirmed_casts);
criterion_main!(benches);
