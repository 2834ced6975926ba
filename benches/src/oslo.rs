//! The oslo.messaging baseline inside the overhead run: `benches/oslo/run.sh --json` as a
//! subprocess, on the same broker, right after each RabbitMQ block (its own process times
//! its own calls, so it cannot share the block's rotating rounds).

use std::process::Command;

use serde::{Deserialize, Serialize};

/// oslo.messaging's echo at one payload size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OsloRow {
    /// Payload bytes.
    pub bytes: usize,
    /// Median sequential latency, microseconds.
    pub p50_us: f64,
    /// Sequential calls per second.
    pub seq_calls_per_s: f64,
    /// Calls per second with `in_flight` in flight.
    pub conc_calls_per_s: f64,
}

#[derive(Deserialize)]
struct Output {
    rows: Vec<OsloRow>,
}

/// oslo's URL form of an `amqp://` URL (`rabbit://`, vhost `/` as an empty path).
pub fn rabbit_url(amqp: &str) -> String {
    let rest = amqp
        .strip_prefix("amqp://")
        .or_else(|| amqp.strip_prefix("amqps://"))
        .unwrap_or(amqp);
    let rest = rest
        .strip_suffix("%2f")
        .or_else(|| rest.strip_suffix("%2F"))
        .unwrap_or(rest);
    format!("rabbit://{rest}")
}

/// Runs the baseline at `bytes` for `seconds` per measurement; `Err` says why it was
/// skipped (no python3, the virtualenv could not be made, the broker refused, ...).
pub fn measure(
    amqp: &str,
    bytes: usize,
    seconds: f64,
    in_flight: usize,
) -> Result<OsloRow, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/oslo/run.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--json", "--url", &rabbit_url(amqp)])
        .args(["--sizes", &bytes.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .args(["--in-flight", &in_flight.to_string()])
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no output");
        return Err(format!("{script} failed ({}): {last}", out.status));
    }
    let parsed: Output = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{script} printed no report: {e}"))?;
    parsed
        .rows
        .into_iter()
        .next()
        .ok_or_else(|| format!("{script} measured nothing"))
}

#[cfg(test)]
mod tests {
    use super::rabbit_url;

    #[test]
    fn amqp_urls_become_oslo_urls() {
        assert_eq!(
            rabbit_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "rabbit://guest:guest@127.0.0.1:5672/"
        );
        assert_eq!(rabbit_url("amqp://u:p@h:1/vh"), "rabbit://u:p@h:1/vh");
    }
}
