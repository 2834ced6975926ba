//! Latency and throughput per security mode, measured in this run: the task manager calls
//! one guest (`get_status`, 1 KiB of arguments) in short batches, the modes interleaved
//! round after round so that they share the machine's conditions.

use std::time::{Duration, Instant};

use sealrpc_core::security::{ClassPolicy, Policy};
use sealrpc_core::{Context, Target};

use super::BoxError;
use super::api::{GetStatus, GuestReply, method};
use super::cluster::Cluster;

/// The measured modes, in print order: plain first (the baseline).
pub const MODES: [&str; 4] = [
    "plain (off)",
    "signed",
    "sealed (pairwise)",
    "signed+sealed",
];

fn policy(mode: usize) -> Policy {
    let p = match mode {
        0 => ClassPolicy::off(),
        1 => ClassPolicy {
            seal: false,
            require_sealed: false,
            ..ClassPolicy::enforce()
        },
        2 => ClassPolicy::pairwise(),
        _ => ClassPolicy::enforce(),
    };
    Policy::uniform(p)
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    /// Rounds (each runs one batch per mode).
    pub rounds: usize,
    /// Calls per batch.
    pub batch: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
}

/// The result for one mode.
#[derive(Debug, Clone)]
pub struct ModeResult {
    /// The mode's name.
    pub mode: &'static str,
    /// Calls measured.
    pub calls: usize,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Calls per second.
    pub throughput: f64,
    /// Failed calls (must be 0).
    pub failures: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Measures every mode between the task manager and the last guest, then restores both
/// ends' policies.
pub async fn run(cluster: &Cluster, cfg: BenchConfig) -> Result<Vec<ModeResult>, BoxError> {
    let g = cluster.guests.last().ok_or("no guest")?;
    let tm = &cluster.taskmanager;
    let (tm_policy, g_policy) = (tm.security.policy(), g.security.policy());
    let target = Target::guest(cluster.net.topics.guestagent.clone(), g.id.clone());
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); MODES.len()];
    let mut busy = vec![Duration::ZERO; MODES.len()];
    let mut failures = vec![0usize; MODES.len()];
    for _ in 0..cfg.rounds {
        for (m, _) in MODES.iter().enumerate() {
            tm.security.set_policy(policy(m));
            g.security.set_policy(policy(m));
            let started = Instant::now();
            let mut left = cfg.batch;
            while left > 0 {
                let n = left.min(cfg.concurrency.max(1));
                left -= n;
                let calls = (0..n).map(|_| {
                    let args = GetStatus {
                        instance_id: g.id.clone(),
                        payload: vec![0x5a; 1024],
                    };
                    let (client, target) = (&tm.client, &target);
                    async move {
                        let t = Instant::now();
                        let r = client
                            .call::<_, GuestReply>(
                                &Context::new(),
                                target,
                                method::GET_STATUS,
                                &args,
                            )
                            .await;
                        (t.elapsed(), r.is_ok())
                    }
                });
                for (d, ok) in futures_util::future::join_all(calls).await {
                    lat[m].push(d);
                    failures[m] += usize::from(!ok);
                }
            }
            busy[m] += started.elapsed();
        }
    }
    tm.security.set_policy(tm_policy);
    g.security.set_policy(g_policy);
    Ok(MODES
        .iter()
        .enumerate()
        .map(|(m, mode)| {
            let mut l = std::mem::take(&mut lat[m]);
            l.sort();
            ModeResult {
                mode,
                calls: l.len(),
                p50: percentile(&l, 0.50),
                p99: percentile(&l, 0.99),
                throughput: l.len() as f64 / busy[m].as_secs_f64().max(1e-9),
                failures: failures[m],
            }
        })
        .collect())
}
