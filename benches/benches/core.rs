//! Core micro-benchmarks: a plain call round trip on the memory transport (100 B and
//! 64 KiB payloads), and envelope encode / decode (the receive pipeline under policy Off).

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealrpc_core::payload::encode_args;
use sealrpc_core::security::now_ms;
use sealrpc_core::security::{Security, SecurityConfig};
use sealrpc_core::transport::Transport;
use sealrpc_core::wire::{Header, Kind, MessageId, RequestBody, encode_envelope};
use sealrpc_core::{
    Client, Context, HandlerError, MemoryTransport, Principal, Server, Target, Version,
};
use serde::{Deserialize, Serialize};

const SIZES: [(&str, usize); 2] = [("100B", 100), ("64KiB", 64 * 1024)];

#[derive(Serialize, Deserialize)]
struct Payload {
    data: String,
}

fn plain(principal: &str) -> Arc<Security> {
    let p = Principal::parse(principal).unwrap_or_else(Principal::control);
    SecurityConfig::insecure(p).build()
}

fn call_round_trip(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        return;
    };
    let setup = rt.block_on(async {
        let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
        let server = Server::builder(Arc::clone(&transport), plain("control:server"))
            .topic("bench")
            .handler("echo", |_ctx: Context, p: Payload| async move {
                Ok::<_, HandlerError>(p.data)
            })
            .start()
            .await?;
        let client = Client::builder(transport, plain("control:client"))
            .build()
            .await?;
        Ok::<_, sealrpc_core::Error>((server, client))
    });
    let Ok((server, client)) = setup else { return };
    let target = Target::new("bench");
    let ctx = Context::new();

    let mut group = c.benchmark_group("call_round_trip_plain");
    for (name, size) in SIZES {
        let args = Payload {
            data: "x".repeat(size),
        };
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &args, |b, args| {
            b.to_async(&rt).iter(|| async {
                let r: Result<String, _> = client.call(&ctx, &target, "echo", args).await;
                black_box(r.map(|s| s.len()).unwrap_or(0))
            });
        });
    }
    group.finish();
    rt.block_on(server.shutdown());
}

fn envelope(c: &mut Criterion) {
    let security = plain("control:bench");
    let mut group = c.benchmark_group("envelope_plain");
    for (name, size) in SIZES {
        let Ok(args) = encode_args(&Payload {
            data: "x".repeat(size),
        }) else {
            return;
        };
        let ctx = Context::new().with_request_id("req-bench").encode();
        let header = Header {
            id: MessageId::random(),
            kind: Kind::Call,
            ts: now_ms(),
            ttl: None,
            src: "control:bench".into(),
            dst: "bench".into(),
            corr: None,
            reply: Some("mem-reply.bench".into()),
            seal: None,
        };
        let encode = || {
            let body =
                RequestBody::encode("echo", Version::new(1, 0), None, args.bytes(), ctx.bytes());
            encode_envelope(&header.encode(), &body, &[])
        };
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| black_box(encode()))
        });
        let bytes = sealrpc_core::bytes::Bytes::from(encode());
        group.bench_function(BenchmarkId::new("decode_admit", name), |b| {
            b.iter(|| {
                black_box(
                    security
                        .admit(black_box(&bytes), &|dst| dst == "bench")
                        .is_ok(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, call_round_trip, envelope);
criterion_main!(benches);
