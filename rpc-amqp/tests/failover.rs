//! Broker lists against the local broker: a dead first address is skipped, and a list
//! where nothing answers fails with one typed error naming every (redacted) address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::time::Duration;

use sealrpc_amqp::{AmqpOptions, AmqpTransport, FailoverOrder};
use sealrpc_core::transport::TransportErrorKind;

/// The local broker's URL with its port replaced by `port` (nothing listens on 1 and 2).
fn dead(port: u16) -> String {
    format!("amqp://guest:hunter2-{port}@127.0.0.1:{port}/%2f")
}

#[tokio::test]
async fn skips_dead_brokers_of_a_list() {
    let live = common::opts().url;
    sealrpc_amqp::wait_for_broker(&live, Duration::from_secs(30))
        .await
        .expect("broker up");
    let port = sealrpc_amqp::redact_url(&live);
    let opts = AmqpOptions {
        connect_timeout: Duration::from_secs(2),
        ..common::opts().with_urls([dead(1).replace("hunter2-1", "guest"), live.clone()])
    };
    let t = AmqpTransport::connect(opts)
        .await
        .expect("connect to the 2nd");
    assert!(t.is_connected());
    assert_eq!(t.connected_url(), Some(port));
    assert_eq!(t.connection_generation(), 1);
    t.close().await;
}

#[tokio::test]
async fn a_list_where_nothing_answers_fails_typed_and_redacted() {
    for failover in [FailoverOrder::InOrder, FailoverOrder::Shuffle] {
        let opts = AmqpOptions {
            failover,
            connect_timeout: Duration::from_secs(2),
            ..AmqpOptions::default().with_urls([dead(1), dead(2)])
        };
        let e = AmqpTransport::connect(opts)
            .await
            .expect_err("nothing listens");
        assert_eq!(e.kind, TransportErrorKind::Unavailable, "{e}");
        assert!(e.message.contains("any of the 2 AMQP brokers"), "{e}");
        assert!(
            e.message.contains("amqp://guest:***@127.0.0.1:1/%2f"),
            "{e}"
        );
        assert!(
            e.message.contains("amqp://guest:***@127.0.0.1:2/%2f"),
            "{e}"
        );
        assert!(!e.message.contains("hunter2"), "{e}");
    }
    // oslo's form, the same.
    let opts = AmqpOptions::default()
        .with_url("rabbit://guest:hunter2@127.0.0.1:1,guest:hunter2@127.0.0.1:2/");
    let e = AmqpTransport::connect(opts)
        .await
        .expect_err("nothing listens");
    assert_eq!(e.kind, TransportErrorKind::Unavailable, "{e}");
    assert!(!e.message.contains("hunter2"), "{e}");
    assert!(
        !format!("{:?}", AmqpOptions::default().with_urls([dead(1), dead(2)])).contains("hunter2")
    );
}

#[tokio::test]
async fn wrong_credentials_on_a_list_are_access_refused() {
    let opts = AmqpOptions {
        connect_timeout: Duration::from_secs(2),
        ..AmqpOptions::default().with_urls([
            dead(1),
            "amqp://guest:wrong-hunter2@127.0.0.1:5672/%2f".to_owned(),
        ])
    };
    let e = AmqpTransport::connect(opts)
        .await
        .expect_err("bad password");
    assert_eq!(e.kind, TransportErrorKind::AccessRefused, "{e}");
    assert!(!e.message.contains("hunter2"), "{e}");
}
