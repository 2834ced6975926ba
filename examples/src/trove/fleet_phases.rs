//! What the fleet phase does with its connected guests: every guest called (calls/s), one
//! fanout to all (completion time), one full rekey over the bus while calls keep running
//! (rotation wall time, failed calls), and the replay store's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sealrpc_core::security::{ReplayConfig, ReplayGuard, now_ms};
use sealrpc_core::wire::MessageId;
use sealrpc_core::{Client, Context, Target};
use sealrpc_signers::ControlPlaneKeys;
use sealrpc_signers::rekey::Rekey;

use super::fleet::FleetOptions;
use super::fleet_guest::{FleetGuest, PING, Ping, REFRESH, rss_kib};
use super::keys::Operator;
use super::{BoxError, Out, wait_until};

/// Each call's deadline (the machine is shared and noisy: generous).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Rekey deliveries in flight at once.
const REKEY_CONCURRENCY: usize = 16;
/// Calls in flight at once while the rekey runs.
const LOAD_CONCURRENCY: usize = 8;

/// The figures of the phases.
#[derive(Debug, Default, Clone)]
pub struct PhaseFigures {
    /// Rounds of one call per guest.
    pub rounds: usize,
    /// Calls made in those rounds.
    pub calls: u64,
    /// Of which failed.
    pub call_failures: u64,
    /// Time of the rounds.
    pub calls_time: Duration,
    /// Guests the fanout reached.
    pub fanout_reached: usize,
    /// From the cast to the last guest's handler.
    pub fanout_time: Duration,
    /// Guests that installed their new bundle.
    pub rekey_installed: usize,
    /// Guests whose delivery failed.
    pub rekey_failed: usize,
    /// Wall time of the full rekey.
    pub rekey_time: Duration,
    /// Calls made to the guests while the rekey ran.
    pub load_calls: u64,
    /// Of which failed.
    pub load_failures: u64,
    /// Ids the control plane's replay guard held at the end.
    pub replay_ids: usize,
    /// Bytes per id of the in-process replay store (100,000 ids of 1,000 guests).
    pub replay_bytes_per_id: u64,
}

impl PhaseFigures {
    /// Calls per second in the call rounds.
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.calls_time.as_secs_f64().max(1e-9)
    }
}

async fn ping(client: &Client, topic: &str, id: &str, n: u64) -> bool {
    let r: Result<Ping, _> = client
        .prepare(Target::guest(topic, id))
        .timeout(CALL_TIMEOUT)
        .call(&Context::new(), PING, &Ping { n })
        .await;
    matches!(r, Ok(p) if p.n == n)
}

