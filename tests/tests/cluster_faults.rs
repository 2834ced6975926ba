//! Node faults on the local three-node RabbitMQ cluster, under signed+sealed load.
//!
//! Needs the cluster of `rpc-amqp/scripts/rabbitmq-cluster.sh` (started here if it is not
//! up; the test FAILS if it cannot start, it never skips) and root or the rabbitmq user.
//! Cluster mode: durable exchanges, quorum topic and server queues, every transport given
//! the three nodes' URLs. Two conductors (nodes 2 and 3), an API (node 1) and three guests
//! (one per node) run calls and confirmed casts the whole time, while the faults follow
//! one another:
//!
//! 1. `kill -9` of the node the API is connected to, then that node restarts;
//! 2. `stop_app` of the node the API is connected to now, then `start_app`;
//! 3. `stop_app` of the node leading the conductor topic's quorum queue, then `start_app`;
//! 4. `stop_app` of two nodes (quorum lost: typed errors, nothing hangs), then one returns
//!    (recovery), then the other.
//!
//! Asserts: no confirmed cast lost (dedup by sequence number), no call past its deadline,
//! only retriable errors, every client's calls succeed again after each fault with the
//! same transports (no client rebuilt). Prints calls/s before/during/after each fault and
//! the time from the fault to each client's first successful call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../rpc-amqp/tests/common/cluster.rs"]
mod node;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::{Client, Context, Target, Transport};
use sealrpc_tests::cluster::{self, ConductorState, ControlKeys, Guest, Seq};
use sealrpc_tests::metrics::{Failures, knob};

const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Past its deadline by this much, a call counts as hung (scheduling slack).
const HANG_SLACK: Duration = Duration::from_secs(3);

fn options(exchange: &str, first: usize) -> AmqpOptions {
    AmqpOptions {
        control_exchange: exchange.to_owned(),
        durable: true,
        quorum_queues: true,
        heartbeat: Duration::from_secs(2),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_secs(1),
        reconnect_wait: Duration::from_secs(2),
        confirm_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        ..AmqpOptions::default().with_urls(node::urls_from(first))
    }
}

/// Every outcome, timed; casts confirmed per sender.
#[derive(Default)]
struct Tally {
    /// (started at, finished at, client index, ok)
    calls: Mutex<Vec<(Instant, Instant, usize, bool)>>,
    casts_confirmed: Mutex<BTreeSet<(String, u64)>>,
    cast_retries: std::sync::atomic::AtomicU64,
    /// Retriable call errors by kind (reset per phase by the scenario).
    error_kinds: Mutex<std::collections::BTreeMap<String, u64>>,
    bad: Failures,
}

impl Tally {
    fn ok_between(&self, from: Instant, to: Instant) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(_, t, _, ok)| *ok && *t >= from && *t < to)
            .count()
    }

    fn errors_between(&self, from: Instant, to: Instant) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(_, t, _, ok)| !*ok && *t >= from && *t < to)
            .count()
    }

    /// Each client's first successful call started after `since`: when it ended, as a delay.
    fn first_ok_after(&self, since: Instant, clients: usize) -> Vec<Option<Duration>> {
        let calls = self.calls.lock().unwrap();
        (0..clients)
            .map(|c| {
                calls
                    .iter()
                    .filter(|(s, _, who, ok)| *ok && *who == c && *s >= since)
                    .map(|(_, t, _, _)| *t - since)
                    .min()
            })
            .collect()
    }
}

