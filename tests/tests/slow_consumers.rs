//! Slow and dead consumers: a guest agent whose handler stalls (so its server stops taking
//! deliveries and its queue fills) must not block the control plane's calls to the other
//! guests. Calls to the stuck guest end with `Error::Timeout` (never hang past their
//! timeout), calls to healthy guests keep succeeding, and the client's pending table drains
//! to zero. A guest whose agent is gone fails fast with `NoListener`.
//! On the memory transport (small bounded queues) and on RabbitMQ (small prefetch).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::transport::Transport;
use sealrpc_core::{Client, Context, Error, MemoryTransport, Target};
use sealrpc_tests::cluster::{self, ControlKeys, Seq};
use sealrpc_tests::metrics::{Failures, Latencies, knob};

/// How far past its timeout a call may return before it counts as hung (scheduling slack
/// on a loaded 2-core machine; the property checked is "returns", not a latency).
const HANG_SLACK: Duration = Duration::from_secs(10);

struct Report {
    healthy_ok: usize,
    stuck_timeouts: usize,
}

async fn scenario(label: &str, transport: Arc<dyn Transport>, stuck_calls: usize) -> Report {
    let control = ControlKeys::new();
    let topic = cluster::uniq("slow-agent");
    let ids = cluster::guest_ids(4);
    let mut guests = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // The stuck guest handles one request at a time: once its handler stalls, its
        // server takes nothing more and its queue fills up.
        let conc = if i == 0 { 1 } else { 16 };
        guests.push(cluster::guest(&transport, &control, &topic, id, conc).await);
    }
    guests[0].stuck.store(true, Ordering::SeqCst);
    let api = control.api.security().build();
    let client = Client::builder(Arc::clone(&transport), api)
        .default_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();

    let stuck_timeout = Duration::from_millis(800);
    let healthy_calls: u64 = knob("SEALRPC_SLOW_HEALTHY_CALLS", 300);
    let ctx = Context::new();
    let failures = Arc::new(Failures::default());
    let lat = Arc::new(Latencies::default());

    // Calls to the stuck guest, all at once: more than its queue holds.
    let mut stuck = tokio::task::JoinSet::new();
    for seq in 0..stuck_calls as u64 {
        let (client, ctx) = (client.clone(), ctx.clone());
        let target = Target::guest(&topic, ids[0].as_str());
        stuck.spawn(async move {
            let started = Instant::now();
            let prepared = client.prepare(target).timeout(stuck_timeout);
            let args = Seq {
                from: "api".into(),
                seq,
            };
            let call = prepared.call::<_, u64>(&ctx, "ping", &args);
            match tokio::time::timeout(stuck_timeout + HANG_SLACK, call).await {
                Err(_) => Err(format!("hung for {:?}", started.elapsed())),
                Ok(Err(Error::Timeout(_))) => Ok(()),
                Ok(other) => Err(format!("expected Timeout, got {other:?}")),
            }
        });
    }
    // Meanwhile, calls to the healthy guests, 8 at a time.
    let mut healthy = tokio::task::JoinSet::new();
    for lane in 0..8u64 {
        let (client, ctx, failures, lat) = (
            client.clone(),
            ctx.clone(),
            Arc::clone(&failures),
            Arc::clone(&lat),
        );
        let targets: Vec<Target> = ids[1..]
            .iter()
            .map(|id| Target::guest(&topic, id.as_str()))
            .collect();
        healthy.spawn(async move {
            for seq in (lane..healthy_calls).step_by(8) {
                let t = &targets[seq as usize % targets.len()];
                let started = Instant::now();
                let r = client
                    .prepare(t.clone())
                    .timeout(Duration::from_secs(30))
                    .call::<_, u64>(
                        &ctx,
                        "ping",
                        &Seq {
                            from: "api".into(),
                            seq,
                        },
                    )
                    .await;
                match r {
                    Ok(v) if v == seq => lat.record(started.elapsed()),
                    other => failures.push(format!("healthy call {seq}: {other:?}")),
                }
            }
        });
    }
    let t0 = Instant::now();
    healthy.join_all().await;
    let healthy_elapsed = t0.elapsed();
    let stuck_results = stuck.join_all().await;
    let stuck_bad: Vec<&String> = stuck_results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    println!(
        "[{label}] healthy calls ok={} failed={} in {:.2}s ({}) while {} calls to the stuck guest timed out",
        lat.len(),
        failures.len(),
        healthy_elapsed.as_secs_f64(),
        lat.summary(),
        stuck_results.len() - stuck_bad.len(),
    );
    assert!(failures.is_empty(), "{:?}", failures.first(5));
    assert!(
        stuck_bad.is_empty(),
        "{} bad, e.g. {:?}",
        stuck_bad.len(),
        &stuck_bad[..stuck_bad.len().min(3)]
    );
    assert_eq!(guests[0].pings.load(Ordering::SeqCst), 0);
    // Every call ended: the pending table is empty again.
    assert_eq!(client.in_flight(), 0);

    // A dead agent (its server gone) fails fast and typed: `NoListener`. On RabbitMQ the
    // broker deletes the agent's auto-delete queue a moment after its consumer is
    // cancelled; a call routed to the queue just before that times out, so allow a few.
    guests[1].server.take().unwrap().shutdown().await;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let r = client
            .prepare(Target::guest(&topic, ids[1].as_str()))
            .timeout(Duration::from_secs(1))
            .call::<_, u64>(
                &ctx,
                "ping",
                &Seq {
                    from: "api".into(),
                    seq: 0,
                },
            )
            .await;
        match r {
            Err(Error::NoListener(_)) => break,
            Err(Error::Timeout(_)) if attempts < 10 => {}
            other => panic!("call to a dead agent: {other:?} (attempt {attempts})"),
        }
    }
    println!("[{label}] dead agent: NoListener after {attempts} attempt(s)");
    // The others still answer.
    let r: u64 = client
        .call(
            &ctx,
            &Target::guest(&topic, ids[2].as_str()),
            "ping",
            &Seq {
                from: "api".into(),
                seq: 7,
            },
        )
        .await
        .unwrap();
    assert_eq!(r, 7);
    assert_eq!(client.in_flight(), 0);
    Report {
        healthy_ok: lat.len(),
        stuck_timeouts: stuck_results.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_guest_does_not_block_others_memory() {
    // Queues of 8: the stuck guest's fills after 8 (+1 in its handler) messages.
    let t: Arc<dyn Transport> = Arc::new(MemoryTransport::with_capacity(8));
    let r = scenario("slow/memory", t, 40).await;
    assert!(r.healthy_ok > 0 && r.stuck_timeouts == 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_guest_does_not_block_others_amqp() {
    let opts = AmqpOptions {
        prefetch: 4,
        ..AmqpOptions::from_env()
    };
    sealrpc_amqp::wait_for_broker(&opts.url, Duration::from_secs(30))
        .await
        .unwrap();
    let t: Arc<dyn Transport> = Arc::new(AmqpTransport::connect(opts).await.unwrap());
    let r = scenario("slow/amqp", t, 40).await;
    assert!(r.healthy_ok > 0 && r.stuck_timeouts == 40);
}
