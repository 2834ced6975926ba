//! What the `trove_cluster` suites expect, written independently of the demo's own table:
//! the typed reason each attack must be rejected for.

use sealrpc_core::security::RejectReason;
use sealrpc_examples::trove::attacks::{Reason, Row};
use sealrpc_examples::trove::net::TransportChoice;

/// The reason attack `attack` (by its text in the table) must be rejected for.
pub fn expected_reason(attack: &str) -> Reason {
    use RejectReason as R;
    let table: [(&str, Reason); 25] = [
        ("read B's", Reason::Pipeline(R::WrongDirection)),
        (
            "forge a control-plane call",
            Reason::Pipeline(R::UnknownKey),
        ),
        (
            "impersonate B: update_status(B), src=B",
            Reason::Pipeline(R::SourceMismatch),
        ),
        ("impersonate B: update_status(B), src=A", Reason::Forbidden),
        (
            "emit a usage notification as B",
            Reason::Pipeline(R::SourceMismatch),
        ),
        ("replay", Reason::Pipeline(R::Replay)),
        ("tamper a header", Reason::Pipeline(R::BadSignature)),
        ("tamper a body", Reason::Pipeline(R::BadSignature)),
        ("send unsigned", Reason::Pipeline(R::Unauthenticated)),
        ("call taskmanager.create_instance", Reason::Forbidden),
        ("send an oversized", Reason::Pipeline(R::Oversized)),
        ("send 512 random bytes", Reason::Pipeline(R::Malformed)),
        (
            "publish to B's queue with A's broker user",
            Reason::BrokerAccessRefused,
        ),
        (
            "unsigned, claims src=control",
            Reason::Pipeline(R::Unauthenticated),
        ),
        (
            "garbage signature by sig/control",
            Reason::Pipeline(R::BadSignature),
        ),
        (
            "seal a cast to B under kb",
            Reason::Pipeline(R::WrongDirection),
        ),
        ("send a reply without corr", Reason::Pipeline(R::Malformed)),
        ("read the API's context secret", Reason::SecretWithheld),
        (
            "fill the replay guard",
            Reason::Pipeline(R::ReplayGuardFull),
        ),
        (
            "deliver to B as a dead-letter route would",
            Reason::Pipeline(R::UnknownKey),
        ),
        ("dead-letter route to B", Reason::BrokerAccessRefused),
        ("park messages where nobody listens", Reason::NoListener),
        ("park 3,000 x 4 KiB", Reason::BrokerAccessRefused),
        ("use a stale epoch", Reason::Pipeline(R::StaleKey)),
        ("use a revoked key", Reason::Pipeline(R::RevokedKey)),
    ];
    table
        .into_iter()
        .find(|(prefix, _)| attack.starts_with(prefix))
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no expectation for attack {attack:?}"))
}

/// Asserts every row: rejected, for the independently expected reason, nothing executed;
/// and that the table holds at least `min_rows` attacks.
pub fn assert_rows(rows: &[Row], min_rows: usize) {
    assert!(rows.len() >= min_rows, "only {} attacks ran", rows.len());
    for r in rows {
        let want = expected_reason(&r.attack);
        assert_eq!(
            r.expected, want,
            "{}: the demo expects another reason",
            r.attack
        );
        assert_eq!(
            r.observed.as_ref(),
            Some(&want),
            "{}: observed {:?}",
            r.attack,
            r.observed
        );
        assert!(!r.executed, "{}: a handler ran", r.attack);
        assert!(r.as_expected(), "{}", r.attack);
    }
}

/// The local RabbitMQ (`AMQP_ADDR` or the default URL).
pub fn amqp() -> TransportChoice {
    TransportChoice::Amqp(sealrpc_amqp::AmqpOptions::from_env().url)
}