/// Runs the phases on `guests` and prints their figures.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, the phase's whole context"
)]
pub async fn run(
    client: &Client,
    keys: &ControlPlaneKeys,
    operator: &Operator,
    guests: &[FleetGuest],
    topic: &str,
    opts: &FleetOptions,
    fanouts: &Arc<AtomicUsize>,
    out: Out<'_>,
) -> Result<PhaseFigures, BoxError> {
    let mut f = PhaseFigures {
        rounds: opts.call_rounds,
        ..PhaseFigures::default()
    };
    let ids: Vec<String> = guests.iter().map(|g| g.id.clone()).collect();

    let started = Instant::now();
    for round in 0..opts.call_rounds {
        let oks: Vec<bool> = futures_util::stream::iter(ids.iter().enumerate())
            .map(|(i, id)| ping(client, topic, id, (round * ids.len() + i) as u64))
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        f.calls += oks.len() as u64;
        f.call_failures += oks.iter().filter(|ok| !**ok).count() as u64;
    }
    f.calls_time = started.elapsed();
    writeln!(
        out,
        "calls: {} to every guest ({} rounds, {} in flight), {} failed, {:.0} calls/s",
        f.calls,
        f.rounds,
        opts.concurrency,
        f.call_failures,
        f.calls_per_sec()
    )?;

    fanouts.store(0, Ordering::SeqCst);
    let started = Instant::now();
    client
        .prepare(Target::new(topic).fanout(true))
        .cast(&Context::new(), REFRESH, &Ping { n: 0 })
        .await?;
    let all = guests.len();
    wait_until(Duration::from_secs(120), || {
        fanouts.load(Ordering::SeqCst) >= all
    })
    .await;
    f.fanout_time = started.elapsed();
    f.fanout_reached = fanouts.load(Ordering::SeqCst);
    writeln!(
        out,
        "fanout: reached {}/{all} guests in {:.2?}",
        f.fanout_reached, f.fanout_time
    )?;

    rekey_under_load(client, keys, operator, &ids, topic, &mut f).await?;
    let epochs_ok = guests.iter().filter(|g| g.keys.epoch() == 2).count();
    writeln!(
        out,
        "rekey: {} installed, {} failed in {:.2?} ({REKEY_CONCURRENCY} at once); meanwhile {} calls, {} failed; {epochs_ok} guests now at epoch 2",
        f.rekey_installed, f.rekey_failed, f.rekey_time, f.load_calls, f.load_failures
    )?;
    if epochs_ok != guests.len() {
        f.rekey_installed = f.rekey_installed.min(epochs_ok);
    }

    f.replay_ids = client.security().replay_guard().len();
    f.replay_bytes_per_id = replay_bytes_per_id();
    writeln!(
        out,
        "replay store: the control plane holds {} ids; in-process store ~{} bytes per id",
        f.replay_ids, f.replay_bytes_per_id
    )?;
    Ok(f)
}

/// Rotates every guest, then delivers every new bundle over the bus while another task
/// keeps calling the guests.
async fn rekey_under_load(
    client: &Client,
    keys: &ControlPlaneKeys,
    operator: &Operator,
    ids: &[String],
    topic: &str,
    f: &mut PhaseFigures,
) -> Result<(), BoxError> {
    for id in ids {
        operator.table().rotate_guest(id)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (client, ids, topic) = (client.clone(), ids.to_vec(), topic.to_owned());
        let (stop, calls, failures) =
            (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&failures));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let batch = (0..LOAD_CONCURRENCY).map(|k| {
                    let i = usize::try_from(n + k as u64).unwrap_or(0) % ids.len().max(1);
                    ping(&client, &topic, &ids[i], n + k as u64)
                });
                for ok in futures_util::future::join_all(batch).await {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += LOAD_CONCURRENCY as u64;
            }
        })
    };
    let started = Instant::now();
    let report = Rekey::new(keys.clone())
        .topic(topic)
        .call_timeout(CALL_TIMEOUT)
        .deliver_all(client, ids.to_vec(), REKEY_CONCURRENCY, |_| {})
        .await;
    f.rekey_time = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    load.await?;
    f.rekey_installed = report.installed;
    f.rekey_failed = report.failed.len();
    for (id, e) in report.failed.iter().take(3) {
        tracing::warn!(guest = %id, error = %e, "rekey failed");
    }
    f.load_calls = calls.load(Ordering::Relaxed);
    f.load_failures = failures.load(Ordering::Relaxed);
    Ok(())
}

/// The in-process replay store's cost per id: RSS before and after 100,000 ids of 1,000
/// guest principals (an estimate: the allocator keeps what it had free).
fn replay_bytes_per_id() -> u64 {
    const IDS: u64 = 100_000;
    let guard = ReplayGuard::new(ReplayConfig {
        capacity: 200_000,
        per_guest: 1_000,
        ..ReplayConfig::default()
    });
    let principals: Vec<String> = (0..1000).map(|i| format!("guest:fleet{i:04}")).collect();
    let before = rss_kib();
    let now = now_ms();
    for i in 0..IDS {
        let p = &principals[usize::try_from(i % 1000).unwrap_or(0)];
        let _ = guard.check_and_record(p, MessageId::random(), now, now);
    }
    let after = rss_kib();
    let held = u64::try_from(guard.len()).unwrap_or(IDS).max(1);
    after.saturating_sub(before) * 1024 / held
}
