//! The demo's Prometheus endpoint (`trove_cluster --metrics ADDR`): installs the
//! `metrics-exporter-prometheus` recorder process-wide, with its HTTP listener serving the
//! text exposition format on any path (`/metrics` by convention) for as long as the process
//! runs. sealrpc records through the `metrics` facade (see `sealrpc_core::observe` and
//! docs/observability.md); this is only where the numbers go.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// Latency buckets (seconds) of the `*_duration_seconds` histograms: 250 µs to 30 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// Installs the Prometheus recorder (global: once per process) and starts its listener on
/// `addr`; fails when `addr` cannot be bound or a recorder is already installed. The
/// listener runs on a thread of its own (the exporter's own runtime), so it outlives the
/// caller's Tokio runtime and keeps serving while the process runs.
pub fn install(addr: SocketAddr) -> Result<(), BuildError> {
    let builder = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?;
    // Outside any runtime, the exporter starts a background thread for its listener.
    std::thread::scope(|s| s.spawn(|| builder.install()).join())
        .map_err(|_| BuildError::FailedToCreateHTTPListener("the installer panicked".into()))??;
    sealrpc_core::observe::describe();
    Ok(())
}
