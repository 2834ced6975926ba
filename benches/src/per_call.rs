//! Batches of a per-call setup ([`EchoCall`]): the runner times every call itself, in this
//! process, and counts this process's CPU (client and server both run here).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cpu::process_cpu_ns;
use crate::measured::{ConcBatch, SeqBatch};
use crate::runner::{Budget, EchoCall};

/// One sequential batch: calls one after the other for the budget's slice (at least its
/// minimum count) or its fixed count.
pub async fn sequential(caller: &dyn EchoCall, budget: &Budget) -> SeqBatch {
    let mut batch = SeqBatch::default();
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
            Ok(()) => batch.latencies_ns.push(t.elapsed().as_nanos() as u64),
            Err(_) => {
                // E.g. the broker restarting under us: count it, do not spin.
                batch.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        n += 1;
    }
    batch.wall_ns = t0.elapsed().as_nanos() as u64;
    batch.cpu_ns = Some(process_cpu_ns().saturating_sub(cpu0));
    batch
}

/// One batch with the budget's calls in flight (one task each), for its slice or count.
pub async fn concurrent(caller: &Arc<dyn EchoCall>, budget: &Budget) -> ConcBatch {
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
    ConcBatch {
        calls: ok.load(Ordering::Relaxed),
        wall_ns: t0.elapsed().as_nanos() as u64,
        cpu_ns: Some(process_cpu_ns().saturating_sub(cpu0)),
        errors: failed.load(Ordering::Relaxed),
    }
}
