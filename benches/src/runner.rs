//! Runs the same echo call under several setups **interleaved**: in each round every setup
//! gets one sequential batch and one batch with N calls in flight, in a rotating order, so
//! that machine noise (other builds, the broker's GC) lands on every setup alike.
//!
//! A setup either makes one call at a time ([`EchoCall`]: the runner times every call, see
//! [`crate::per_call`]) or runs whole batches itself ([`BatchRun`]: a baseline in another
//! process, which times its own calls and reports them), under the same [`Budget`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::BoxError;
use crate::cpu::broker_cpu_ns;
use crate::measured::{ConcBatch, Measured, SeqBatch};
use crate::per_call;

/// The future of one call.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

/// Something that makes one echo call (a sealrpc client in some mode, or the raw floor).
pub trait EchoCall: Send + Sync + 'static {
    /// One call, returning when its reply has arrived and been checked.
    fn call(&self) -> CallFuture<'_>;
}

/// The future of one whole batch (or warm-up) of a [`BatchRun`].
pub type BatchFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// Something that runs whole batches and reports what they measured, including the CPU
/// time of the processes that made the calls (e.g. oslo.messaging in Python processes).
pub trait BatchRun: Send + Sync + 'static {
    /// Untimed calls before measuring; an error means the setup does not work.
    fn warm_up(&self, budget: Budget) -> BatchFuture<'_, ()>;
    /// One sequential batch, sized as [`Budget`] says.
    fn sequential(&self, budget: Budget) -> BatchFuture<'_, SeqBatch>;
    /// One batch with `budget.in_flight` calls in flight, sized as [`Budget`] says.
    fn concurrent(&self, budget: Budget) -> BatchFuture<'_, ConcBatch>;
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

/// How a setup is driven.
#[derive(Clone)]
pub enum Caller {
    /// The runner makes and times every call.
    PerCall(Arc<dyn EchoCall>),
    /// The setup runs and times whole batches.
    PerBatch(Arc<dyn BatchRun>),
}

/// A named thing to measure.
pub struct Setup {
    /// The row name.
    pub name: String,
    /// How it is driven.
    pub caller: Caller,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.caller {
            Caller::PerCall(_) => "per call",
            Caller::PerBatch(_) => "per batch",
        };
        f.debug_struct("Setup")
            .field("name", &self.name)
            .field("caller", &kind)
            .finish()
    }
}

impl Setup {
    /// A setup whose calls the runner makes and times one by one.
    pub fn per_call(name: impl Into<String>, caller: Arc<dyn EchoCall>) -> Self {
        Self {
            name: name.into(),
            caller: Caller::PerCall(caller),
        }
    }

    /// A setup that runs whole batches itself.
    pub fn per_batch(name: impl Into<String>, runner: Arc<dyn BatchRun>) -> Self {
        Self {
            name: name.into(),
            caller: Caller::PerBatch(runner),
        }
    }

    async fn warm_up(&self, budget: &Budget) -> Result<(), BoxError> {
        match &self.caller {
            Caller::PerCall(c) => {
                for _ in 0..budget.warmup.max(1) {
                    c.call().await?;
                }
                Ok(())
            }
            Caller::PerBatch(b) => b.warm_up(*budget).await,
        }
    }

    async fn sequential(&self, budget: &Budget, out: &mut Measured) {
        let broker0 = broker_cpu_ns();
        let batch = match &self.caller {
            Caller::PerCall(c) => per_call::sequential(c.as_ref(), budget).await,
            Caller::PerBatch(b) => b.sequential(*budget).await.unwrap_or_else(|e| {
                self.batch_failed("sequential", &e);
                SeqBatch::failed()
            }),
        };
        let broker = broker0
            .zip(broker_cpu_ns())
            .map(|(b0, b1)| b1.saturating_sub(b0));
        out.add_sequential(batch, broker);
    }

    async fn concurrent(&self, budget: &Budget, out: &mut Measured) {
        let batch = match &self.caller {
            Caller::PerCall(c) => per_call::concurrent(c, budget).await,
            Caller::PerBatch(b) => b.concurrent(*budget).await.unwrap_or_else(|e| {
                self.batch_failed("in-flight", &e);
                ConcBatch::failed()
            }),
        };
        out.add_concurrent(batch);
    }

    fn batch_failed(&self, kind: &str, e: &BoxError) {
        eprintln!("[overhead] {}: {kind} batch failed: {e}", self.name);
    }
}

/// Measures every setup over `budget.rounds` interleaved rounds (after an untimed warm-up
/// of each, which fails the run if a setup does not work). Results are in the order of
/// `setups`.
pub async fn run_interleaved(setups: &[Setup], budget: &Budget) -> Result<Vec<Measured>, BoxError> {
    for s in setups {
        s.warm_up(budget)
            .await
            .map_err(|e| format!("{}: warm-up failed: {e}", s.name))?;
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
            s.sequential(budget, &mut results[i]).await;
            s.concurrent(budget, &mut results[i]).await;
        }
    }
    Ok(results)
}
