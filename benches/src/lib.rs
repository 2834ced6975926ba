//! Shared helpers for the sealrpc benchmarks: the security modes compared, the transport-less
//! security pipeline (the crypto floor), the raw lapin floor, the oslo.messaging baseline,
//! and the overhead report.

pub mod cpu;
pub mod measured;
pub mod modes;
pub mod oslo;
pub mod overhead;
pub mod per_call;
pub mod pieces_ratio;
pub mod pipeline;
pub mod raw;
pub mod report;
pub mod runner;
pub mod targets;
pub mod workload;

/// The error type of the bench helpers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Payload sizes of the report, with their labels.
pub const SIZES: [(&str, usize); 4] = [
    ("100B", 100),
    ("1KiB", 1024),
    ("64KiB", 64 * 1024),
    ("1MiB", 1024 * 1024),
];
