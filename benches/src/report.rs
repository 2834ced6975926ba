//! The overhead report: rows, ratios, the targets, text and JSON output.

use std::fmt::Write as _;

use serde::Serialize;

use crate::measured::Measured;
use crate::oslo;
use crate::pieces_ratio::PiecesRatio;

/// One measured row: a setup (mode, raw floor or oslo.messaging) at one payload size on
/// one transport.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `memory` or `amqp`.
    pub transport: String,
    /// Payload label, e.g. `1KiB`.
    pub size: String,
    /// Payload bytes.
    pub bytes: usize,
    /// Mode name (`plain`, `signed+sealed`, ...), raw floor name (`raw-lapin`, ...) or
    /// `oslo.messaging`.
    pub mode: String,
    /// Sequential calls measured.
    pub calls_seq: u64,
    /// Calls measured with `in_flight` in flight.
    pub calls_conc: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Median sequential latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile sequential latency, microseconds.
    pub p99_us: f64,
    /// Mean sequential latency, microseconds.
    pub mean_us: f64,
    /// Sequential calls per second.
    pub seq_calls_per_s: f64,
    /// Calls per second with `in_flight` calls in flight.
    pub conc_calls_per_s: f64,
    /// Calls in flight in the concurrent measurement.
    pub in_flight: usize,
    /// CPU microseconds per sequential call of the processes making the calls (client and
    /// server: this process, or oslo.messaging's two Python processes; not the broker).
    /// `None` where not visible.
    pub cpu_us_per_call_seq: Option<f64>,
    /// CPU microseconds per call with calls in flight.
    pub cpu_us_per_call_conc: Option<f64>,
    /// The local broker's CPU microseconds per sequential call (RabbitMQ rows with the
    /// broker on this machine; `None` otherwise).
    pub broker_cpu_us_per_call_seq: Option<f64>,
    /// p50 latency relative to plain's in the same block (1.0 for plain).
    pub p50_vs_plain: Option<f64>,
    /// Throughput in flight relative to plain's (1.0 for plain; lower is slower).
    pub conc_vs_plain: Option<f64>,
}

impl Row {
    /// A row from what the runner measured.
    pub fn new(
        transport: &str,
        (size, bytes): (&str, usize),
        mode: &str,
        m: &Measured,
        in_flight: usize,
    ) -> Self {
        let mean_us = if m.seq_calls() == 0 {
            0.0
        } else {
            m.latencies.iter().sum::<u64>() as f64 / m.seq_calls() as f64 / 1000.0
        };
        Self {
            transport: transport.to_owned(),
            size: size.to_owned(),
            bytes,
            mode: mode.to_owned(),
            calls_seq: m.seq_calls(),
            calls_conc: m.conc_calls,
            errors: m.errors,
            p50_us: m.quantile_us(0.5),
            p99_us: m.quantile_us(0.99),
            mean_us,
            seq_calls_per_s: m.seq_rate(),
            conc_calls_per_s: m.conc_rate(),
            in_flight,
            cpu_us_per_call_seq: m.seq_cpu_us(),
            cpu_us_per_call_conc: m.conc_cpu_us(),
            // The memory transport does not use the broker: what it did meanwhile is noise.
            broker_cpu_us_per_call_seq: if transport == "memory" {
                None
            } else {
                m.seq_broker_us()
            },
            p50_vs_plain: None,
            conc_vs_plain: None,
        }
    }
}

/// A ratio of plain to a raw lapin floor, in one block.
#[derive(Debug, Clone, Serialize)]
pub struct FloorRatio {
    /// Payload label.
    pub size: String,
    /// The floor row's name.
    pub floor: String,
    /// plain p50 / floor p50.
    pub plain_p50_vs_floor: f64,
    /// floor calls/s in flight / plain calls/s in flight (how much slower plain is in flight).
    pub floor_conc_vs_plain: f64,
}

