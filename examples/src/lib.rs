//! Library code of the sealrpc examples, shared by the `trove_cluster` example and the
//! attack, upgrade and secret-absence tests of `sealrpc-tests` (one copy of the demo), and
//! the demo's Prometheus endpoint.

pub mod metrics_endpoint;
pub mod trove;
