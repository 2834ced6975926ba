//! Shared helpers for the sealrpc integration, conformance, attack and upgrade suites.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support code"
)]

pub mod cluster;
pub mod flood;
pub mod fuzz_targets;
pub mod golden;
pub mod load;
pub mod metrics;
pub mod mutate;
pub mod replay;
pub mod trove;
pub mod vectors;

/// The README's usage example, compiled and run as a doctest so that it cannot rot.
#[doc = include_str!("../../README.md")]
pub mod readme {}

/// docs/getting-started.md, its programs compiled as doctests so that the guide cannot rot.
#[doc = include_str!("../../docs/getting-started.md")]
pub mod getting_started {}
