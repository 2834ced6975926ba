//! The load driver of `cluster_faults`: callers and casters that time every outcome, the
//! fleet of transports, recovery and rate figures, the cleanup.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::{Client, Context, Target};
use sealrpc_tests::cluster::Seq;
use sealrpc_tests::metrics::Failures;

use super::node;

pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Past its deadline by this much, a call counts as hung (scheduling slack).
pub const HANG_SLACK: Duration = Duration::from_secs(3);

pub fn options(exchange: &str, first: usize) -> AmqpOptions {
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
pub struct Tally {
    /// (started at, finished at, client index, ok)
    pub calls: Mutex<Vec<(Instant, Instant, usize, bool)>>,
    pub casts_confirmed: Mutex<BTreeSet<(String, u64)>>,
    pub cast_retries: std::sync::atomic::AtomicU64,
    /// Retriable call errors by kind (reset per phase by the scenario).
    pub error_kinds: Mutex<std::collections::BTreeMap<String, u64>>,
    pub bad: Failures,
}

impl Tally {
    pub fn ok_between(&self, from: Instant, to: Instant) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(_, t, _, ok)| *ok && *t >= from && *t < to)
            .count()
    }

    pub fn errors_between(&self, from: Instant, to: Instant) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(_, t, _, ok)| !*ok && *t >= from && *t < to)
            .count()
    }

    /// Each client's first successful call started after `since`: when it ended, as a delay.
    pub fn first_ok_after(&self, since: Instant, clients: usize) -> Vec<Option<Duration>> {
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
pub async fn caller(
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
pub async fn caster(
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
pub struct Fleet {
    pub transports: Vec<(String, AmqpTransport)>,
    pub clients: usize,
}

impl Fleet {
    pub fn port_of(&self, name: &str) -> Option<u16> {
        let t = self.transports.iter().find(|(n, _)| n == name)?;
        t.1.connected_port()
    }

    pub fn generations(&self) -> String {
        self.transports
            .iter()
            .map(|(n, t)| format!("{n}={}", t.connection_generation()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Waits until every client had a successful call after `since` (bounded); prints and
/// returns the slowest client's delay.
pub async fn recovered(tally: &Tally, fleet: &Fleet, since: Instant, what: &str) -> Duration {
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

pub fn rate(tally: &Tally, from: Instant, to: Instant) -> String {
    let secs = (to - from).as_secs_f64().max(0.001);
    format!(
        "{:.0} calls/s ({} ok, {} retriable errors in {secs:.1}s)",
        tally.ok_between(from, to) as f64 / secs,
        tally.ok_between(from, to),
        tally.errors_between(from, to)
    )
}

/// Deletes the run's quorum queues and exchange from whichever node answers.
pub async fn cleanup(queues: &[String], exchange: &str) {
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
