//! Runs the same echo call under several setups **interleaved**: in each round every setup
//! gets one sequential batch and one batch with N calls in flight, in a rotating order, so
//! that machine noise (other builds, the broker's GC) lands on every setup alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::BoxError;
use crate::cpu::{broker_cpu_ns, process_cpu_ns};

/// The future of one call.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

/// Something that makes one echo call (a sealrpc client in some mode, or the raw floor).
pub trait EchoCall: Send + Sync + 'static {
    /// One call, returning when its reply has arrived and been checked.
    fn call(&self) -> CallFuture<'_>;
}

/// How much each row measures.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Interleaved rounds.
    pub rounds: usize,
    /// Time each setup runs per round and per batch kind (sequential, concurrent),
    /// unless `calls` fixes the counts.
    pub slice: Duration,
    /// When set: calls per batch (sequential and concurrent alike) instead of `slice`.
    pub calls: Option<u64>,
    /// Calls in flight in the concurrent batches.
    pub in_flight: usize,
    /// Fewest calls a time-bounded batch makes (so slow rows still get samples).
    pub min_calls: u64,
    /// Untimed calls per setup before measuring (also checks that every setup works).
    pub warmup: usize,
}

/// What one setup measured over all rounds.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Sequential call latencies, nanoseconds.
    pub latencies: Vec<u64>,
    /// Sequential batches: wall time and CPU time, nanoseconds.
    pub seq_wall_ns: u64,
    /// CPU time of the sequential batches (this process, all threads).
    pub seq_cpu_ns: u64,
    /// The local broker's CPU time during the sequential batches (`None`: not visible).
    pub seq_broker_ns: Option<u64>,
    /// Concurrent batches: calls, wall time and CPU time.
    pub conc_calls: u64,
    /// Wall time of the concurrent batches.
    pub conc_wall_ns: u64,
    /// CPU time of the concurrent batches.
    pub conc_cpu_ns: u64,
    /// Calls that failed (not counted in the figures above).
    pub errors: u64,
}

impl Measured {
    /// Sequential calls measured.
    pub fn seq_calls(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// The `q` quantile (0..=1) of the sequential latencies, in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        let mut v = self.latencies.clone();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_unstable();
        let idx = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[idx.min(v.len() - 1)] as f64 / 1000.0
    }

    /// Sequential calls per second.
    pub fn seq_rate(&self) -> f64 {
        rate(self.seq_calls(), self.seq_wall_ns)
    }

    /// Calls per second with the budget's calls in flight.
    pub fn conc_rate(&self) -> f64 {
        rate(self.conc_calls, self.conc_wall_ns)
    }

    /// CPU microseconds per sequential call (client + server in this process).
    pub fn seq_cpu_us(&self) -> f64 {
        per_call_us(self.seq_cpu_ns, self.seq_calls())
    }

    /// The local broker's CPU microseconds per sequential call, when it is visible.
    pub fn seq_broker_us(&self) -> Option<f64> {
        self.seq_broker_ns
            .map(|ns| per_call_us(ns, self.seq_calls()))
    }

    /// CPU microseconds per call with calls in flight.
    pub fn conc_cpu_us(&self) -> f64 {
        per_call_us(self.conc_cpu_ns, self.conc_calls)
    }
}

fn rate(calls: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        calls as f64 * 1e9 / ns as f64
    }
}

fn per_call_us(ns: u64, calls: u64) -> f64 {
    if calls == 0 {
        0.0
    } else {
        ns as f64 / calls as f64 / 1000.0
    }
}

/// A named thing to measure.
pub struct Setup {
    /// The row name.
    pub name: String,
    /// The call.
    pub caller: Arc<dyn EchoCall>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup").field("name", &self.name).finish()
    }
}

async fn sequential(caller: &dyn EchoCall, budget: &Budget, out: &mut Measured) {
    let broker0 = broker_cpu_ns();
    let cpu0 = process_cpu_ns();
    let t0 = Instant::now();
    let mut n = 0u64;
    loop {
        let done = match budget.calls {
            Some(c) => n >= c,
            None => n >= budget.min_calls && t0.elapsed() >= budget.slice,
        };
        if done {
            break;
        }
        let t = Instant::now();
        match caller.call().await {
            Ok(()) => out.latencies.push(t.elapsed().as_nanos() as u64),
            Err(_) => {
                // E.g. the broker restarting under us: count it, do not spin.
                out.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        n += 1;
    }
    out.seq_wall_ns += t0.elapsed().as_nanos() as u64;
    out.seq_cpu_ns += process_cpu_ns().saturating_sub(cpu0);
    if let (Some(b0), Some(b1)) = (broker0, broker_cpu_ns()) {
        *out.seq_broker_ns.get_or_insert(0) += b1.saturating_sub(b0);
    }
}

async fn concurrent(caller: &Arc<dyn EchoCall>, budget: &Budget, out: &mut Measured) {
    let started = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + budget.slice;
    let min = budget.min_calls.max(budget.in_flight as u64);
    let cpu0 = process_cpu_ns();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(budget.in_flight);
    for _ in 0..budget.in_flight {
        let caller = Arc::clone(caller);
        let (started, ok, failed) = (Arc::clone(&started), Arc::clone(&ok), Arc::clone(&failed));
        let calls = budget.calls;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = started.fetch_add(1, Ordering::Relaxed);
                let more = match calls {
                    Some(c) => i < c,
                    None => i < min || Instant::now() < deadline,
                };
                if !more {
                    break;
                }
                if caller.call().await.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    // Count it and stop this worker: a broken setup must not spin.
                    failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    out.conc_wall_ns += t0.elapsed().as_nanos() as u64;
    out.conc_cpu_ns += process_cpu_ns().saturating_sub(cpu0);
    out.conc_calls += ok.load(Ordering::Relaxed);
    out.errors += failed.load(Ordering::Relaxed);
}

/// Measures every setup over `budget.rounds` interleaved rounds (after one short untimed
/// warm-up round). Results are in the order of `setups`.
pub async fn run_interleaved(setups: &[Setup], budget: &Budget) -> Result<Vec<Measured>, BoxError> {
    // Warm-up: a few calls each, checking that every setup works before timing anything.
    for s in setups {
        for _ in 0..budget.warmup.max(1) {
            s.caller
                .call()
                .await
                .map_err(|e| format!("{}: warm-up call failed: {e}", s.name))?;
        }
    }
    let mut results = vec![Measured::default(); setups.len()];
    let n = setups.len();
    for round in 0..budget.rounds {
        for k in 0..n {
            // Rotate the starting setup every round, and reverse every other round, so no
            // setup always follows the same neighbour.
            let i = if round % 2 == 0 {
                (round + k) % n
            } else {
                (round + n - 1 - k) % n
            };
            let s = &setups[i];
            sequential(s.caller.as_ref(), budget, &mut results[i]).await;
            concurrent(&s.caller, budget, &mut results[i]).await;
        }
    }
    Ok(results)
}
