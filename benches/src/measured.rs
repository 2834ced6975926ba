//! What the runner measures: one batch's figures ([`SeqBatch`], [`ConcBatch`]) and a row's
//! totals over every round ([`Measured`]), with the rates and per-call costs derived from them.

/// What one sequential batch measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeqBatch {
    /// Latency of every call that succeeded, nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Wall time of the batch, nanoseconds.
    pub wall_ns: u64,
    /// CPU time the setup's processes used during the batch (`None`: not visible).
    pub cpu_ns: Option<u64>,
    /// Calls that failed.
    pub errors: u64,
}

/// What one batch with calls in flight measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConcBatch {
    /// Calls that succeeded.
    pub calls: u64,
    /// Wall time of the batch, nanoseconds.
    pub wall_ns: u64,
    /// CPU time the setup's processes used during the batch (`None`: not visible).
    pub cpu_ns: Option<u64>,
    /// Calls that failed.
    pub errors: u64,
}

/// What one setup measured over all rounds.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Sequential call latencies, nanoseconds.
    pub latencies: Vec<u64>,
    /// Wall time of the sequential batches, nanoseconds.
    pub seq_wall_ns: u64,
    /// CPU time of the sequential batches (the setup's processes, all threads; summed over
    /// the batches where it was visible, `None` if it never was).
    pub seq_cpu_ns: Option<u64>,
    /// The local broker's CPU time during the sequential batches (`None`: not visible).
    pub seq_broker_ns: Option<u64>,
    /// Calls completed in the concurrent batches.
    pub conc_calls: u64,
    /// Wall time of the concurrent batches.
    pub conc_wall_ns: u64,
    /// CPU time of the concurrent batches.
    pub conc_cpu_ns: Option<u64>,
    /// Calls that failed, and batches that could not run (not counted in the figures above).
    pub errors: u64,
}

impl SeqBatch {
    /// A batch that could not run: one error, nothing measured.
    pub fn failed() -> Self {
        Self {
            errors: 1,
            ..Self::default()
        }
    }
}

impl ConcBatch {
    /// A batch that could not run: one error, nothing measured.
    pub fn failed() -> Self {
        Self {
            errors: 1,
            ..Self::default()
        }
    }
}

fn add(total: &mut Option<u64>, v: Option<u64>) {
    if let Some(v) = v {
        *total.get_or_insert(0) += v;
    }
}

impl Measured {
    /// Adds a sequential batch, and the broker's CPU time during it.
    pub fn add_sequential(&mut self, batch: SeqBatch, broker_ns: Option<u64>) {
        self.latencies.extend(batch.latencies_ns);
        self.seq_wall_ns += batch.wall_ns;
        add(&mut self.seq_cpu_ns, batch.cpu_ns);
        add(&mut self.seq_broker_ns, broker_ns);
        self.errors += batch.errors;
    }

    /// Adds a batch with calls in flight.
    pub fn add_concurrent(&mut self, batch: ConcBatch) {
        self.conc_calls += batch.calls;
        self.conc_wall_ns += batch.wall_ns;
        add(&mut self.conc_cpu_ns, batch.cpu_ns);
        self.errors += batch.errors;
    }

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

    /// CPU microseconds per sequential call (the setup's processes), when visible.
    pub fn seq_cpu_us(&self) -> Option<f64> {
        self.seq_cpu_ns.map(|ns| per_call_us(ns, self.seq_calls()))
    }

    /// The local broker's CPU microseconds per sequential call, when it is visible.
    pub fn seq_broker_us(&self) -> Option<f64> {
        self.seq_broker_ns
            .map(|ns| per_call_us(ns, self.seq_calls()))
    }

    /// CPU microseconds per call with calls in flight, when visible.
    pub fn conc_cpu_us(&self) -> Option<f64> {
        self.conc_cpu_ns.map(|ns| per_call_us(ns, self.conc_calls))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_add_up() {
        let mut m = Measured::default();
        let seq = |lat: Vec<u64>, cpu| SeqBatch {
            latencies_ns: lat,
            wall_ns: 1_000,
            cpu_ns: cpu,
            errors: 1,
        };
        m.add_sequential(seq(vec![100, 300], Some(400)), None);
        m.add_sequential(seq(vec![200], None), Some(30));
        m.add_concurrent(ConcBatch {
            calls: 4,
            wall_ns: 2_000,
            cpu_ns: None,
            errors: 0,
        });
        assert_eq!(m.seq_calls(), 3);
        assert_eq!(m.seq_wall_ns, 2_000);
        assert_eq!(m.seq_cpu_ns, Some(400));
        assert_eq!(m.seq_broker_ns, Some(30));
        assert_eq!(m.conc_cpu_ns, None);
        assert_eq!(m.conc_cpu_us(), None);
        assert_eq!(m.errors, 2);
        assert_eq!(m.quantile_us(0.5), 0.2);
        assert_eq!(m.conc_rate(), 2e6);
    }
}
