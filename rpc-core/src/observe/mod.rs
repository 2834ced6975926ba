//! Metrics through the [`metrics`] facade: what calls, requests, the security pipeline, the
//! replay guard and transports record. Nothing is exported unless the application installs a
//! recorder (e.g. `metrics-exporter-prometheus`); without one every hook is a no-op.
//!
//! Every name starts with `sealrpc_`. Labels are low-cardinality on purpose: a method name
//! (on a server only methods some server of this process registered, else
//! [`UNKNOWN_METHOD`]), a kind, an outcome, a reason, a class — never a guest id, a request
//! id or a principal. The full table is in `docs/observability.md`.
//!
//! | name | type | labels |
//! |---|---|---|
//! | [`CLIENT_CALLS`] | counter | `method`, `kind`, `outcome` |
//! | [`CLIENT_CALL_DURATION`] | histogram (seconds) | `method`, `kind` |
//! | [`CLIENT_CALLS_IN_FLIGHT`] | gauge | `method`, `kind` |
//! | [`SERVER_REQUESTS`] | counter | `method`, `kind`, `outcome` |
//! | [`SERVER_REQUEST_DURATION`] | histogram (seconds) | `method`, `kind` |
//! | [`SERVER_REQUESTS_IN_FLIGHT`] | gauge | `method`, `kind` |
//! | [`REJECTIONS`] | counter | `reason` |
//! | [`PERMISSIVE_ADMISSIONS`] | counter | `class`, `lacking` |
//! | [`REPLAY_GUARD_IDS`] | gauge | `holder` |
//! | [`TRANSPORT_CONNECTIONS_LOST`] | counter | `transport` |
//! | [`TRANSPORT_RECONNECTS`] | counter | `transport`, `outcome` |

mod calls;
mod keys;
mod methods;
mod security;

pub(crate) use calls::CallTimer;
pub(crate) use methods::register_methods;
pub(crate) use security::{
    record_forbidden, record_permissive, record_rejection, record_replay_holdings,
};

/// Calls and casts sent by clients, by `method`, `kind` (`call`, `cast`, `fanout`) and
/// `outcome` (`ok`, an [`ErrorCode`](crate::ErrorCode) name, or `cancelled`).
pub const CLIENT_CALLS: &str = "sealrpc_client_calls_total";
/// How long a client's call took (until its reply or error; a cast until the transport
/// held it), in seconds, by `method` and `kind`.
pub const CLIENT_CALL_DURATION: &str = "sealrpc_client_call_duration_seconds";
/// Client calls and casts under way, by `method` and `kind`.
pub const CLIENT_CALLS_IN_FLIGHT: &str = "sealrpc_client_calls_in_flight";
/// Admitted requests a server served, by `method`, `kind` and `outcome` (`ok`, an
/// [`ErrorCode`](crate::ErrorCode) name — an application's own error name counts as
/// `Remote` — or `cancelled`).
pub const SERVER_REQUESTS: &str = "sealrpc_server_requests_total";
/// How long a server took from admission to the handler's result, in seconds, by `method`
/// and `kind`.
pub const SERVER_REQUEST_DURATION: &str = "sealrpc_server_request_duration_seconds";
/// Requests a server is serving, by `method` and `kind`.
pub const SERVER_REQUESTS_IN_FLIGHT: &str = "sealrpc_server_requests_in_flight";
/// Received messages refused, by `reason`: a
/// [`RejectReason`](crate::security::RejectReason) name, or [`FORBIDDEN`] for an admitted
/// call refused by authorization.
pub const REJECTIONS: &str = "sealrpc_rejections_total";
/// Messages Permissive admitted that Enforce would refuse, by `class` (the proven peer class:
/// `control_plane`, `guests`, `fanout`, or `unproven`) and `lacking` (`authentication`,
/// `seal`, or `authentication_and_seal`).
pub const PERMISSIVE_ADMISSIONS: &str = "sealrpc_permissive_admissions_total";
/// Message ids held by the in-process replay guards of this process (summed over its
/// nodes), by `holder` (`control` or `guests`). A shared replay store is not counted here.
pub const REPLAY_GUARD_IDS: &str = "sealrpc_replay_guard_ids";
/// Connections a transport lost, by `transport` (e.g. `amqp`).
pub const TRANSPORT_CONNECTIONS_LOST: &str = "sealrpc_transport_connections_lost_total";
/// A transport's reconnect attempts, by `transport` and `outcome` (`ok` or `failed`).
pub const TRANSPORT_RECONNECTS: &str = "sealrpc_transport_reconnects_total";

/// The `reason` of an authorization refusal (`Forbidden`) in [`REJECTIONS`].
pub const FORBIDDEN: &str = "forbidden";
/// The `method` label of a request for a method no server of this process registered: a
/// peer cannot grow the label set with made-up names.
pub const UNKNOWN_METHOD: &str = "_unknown";
/// The `outcome` of a call or request dropped before it finished (its caller gave up).
pub const CANCELLED: &str = "cancelled";
/// The `outcome` of a success.
pub const OK: &str = "ok";

/// Describes every metric (type, unit, help text) to the installed recorder, for the
/// exporter's `# HELP` lines. Call it once after installing the recorder; optional.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        CLIENT_CALLS,
        "Calls and casts sent, by method, kind and outcome"
    );
    describe_histogram!(
        CLIENT_CALL_DURATION,
        Unit::Seconds,
        "Client call latency, by method and kind"
    );
    describe_gauge!(CLIENT_CALLS_IN_FLIGHT, "Client calls under way");
    describe_counter!(
        SERVER_REQUESTS,
        "Admitted requests served, by method, kind and outcome"
    );
    describe_histogram!(
        SERVER_REQUEST_DURATION,
        Unit::Seconds,
        "Server latency from admission to result, by method and kind"
    );
    describe_gauge!(SERVER_REQUESTS_IN_FLIGHT, "Requests being served");
    describe_counter!(REJECTIONS, "Received messages refused, by reason");
    describe_counter!(
        PERMISSIVE_ADMISSIONS,
        "Messages Permissive admitted that Enforce would refuse, by class and what they lacked"
    );
    describe_gauge!(
        REPLAY_GUARD_IDS,
        "Message ids held by in-process replay guards"
    );
    describe_counter!(TRANSPORT_CONNECTIONS_LOST, "Transport connections lost");
    describe_counter!(
        TRANSPORT_RECONNECTS,
        "Transport reconnect attempts, by outcome"
    );
}

/// Counts a connection `transport` lost (a transport's reconnect loop calls this).
pub fn record_connection_lost(transport: &'static str) {
    metrics::counter!(TRANSPORT_CONNECTIONS_LOST, "transport" => transport).increment(1);
}

/// Counts one reconnect attempt of `transport`, successful or not.
pub fn record_reconnect(transport: &'static str, ok: bool) {
    let outcome = if ok { OK } else { "failed" };
    metrics::counter!(TRANSPORT_RECONNECTS, "transport" => transport, "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests;