/// One of the targets, evaluated on this run.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The measured value.
    pub measured: f64,
    /// The bound.
    pub bound: f64,
    /// `true` when the bound is an upper bound (`measured <= bound` passes).
    pub upper: bool,
    /// Whether it is met.
    pub met: bool,
}

/// The machine and the run's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub nproc: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// The primitives' backends this build runs on this CPU
    /// ([`sealrpc_signers::CryptoBackends`]).
    pub crypto: String,
    /// Load average (1 min) when the run started.
    pub load_start: f64,
    /// Load average (1 min) when the run ended.
    pub load_end: f64,
}

impl Machine {
    /// What this machine is, now.
    pub fn probe() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            crypto: sealrpc_signers::CryptoBackends::detect().to_string(),
            load_start: load1(),
            load_end: 0.0,
        }
    }
}

/// The 1-minute load average (0 where unknown).
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// How the run was invoked.
    pub command: String,
    /// Quick (smoke) or full.
    pub quick: bool,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Every row.
    pub rows: Vec<Row>,
    /// plain against the raw floors (AMQP only).
    pub floors: Vec<FloorRatio>,
    /// Why the oslo.messaging rows are missing, when they are.
    pub oslo_note: Option<String>,
    /// The pieces-bench ratio, measured in this process.
    pub pieces: Option<PiecesRatio>,
    /// The targets of issue 15 this run has the rows for.
    pub targets: Vec<Target>,
}

impl Report {
    /// Fills the ratio columns, the floor ratios and the targets from the rows.
    pub fn finish(&mut self) {
        let rows = self.rows.clone();
        let find = |t: &str, s: &str, m: &str| {
            rows.iter()
                .find(|r| r.transport == t && r.size == s && r.mode == m)
        };
        for r in &mut self.rows {
            if let Some(p) = find(&r.transport, &r.size, "plain") {
                r.p50_vs_plain = Some(ratio(r.p50_us, p.p50_us));
                r.conc_vs_plain = Some(ratio(r.conc_calls_per_s, p.conc_calls_per_s));
            }
        }
        self.floors.clear();
        for r in rows.iter().filter(|r| r.mode.starts_with("raw-")) {
            if let Some(p) = find(&r.transport, &r.size, "plain") {
                self.floors.push(FloorRatio {
                    size: r.size.clone(),
                    floor: r.mode.clone(),
                    plain_p50_vs_floor: ratio(p.p50_us, r.p50_us),
                    floor_conc_vs_plain: ratio(r.conc_calls_per_s, p.conc_calls_per_s),
                });
            }
        }
        self.targets = crate::targets::evaluate(&rows, self.pieces.as_ref());
    }

