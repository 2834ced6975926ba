//! The targets of issue 15, evaluated on one report run (each printed as MET or MISSED
//! with the measured value; a target whose rows were not run is left out).

use crate::oslo;
use crate::pieces_ratio::PiecesRatio;
use crate::report::{Row, Target};

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn push(out: &mut Vec<Target>, what: String, v: Option<f64>, bound: f64, upper: bool) {
    if let Some(v) = v {
        out.push(Target {
            what,
            measured: v,
            bound,
            upper,
            met: if upper { v <= bound } else { v >= bound },
        });
    }
}

/// Every target of issue 15 that this run has the rows for.
pub fn evaluate(rows: &[Row], pieces: Option<&PiecesRatio>) -> Vec<Target> {
    let find = |t: &str, s: &str, m: &str| {
        rows.iter()
            .find(|r| r.transport == t && r.size == s && r.mode == m)
    };
    let p50 = |t: &str, s: &str, m: &str| find(t, s, m).map(|r| r.p50_us);
    let vs_plain = |s: &str, m: &str| Some(ratio(p50("amqp", s, m)?, p50("amqp", s, "plain")?));
    let added = |t: &str, s: &str| Some(p50(t, s, "signed+sealed")? - p50(t, s, "plain")?);
    let mut out = Vec::new();
    for s in ["1KiB", "64KiB"] {
        push(
            &mut out,
            format!("{s}: added latency (signed+sealed p50 - plain p50) on RabbitMQ / in memory"),
            added("amqp", s)
                .zip(added("memory", s))
                .map(|(a, m)| ratio(a, m)),
            1.15,
            true,
        );
    }
    push(
        &mut out,
        "pipeline/signed+sealed/64KiB / sum of its primitives (in this process)".into(),
        pieces.map(PiecesRatio::ratio),
        1.05,
        true,
    );
    for (floor, bound) in [("raw-lapin+confirms", 1.10), ("raw-lapin", 1.30)] {
        push(
            &mut out,
            format!("1KiB: plain p50 / {floor} p50"),
            p50("amqp", "1KiB", "plain")
                .zip(p50("amqp", "1KiB", floor))
                .map(|(p, f)| ratio(p, f)),
            bound,
            true,
        );
    }
    push(
        &mut out,
        "1KiB: sealed p50 / plain p50".into(),
        vs_plain("1KiB", "sealed"),
        1.05,
        true,
    );
    push(
        &mut out,
        "1KiB: signed+sealed p50 / plain p50".into(),
        vs_plain("1KiB", "signed+sealed"),
        1.5,
        true,
    );
    let conc = |m: &str| find("amqp", "1KiB", m).map(|r| r.conc_calls_per_s);
    push(
        &mut out,
        "1KiB, in flight: signed+sealed calls/s / plain calls/s".into(),
        conc("signed+sealed")
            .zip(conc("plain"))
            .map(|(s, p)| ratio(s, p)),
        0.8,
        false,
    );
    // A row whose batches all failed has no rates to compare with (its errors show).
    let o = find("amqp", "1KiB", oslo::ROW).filter(|o| o.calls_seq > 0 && o.calls_conc > 0);
    let ss = find("amqp", "1KiB", "signed+sealed");
    push(
        &mut out,
        "1KiB: signed+sealed sequential calls/s / oslo.messaging's".into(),
        ss.zip(o)
            .map(|(s, o)| ratio(s.seq_calls_per_s, o.seq_calls_per_s)),
        4.0,
        false,
    );
    push(
        &mut out,
        "1KiB: signed+sealed calls/s in flight / oslo.messaging's".into(),
        ss.zip(o)
            .map(|(s, o)| ratio(s.conc_calls_per_s, o.conc_calls_per_s)),
        8.0,
        false,
    );
    out
}
