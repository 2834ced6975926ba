//! Connecting: one attempt to one broker, with errors that say what to fix, and one round
//! over a broker list (the first that answers, or one error naming every address tried).

use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::AMQPScheme;
use lapin::{Connect, Connection, ConnectionProperties};
use sealrpc_core::transport::{TransportError, TransportErrorKind};

use crate::address::BrokerUrl;
use crate::address_list::BrokerList;
use crate::error;
use crate::options::AmqpOptions;

/// One connection attempt, with errors that say what to fix.
pub(crate) async fn connect_once(
    url: &BrokerUrl,
    opts: &AmqpOptions,
) -> Result<Connection, TransportError> {
    let mut uri = url.uri.clone();
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(u16::try_from(opts.heartbeat.as_secs()).unwrap_or(u16::MAX));
    }
    if let Some(frame_max) = opts.frame_max {
        // AMQP's floor; the broker may lower it further, never below this.
        uri.query.frame_max = Some(frame_max.max(4096));
    }
    let mut props = ConnectionProperties::default();
    if let Some(name) = &opts.connection_name {
        props = props.with_connection_name(name.clone().into());
    }
    let user = url.user().to_owned();
    let tls = OwnedTLSConfig {
        cert_chain: opts.tls_ca_pem.clone(),
        identity: opts.tls_identity.as_ref().map(|id| OwnedIdentity::PKCS8 {
            pem: id.cert_chain_pem.as_bytes().to_vec(),
            key: id.key_pem.expose().as_bytes().to_vec(),
        }),
    };
    let runtime =
        lapin::runtime::default_runtime().map_err(|e| error::from_lapin(&e, "connect"))?;
    let connect = uri.connect_with_config(props, tls, runtime);
    let timeout = url
        .uri
        .query
        .connection_timeout
        .map_or(opts.connect_timeout, Duration::from_millis);
    match tokio::time::timeout(timeout, connect).await {
        Err(_) => Err(error::unavailable(format!(
            "cannot reach AMQP broker at {}: no answer within {timeout:?}",
            url.redacted
        ))),
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => {
            let mapped = error::from_lapin(&e, "connect");
            let (kind, what) = match error::amqp_reply(&e) {
                Some((403, _)) => (
                    TransportErrorKind::AccessRefused,
                    format!(
                        "AMQP broker at {} refused the credentials of user {user:?}",
                        url.redacted
                    ),
                ),
                Some((530, _)) => (
                    TransportErrorKind::AccessRefused,
                    format!(
                        "AMQP broker at {} refused user {user:?} access to vhost {:?}",
                        url.redacted, url.uri.vhost
                    ),
                ),
                _ if e.is_io_error() && url.uri.scheme == AMQPScheme::AMQPS && is_tls(&e) => (
                    TransportErrorKind::Other,
                    format!(
                        "TLS with AMQP broker at {} failed (is its certificate for this host \
                         name and signed by a CA the platform or `tls_ca_pem` trusts?)",
                        url.redacted
                    ),
                ),
                _ if e.is_io_error() => (
                    TransportErrorKind::Unavailable,
                    format!("cannot reach AMQP broker at {}", url.redacted),
                ),
                _ => (
                    mapped.kind,
                    format!("cannot connect to AMQP broker at {}", url.redacted),
                ),
            };
            Err(TransportError::new(
                kind,
                format!("{what}: {}", mapped.message),
            ))
        }
    }
}

/// One round over `brokers` from position `start`: the first connection that succeeds and
/// its position, or one error naming every broker tried (passwords redacted). The error's
/// kind is that of a failure retrying does not fix (credentials, TLS) if there was one,
/// else `Unavailable`.
pub(crate) async fn connect_round(
    brokers: &BrokerList,
    opts: &AmqpOptions,
    start: usize,
) -> Result<(Connection, usize), TransportError> {
    let mut errors = Vec::new();
    for pos in brokers.round_from(start) {
        let Some(url) = brokers.brokers.get(pos) else {
            continue;
        };
        match connect_once(url, opts).await {
            Ok(conn) => {
                if !errors.is_empty() {
                    tracing::info!(broker = %url.redacted, "AMQP connected after trying other brokers");
                }
                return Ok((conn, pos));
            }
            Err(e) => errors.push(e),
        }
    }
    Err(round_failed(brokers, errors))
}

fn round_failed(brokers: &BrokerList, mut errors: Vec<TransportError>) -> TransportError {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let kind = errors
        .iter()
        .map(|e| e.kind)
        .find(|k| *k != TransportErrorKind::Unavailable)
        .unwrap_or(TransportErrorKind::Unavailable);
    let each: Vec<String> = errors.into_iter().map(|e| e.message).collect();
    TransportError::new(
        kind,
        format!(
            "cannot connect to any of the {} AMQP brokers {}: {}",
            brokers.brokers.len(),
            brokers.redacted,
            each.join("; ")
        ),
    )
}

/// Whether a connection error is the TLS handshake's (a certificate or protocol problem
/// that retrying does not fix) rather than the network's.
fn is_tls(e: &lapin::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "handshake",
        "unknownissuer",
        "notvalidforname",
    ]
    .iter()
    .any(|w| text.contains(w))
}