    /// The report as a human-readable table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "sealrpc overhead report ({}) — {} x {} — load {:.2} -> {:.2} — {:.0} s",
            if self.quick { "quick" } else { "full" },
            m.nproc,
            m.cpu,
            m.load_start,
            m.load_end,
            self.seconds
        );
        let _ = writeln!(out, "command: {}", self.command);
        let _ = writeln!(out, "crypto backends: {}", m.crypto);
        let _ = writeln!(
            out,
            "latency = sequential calls; xplain = p50 / plain p50 (lower is better); \
             @N = calls/s with N in flight; thr/plain = that / plain's (higher is better); \
             cpu = CPU us per call in this process (client + server; for oslo.messaging: its \
             client and server processes); broker = the local RabbitMQ's CPU us per \
             sequential call"
        );
        let mut last = (String::new(), String::new());
        for r in &self.rows {
            if (r.transport.as_str(), r.size.as_str()) != (last.0.as_str(), last.1.as_str()) {
                last = (r.transport.clone(), r.size.clone());
                let _ = writeln!(out);
                let _ = writeln!(out, "== {} {} ==", r.transport, r.size);
                let _ = writeln!(
                    out,
                    "{:<20} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>6}",
                    "mode",
                    "p50 us",
                    "p99 us",
                    "xplain",
                    "seq/s",
                    format!("@{}/s", r.in_flight),
                    "thr/plain",
                    "cpu seq",
                    format!("cpu @{}", r.in_flight),
                    "broker",
                    "calls"
                );
            }
            let _ = writeln!(
                out,
                "{:<20} {:>9.1} {:>9.1} {:>7} {:>9.0} {:>9.0} {:>9} {:>8} {:>8} {:>7} {:>6}{}",
                r.mode,
                r.p50_us,
                r.p99_us,
                fmt_ratio(r.p50_vs_plain),
                r.seq_calls_per_s,
                r.conc_calls_per_s,
                fmt_ratio(r.conc_vs_plain),
                fmt_us(r.cpu_us_per_call_seq),
                fmt_us(r.cpu_us_per_call_conc),
                fmt_us(r.broker_cpu_us_per_call_seq),
                r.calls_seq + r.calls_conc,
                if r.errors > 0 {
                    format!("  ({} errors)", r.errors)
                } else {
                    String::new()
                }
            );
        }
        if !self.floors.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "plain vs the raw lapin floors (same run):");
            for f in &self.floors {
                let _ = writeln!(
                    out,
                    "  {:<6} plain p50 = {:.2}x {} p50; {} does {:.2}x plain's calls/s in flight",
                    f.size, f.plain_p50_vs_floor, f.floor, f.floor, f.floor_conc_vs_plain
                );
            }
        }
        self.oslo_text(&mut out);
        if let Some(p) = &self.pieces {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "pipeline/signed+sealed/{} B (no transport): {:.1} us per round trip; its \
                 primitives (4 AEAD + 4 SHA-256 + 2 signs + 2 verify_strict): {:.1} us; \
                 median of the paired samples' ratios {:.3}",
                p.bytes,
                p.pipeline_us,
                p.primitives_us,
                p.ratio()
            );
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "targets (issue 15) on {} x {} ({}):",
                m.nproc, m.cpu, m.crypto
            );
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "  [{}] {}: {:.3} ({} {:.2})",
                    if t.met { "MET   " } else { "MISSED" },
                    t.what,
                    t.measured,
                    if t.upper { "<=" } else { ">=" },
                    t.bound
                );
            }
        }
        out
    }
}

impl Report {
    /// Why oslo.messaging is missing, or sealrpc's calls/s as multiples of its calls/s.
    fn oslo_text(&self, out: &mut String) {
        if let Some(note) = &self.oslo_note {
            let _ = writeln!(out);
            let _ = writeln!(out, "oslo.messaging row: skipped ({note})");
        }
        let mut oslo_rows = self.rows.iter().filter(|r| r.mode == oslo::ROW).peekable();
        if oslo_rows.peek().is_none() {
            return;
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "sealrpc's calls/s as multiples of oslo.messaging's (same rounds, interleaved), \
             sequential / in flight:"
        );
        for o in oslo_rows {
            let mut line = format!("  {:<6}", o.size);
            if o.calls_seq == 0 || o.calls_conc == 0 {
                let _ = writeln!(
                    out,
                    "{line} oslo.messaging measured nothing ({} errors)",
                    o.errors
                );
                continue;
            }
            let sealrpc = self.rows.iter().filter(|r| {
                r.transport == o.transport
                    && r.size == o.size
                    && r.mode != oslo::ROW
                    && !r.mode.starts_with("raw-")
            });
            for (i, r) in sealrpc.enumerate() {
                let _ = write!(
                    line,
                    "{} {} {:.1}x / {:.1}x",
                    if i == 0 { "" } else { ";" },
                    r.mode,
                    ratio(r.seq_calls_per_s, o.seq_calls_per_s),
                    ratio(r.conc_calls_per_s, o.conc_calls_per_s)
                );
            }
            let _ = writeln!(out, "{line}");
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn fmt_us(us: Option<f64>) -> String {
    us.map_or_else(|| "-".into(), |us| format!("{us:.1}"))
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}
