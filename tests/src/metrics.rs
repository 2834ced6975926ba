//! Measurements for the reliability suites: latency percentiles, throughput, resident
//! memory, outcome tallies, and env knobs.

use std::sync::Mutex;
use std::time::Duration;

/// Resident set size of this process in KiB (`VmRSS` from /proc/self/status).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// An env knob: `name` parsed as `T`, else `default`.
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Call latencies, collected from many tasks.
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Mutex<Vec<Duration>>,
}

impl Latencies {
    /// Records one.
    pub fn record(&self, d: Duration) {
        self.samples.lock().expect("lock").push(d);
    }

    /// Adds a batch.
    pub fn extend(&self, d: Vec<Duration>) {
        self.samples.lock().expect("lock").extend(d);
    }

    /// Number recorded.
    pub fn len(&self) -> usize {
        self.samples.lock().expect("lock").len()
    }

    /// True when none was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut s = self.samples.lock().expect("lock").clone();
        if s.is_empty() {
            return Duration::ZERO;
        }
        s.sort_unstable();
        let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
        s[rank - 1]
    }

    /// `p50=.. p99=.. p999=.. max=..` in microseconds.
    pub fn summary(&self) -> String {
        let us = |d: Duration| d.as_micros();
        format!(
            "p50={}us p99={}us p999={}us max={}us",
            us(self.quantile(0.50)),
            us(self.quantile(0.99)),
            us(self.quantile(0.999)),
            us(self.quantile(1.0)),
        )
    }
}

/// Calls per second.
pub fn throughput(calls: usize, elapsed: Duration) -> f64 {
    calls as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Failed operations with their error, for the assertion message.
#[derive(Debug, Default)]
pub struct Failures {
    list: Mutex<Vec<String>>,
}

impl Failures {
    /// Records one.
    pub fn push(&self, what: impl Into<String>) {
        self.list.lock().expect("lock").push(what.into());
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.lock().expect("lock").len()
    }

    /// True when there were none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first few, for a panic message.
    pub fn first(&self, n: usize) -> Vec<String> {
        self.list
            .lock()
            .expect("lock")
            .iter()
            .take(n)
            .cloned()
            .collect()
    }
}