/// Calls `method` on the targets in turn until `stop`; client index `who`.
async fn caller(
    client: Client,
    who: usize,
    targets: Vec<Target>,
    method: &'static str,
    from: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let ctx = Context::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let target = &targets[usize::try_from(seq).unwrap() % targets.len()];
        let prepared = client.prepare(target.clone()).timeout(CALL_TIMEOUT);
        let args = Seq {
            from: from.clone(),
            seq,
        };
        let started = Instant::now();
        let call = prepared.call::<_, u64>(&ctx, method, &args);
        let ok = match tokio::time::timeout(CALL_TIMEOUT + HANG_SLACK, call).await {
            Err(_) => {
                tally
                    .bad
                    .push(format!("{from}: call {seq} hung past its deadline"));
                false
            }
            Ok(Ok(v)) if v == seq => true,
            Ok(Ok(v)) => {
                tally.bad.push(format!("{from}: call {seq} echoed {v}"));
                false
            }
            Ok(Err(e)) if e.is_retriable() => {
                let kind = match &e {
                    sealrpc_core::Error::Timeout(_) => "Timeout".to_owned(),
                    sealrpc_core::Error::Transport(t) => format!("Transport({:?})", t.kind),
                    other => format!("{other:?}"),
                };
                *tally.error_kinds.lock().unwrap().entry(kind).or_default() += 1;
                false
            }
            Ok(Err(e)) => {
                tally
                    .bad
                    .push(format!("{from}: call {seq}: non-retriable {e:?}"));
                false
            }
        };
        if started.elapsed() > CALL_TIMEOUT + HANG_SLACK {
            tally
                .bad
                .push(format!("{from}: call {seq} took {:?}", started.elapsed()));
        }
        tally
            .calls
            .lock()
            .unwrap()
            .push((started, Instant::now(), who, ok));
        if !ok {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Confirmed casts of `record {from, seq}`; a retriable failure retries the same seq.
async fn caster(
    client: Client,
    topic: String,
    from: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let ctx = Context::new();
    let target = Target::new(&topic);
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let args = Seq {
            from: from.clone(),
            seq,
        };
        match client.cast(&ctx, &target, "record", &args).await {
            Ok(()) => {
                tally
                    .casts_confirmed
                    .lock()
                    .unwrap()
                    .insert((from.clone(), seq));
                seq += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) if e.is_retriable() => {
                tally.cast_retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tally
                    .bad
                    .push(format!("{from}: cast {seq}: non-retriable {e:?}"));
                seq += 1;
            }
        }
    }
}

/// The clients: index 0 the API, then the guests.
struct Fleet {
    transports: Vec<(String, AmqpTransport)>,
    clients: usize,
}

impl Fleet {
    fn port_of(&self, name: &str) -> Option<u16> {
        let t = self.transports.iter().find(|(n, _)| n == name)?;
        t.1.connected_port()
    }

    fn generations(&self) -> String {
        self.transports
            .iter()
            .map(|(n, t)| format!("{n}={}", t.connection_generation()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Waits until every client had a successful call after `since` (bounded); prints and
/// returns the slowest client's delay.
async fn recovered(tally: &Tally, fleet: &Fleet, since: Instant, what: &str) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let firsts = tally.first_ok_after(since, fleet.clients);
        if firsts.iter().all(Option::is_some) {
            let all: Vec<Duration> = firsts.into_iter().flatten().collect();
            let slowest = all.iter().max().copied().unwrap_or_default();
            println!(
                "[cluster-faults] {what}: first successful call started after it: API {:.2}s, slowest of {} clients {:.2}s",
                all.first().copied().unwrap_or_default().as_secs_f64(),
                all.len(),
                slowest.as_secs_f64(),
            );
            return slowest;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not every client recovered: {firsts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rate(tally: &Tally, from: Instant, to: Instant) -> String {
    let secs = (to - from).as_secs_f64().max(0.001);
    format!(
        "{:.0} calls/s ({} ok, {} retriable errors in {secs:.1}s)",
        tally.ok_between(from, to) as f64 / secs,
        tally.ok_between(from, to),
        tally.errors_between(from, to)
    )
}

/// Runs a blocking cluster command off the runtime's worker threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("cluster command")
}

/// The tests of this binary never fault the cluster at the same time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn scenario(rounds: u32) {
    let _serial = SERIAL.lock().await;
    blocking(node::ensure).await;
    let heal = node::Heal;
    let started = Instant::now();
    let run = cluster::uniq("cf");
    let _purge = node::Purge(run.clone());
    let exchange = format!("{run}-ctl");
    let topic = format!("{run}-conductor");
    let guest_topic = format!("{run}-guest");
    let keys = ControlKeys::new();
    let state = Arc::new(ConductorState::default());
    let cond_sec = keys.conductor.security().build();

    let mut transports = Vec::new();
    let mut servers = Vec::new();
    for (name, first) in [("c1", 2), ("c2", 3)] {
        let t = AmqpTransport::connect(options(&exchange, first))
            .await
            .unwrap();
        let dt: Arc<dyn Transport> = Arc::new(t.clone());
        servers.push(cluster::conductor_named(&dt, &cond_sec, &topic, name, &state).await);
        transports.push((format!("conductor-{name}"), t));
    }
    let api_t = AmqpTransport::connect(options(&exchange, 1)).await.unwrap();
    let api_dt: Arc<dyn Transport> = Arc::new(api_t.clone());
    let api = Client::builder(api_dt, keys.api.security().build())
        .default_timeout(CALL_TIMEOUT)
        .build()
        .await
        .unwrap();
    transports.insert(0, ("api".to_owned(), api_t));
    let ids = cluster::guest_ids(3);
    let mut guests: Vec<Guest> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let t = AmqpTransport::connect(options(&exchange, i + 1))
            .await
            .unwrap();
        let dt: Arc<dyn Transport> = Arc::new(t.clone());
        guests.push(cluster::guest(&dt, &keys, &guest_topic, id, 64).await);
        transports.push((format!("guest-{i}"), t));
    }
    let fleet = Fleet {
        transports,
        clients: 1 + guests.len(),
    };

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    let conductor = vec![Target::new(&topic)];
    let guest_targets: Vec<Target> = ids
        .iter()
        .map(|id| Target::guest(&guest_topic, id))
        .collect();
    let (t, s) = (&tally, &stop);
    for lane in 0..2 {
        load.spawn(caller(
            api.clone(),
            0,
            conductor.clone(),
            "ping",
            format!("api{lane}"),
            t.clone(),
            s.clone(),
        ));
        load.spawn(caller(
            api.clone(),
            0,
            guest_targets.clone(),
            "ping",
            format!("api-g{lane}"),
            t.clone(),
            s.clone(),
        ));
    }
    load.spawn(caster(
        api.clone(),
        topic.clone(),
        "api".into(),
        t.clone(),
        s.clone(),
    ));
    for (i, g) in guests.iter().enumerate() {
        load.spawn(caller(
            g.client.clone(),
            i + 1,
            conductor.clone(),
            "report",
            g.id.clone(),
            t.clone(),
            s.clone(),
        ));
        load.spawn(caster(
            g.client.clone(),
            topic.clone(),
            format!("cast-{}", g.id),
            t.clone(),
            s.clone(),
        ));
    }

    let warm = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "[cluster-faults] before: {}",
        rate(&tally, warm, Instant::now())
    );
    let mut worst = Duration::ZERO;
    for round in 0..rounds {
        // 1. kill -9 the API's node, then restart it.
        let n = node::node_of_port(fleet.port_of("api").expect("api connected"));
        let t0 = Instant::now();
        blocking(move || node::kill(n)).await;
        worst = worst.max(
            recovered(
                &tally,
                &fleet,
                t0,
                &format!("round {round}: kill -9 c{n} (API's node)"),
            )
            .await,
        );
        blocking(move || node::restart(n)).await;
        println!(
            "[cluster-faults]   during (kill..restarted): {}",
            rate(&tally, t0, Instant::now())
        );

        // 2. stop_app the API's (new) node, then start_app.
        let n = node::node_of_port(fleet.port_of("api").expect("api connected"));
        let t0 = Instant::now();
        blocking(move || node::stop_app(n)).await;
        worst = worst.max(
            recovered(
                &tally,
                &fleet,
                t0,
                &format!("round {round}: stop_app c{n} (API's node)"),
            )
            .await,
        );
        blocking(move || node::start_app(n)).await;
        println!(
            "[cluster-faults]   during (stop_app..start_app): {}",
            rate(&tally, t0, Instant::now())
        );

        // 3. stop_app the leader of the conductor topic's quorum queue, then start_app.
        let q = topic.clone();
        let n = blocking(move || node::leader(&q, Duration::from_secs(20))).await;
        let t0 = Instant::now();
        blocking(move || node::stop_app(n)).await;
        worst = worst.max(
            recovered(
                &tally,
                &fleet,
                t0,
                &format!("round {round}: stop_app c{n} (quorum queue leader)"),
            )
            .await,
        );
        blocking(move || node::start_app(n)).await;
        println!(
            "[cluster-faults]   during (stop_app..start_app): {}",
            rate(&tally, t0, Instant::now())
        );
    }

    // 4. Quorum lost: two nodes stop; errors are typed and nothing hangs; one returns.
    let (a, b) = (2, 3);
    let t0 = Instant::now();
    blocking(move || node::stop_app(a)).await;
    blocking(move || node::stop_app(b)).await;
    let lost = Instant::now();
    tally.error_kinds.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let t1 = Instant::now();
    println!(
        "[cluster-faults] quorum lost: stop_app c{a}, c{b}: {}; with both stopped: {}; errors by kind: {:?}",
        rate(&tally, t0, lost),
        rate(&tally, lost, t1),
        tally.error_kinds.lock().unwrap()
    );
    blocking(move || node::start_app(a)).await;
    let back = Instant::now();
    recovered(
        &tally,
        &fleet,
        back,
        &format!("quorum back (start_app c{a})"),
    )
    .await;
    println!(
        "[cluster-faults]   c{a} back after {:.1}s of quorum loss",
        (back - t0).as_secs_f64()
    );
    blocking(move || node::start_app(b)).await;

    let after = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "[cluster-faults] after: {}",
        rate(&tally, after, Instant::now())
    );
    stop.store(true, Ordering::SeqCst);
    load.join_all().await;

    // No confirmed cast lost.
    let confirmed = tally.casts_confirmed.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let missing: Vec<(String, u64)> = {
            let casts = state.casts.lock().unwrap();
            confirmed
                .iter()
                .filter(|k| !casts.contains_key(k))
                .cloned()
                .collect()
        };
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let duplicates: u32 = state.casts.lock().unwrap().values().map(|n| n - 1).sum();
    let calls = tally.calls.lock().unwrap().len();
    println!(
        "[cluster-faults] casts confirmed={} lost={} retried={} duplicates after dedup={duplicates}; calls={calls} bad={}; slowest recovery {:.2}s; generations: {}; took {:.0}s",
        confirmed.len(),
        missing.len(),
        tally.cast_retries.load(Ordering::Relaxed),
        tally.bad.len(),
        worst.as_secs_f64(),
        fleet.generations(),
        started.elapsed().as_secs_f64()
    );
    assert!(tally.bad.is_empty(), "{:?}", tally.bad.first(5));
    assert!(missing.is_empty(), "confirmed casts lost: {missing:?}");
    // The API lost its node twice per round: the same transport reconnected by itself.
    let api_gen = fleet.transports[0].1.connection_generation();
    assert!(api_gen > 2 * u64::from(rounds), "api generation {api_gen}");
    assert_eq!(api.in_flight(), 0);

    let bounded = Duration::from_secs(20);
    for g in &mut guests {
        if let Some(s) = g.server.take() {
            assert!(s.shutdown_timeout(bounded).await, "guest server drains");
        }
    }
    for s in servers {
        assert!(s.shutdown_timeout(bounded).await, "conductor drains");
    }
    let mut queues = vec![topic.clone(), format!("{topic}.c1"), format!("{topic}.c2")];
    queues.extend(ids.iter().map(|id| format!("{guest_topic}.{id}")));
    for (_, t) in &fleet.transports {
        tokio::time::timeout(bounded, t.close())
            .await
            .expect("transport closes");
    }
    cleanup(&queues, &exchange).await;
    drop(heal);
}

/// Deletes the run's quorum queues and exchange from whichever node answers.
async fn cleanup(queues: &[String], exchange: &str) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    for url in node::urls() {
        let Ok(conn) =
            lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
        else {
            continue;
        };
        for q in queues {
            let ch = conn.create_channel().await.unwrap();
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let ch = conn.create_channel().await.unwrap();
        let _ = ch
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await;
        let _ = conn.close(200, "cleanup".into()).await;
        return;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_faults_under_load() {
    scenario(knob("SEALRPC_CLUSTER_FAULT_ROUNDS", 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "several rounds of node faults (~1 min each); see docs/reliability.md"]
async fn node_faults_under_load_long() {
    scenario(knob("SEALRPC_CLUSTER_FAULT_ROUNDS", 3)).await;
}
