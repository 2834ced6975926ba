//! oslo.messaging's echo as a [`BatchRun`] setup: every batch the runner asks for is one
//! command to the driver, which times its own calls; the CPU figures are the driver's and
//! its echo server's (the two Python processes), read from `/proc` around each batch.

use std::time::Duration;

use crate::cpu::pid_cpu_ns;
use crate::measured::{ConcBatch, SeqBatch};
use crate::oslo::driver::DriverProcess;
use crate::oslo::error::DriverError;
use crate::oslo::protocol::{Command, Reply};
use crate::runner::{BatchFuture, BatchRun, Budget};

/// Time a driver gets to answer, beyond the batch's own budget.
const REPLY_SLACK: Duration = Duration::from_secs(120);

/// Time allowed per call of a count-bounded batch (oslo makes ~600 calls/s here).
const PER_CALL: Duration = Duration::from_millis(100);

/// The oslo.messaging echo row, driven through a [`DriverProcess`].
#[derive(Debug)]
pub struct OsloEcho {
    driver: DriverProcess,
}

impl OsloEcho {
    /// Wraps a started driver.
    pub fn new(driver: DriverProcess) -> Self {
        Self { driver }
    }

    /// The driver process.
    pub fn driver(&self) -> &DriverProcess {
        &self.driver
    }

    /// Stops the driver and its echo server.
    pub async fn close(&self) {
        self.driver.close().await;
    }

    /// CPU nanoseconds used so far by the driver and its echo server (`None`: not visible).
    fn cpu_ns(&self) -> Option<u64> {
        self.driver.pids().iter().map(|&pid| pid_cpu_ns(pid)).sum()
    }

    async fn request(&self, command: &Command, calls: u64) -> Result<Reply, DriverError> {
        let count = u32::try_from(calls).unwrap_or(u32::MAX);
        let slice = match command {
            Command::Sequential { slice_ns, .. } | Command::Concurrent { slice_ns, .. } => {
                Duration::from_nanos(*slice_ns)
            }
            Command::Warmup { .. } | Command::Quit => Duration::ZERO,
        };
        let within = REPLY_SLACK + slice + PER_CALL.saturating_mul(count);
        self.driver.request(command, within).await
    }
}

/// Calls a batch of `budget` makes at least (what its reply deadline is sized for).
fn batch_calls(budget: &Budget) -> u64 {
    budget.calls.unwrap_or(budget.min_calls)
}

fn unexpected(expected: &'static str, got: &Reply) -> DriverError {
    DriverError::Unexpected {
        expected,
        got: format!("{got:?}"),
    }
}

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    before.zip(after).map(|(b, a)| a.saturating_sub(b))
}

impl BatchRun for OsloEcho {
    fn warm_up(&self, budget: Budget) -> BatchFuture<'_, ()> {
        Box::pin(async move {
            let calls = budget.warmup.max(1) as u64;
            let command = Command::Warmup {
                calls,
                in_flight: budget.in_flight,
            };
            let total = calls + 2 * budget.in_flight as u64;
            match self.request(&command, total).await? {
                Reply::Warmup { .. } => Ok(()),
                other => Err(unexpected("warmup", &other).into()),
            }
        })
    }

    fn sequential(&self, budget: Budget) -> BatchFuture<'_, SeqBatch> {
        Box::pin(async move {
            let cpu0 = self.cpu_ns();
            let reply = self
                .request(&Command::sequential(&budget), batch_calls(&budget))
                .await?;
            let cpu_ns = delta(cpu0, self.cpu_ns());
            match reply {
                Reply::Sequential {
                    latencies_ns,
                    wall_ns,
                    errors,
                } => Ok(SeqBatch {
                    latencies_ns,
                    wall_ns,
                    cpu_ns,
                    errors,
                }),
                other => Err(unexpected("sequential", &other).into()),
            }
        })
    }

    fn concurrent(&self, budget: Budget) -> BatchFuture<'_, ConcBatch> {
        Box::pin(async move {
            let cpu0 = self.cpu_ns();
            let calls = batch_calls(&budget).max(budget.in_flight as u64);
            let reply = self.request(&Command::concurrent(&budget), calls).await?;
            let cpu_ns = delta(cpu0, self.cpu_ns());
            match reply {
                Reply::Concurrent {
                    calls,
                    wall_ns,
                    errors,
                } => Ok(ConcBatch {
                    calls,
                    wall_ns,
                    cpu_ns,
                    errors,
                }),
                other => Err(unexpected("concurrent", &other).into()),
            }
        })
    }
}
