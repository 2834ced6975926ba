//! Printing: the attack table, the per-mode measurements and the closing summary.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use sealrpc_core::security::RejectReason;

use super::attacks::Row;
use super::bench::ModeResult;

fn us(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

/// Prints the attack table.
pub fn attack_table(rows: &[Row], out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "  {:<2} {:<50} {:<26} {:<9} {:<17} {:<10} {:<4} why",
        "#", "attack by guest A", "expected", "actual", "reason (observed)", "reply to A", "ran",
    );
    for (i, r) in rows.iter().enumerate() {
        let actual = if r.as_expected() {
            "REJECTED"
        } else if r.rejected() {
            "REJECTED?"
        } else {
            "ACCEPTED!"
        };
        let observed = r
            .observed
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        let _ = writeln!(
            out,
            "  {:<2} {:<50} {:<26} {:<9} {:<17} {:<10} {:<4} {}",
            i + 1,
            r.attack,
            format!("REJECTED {}", r.expected),
            actual,
            observed,
            r.reply,
            if r.executed { "YES" } else { "no" },
            r.note
        );
    }
}

/// Prints the per-mode latency and throughput, with ratios against plain.
pub fn bench_table(results: &[ModeResult], out: &mut dyn Write) {
    let Some(plain) = results.first() else { return };
    let _ = writeln!(
        out,
        "  {:<18} {:>6} {:>9} {:>9} {:>10} {:>11} {:>13}",
        "mode", "calls", "p50", "p99", "calls/s", "p50 vs plain", "calls/s vs plain"
    );
    for r in results {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let _ = writeln!(
            out,
            "  {:<18} {:>6} {:>9} {:>9} {:>10.0} {:>11.2}x {:>15.2}x",
            r.mode,
            r.calls,
            us(r.p50),
            us(r.p99),
            r.throughput,
            ratio(r.p50.as_secs_f64(), plain.p50.as_secs_f64()),
            ratio(r.throughput, plain.throughput),
        );
    }
    let _ = writeln!(
        out,
        "  crypto backends: {}",
        sealrpc_signers::CryptoBackends::detect()
    );
}

/// Prints rejections by reason on one line.
pub fn rejections(map: &BTreeMap<RejectReason, u64>, out: &mut dyn Write) {
    let text: Vec<String> = map.iter().map(|(r, n)| format!("{r}={n}")).collect();
    let text = if text.is_empty() {
        "none".to_owned()
    } else {
        text.join(", ")
    };
    let _ = writeln!(out, "  rejections by reason:  {text}");
}
