//! `amqps://` on the real broker. The local RabbitMQ has no TLS listener, so each test
//! puts a TLS-terminating proxy (rustls, with a certificate for `localhost` from a private
//! CA made on the spot) in front of its plain AMQP port: the client side under test is
//! sealrpc-amqp's own, end to end — handshake, certificate and name checks, then AMQP over
//! TLS to the broker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{msg, opts, recv, spec, uniq};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sealrpc_amqp::{AmqpOptions, AmqpTransport, TlsIdentity};
use sealrpc_core::Secret;
use sealrpc_core::transport::{Address, Outgoing, Transport, TransportErrorKind};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// A private CA, a server certificate it signed for `localhost`, and a client identity
/// it signed; `server` does not ask for client certificates, `server_mtls` requires them.
struct Pki {
    ca_pem: String,
    server: ServerConfig,
    server_mtls: ServerConfig,
    client: TlsIdentity,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "sealrpc test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let issue = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert, key)
    };
    let (cert, key) = issue("localhost");
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key.clone_key())
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let server_mtls = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let (client_cert, client_key) = issue("guest-1234abcd");
    Pki {
        ca_pem: ca.pem(),
        server,
        server_mtls,
        client: TlsIdentity {
            cert_chain_pem: client_cert.pem(),
            key_pem: Secret::new(client_key.serialize_pem()),
        },
    }
}

/// The broker's plain AMQP `host:port` (from `AMQP_ADDR` or the default URL).
fn broker() -> String {
    let uri: lapin::uri::AMQPUri = opts().url.parse().unwrap();
    format!("{}:{}", uri.authority.host, uri.authority.port)
}

/// Starts the TLS proxy; returns its port and the count of completed handshakes.
async fn tls_proxy(server: ServerConfig) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&handshakes);
    let upstream = broker();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count, upstream) = (acceptor.clone(), count.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused the certificate
                };
                count.fetch_add(1, Ordering::SeqCst);
                let mut plain = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, handshakes)
}

fn tls_opts(host: &str, port: u16, ca_pem: Option<String>) -> AmqpOptions {
    AmqpOptions {
        tls_ca_pem: ca_pem,
        tls_identity: None,
        ..AmqpOptions::default().with_url(format!("amqps://guest:guest@{host}:{port}/%2f"))
    }
}

/// A confirmed cast to a fresh topic arrives, as published by `guest`.
async fn round_trip(t: &AmqpTransport) {
    let topic = uniq("t-tls");
    let spec = spec(&topic, "s1", true, false);
    let mut sub = t.listen(&spec).await.unwrap();
    let cast = Outgoing {
        confirm: true,
        ..msg(Address::Topic(topic), "over tls")
    };
    t.send(cast).await.unwrap();
    let mut d = recv(&mut sub, 5).await.expect("the cast, through TLS");
    assert_eq!(&d.payload[..], b"over tls");
    assert_eq!(d.broker_user.as_deref(), Some("guest"));
    d.ack().await;
}

#[tokio::test]
async fn amqps_with_a_private_ca_carries_messages() {
    let pki = pki();
    let (port, handshakes) = tls_proxy(pki.server).await;
    let t = AmqpTransport::connect(tls_opts("localhost", port, Some(pki.ca_pem)))
        .await
        .expect("amqps connect");
    assert!(handshakes.load(Ordering::SeqCst) >= 1);

    round_trip(&t).await;
    t.close().await;
}

#[tokio::test]
async fn amqps_refuses_an_untrusted_or_misnamed_certificate() {
    let pki = pki();
    let ca_pem = pki.ca_pem.clone();
    let (port, handshakes) = tls_proxy(pki.server).await;

    // The platform's roots do not know the private CA.
    let e = AmqpTransport::connect(tls_opts("localhost", port, None))
        .await
        .expect_err("an untrusted certificate must be refused");
    assert_eq!(e.kind, TransportErrorKind::Other, "{e}");
    assert!(!e.is_retriable(), "{e}");
    assert!(e.message.contains("TLS"), "{e}");
    assert!(
        !e.message.contains("guest:guest"),
        "password in the error: {e}"
    );

    // Trusted CA, but the certificate is for `localhost`, not `127.0.0.1`.
    let e = AmqpTransport::connect(tls_opts("127.0.0.1", port, Some(ca_pem)))
        .await
        .expect_err("a certificate for another name must be refused");
    assert_eq!(e.kind, TransportErrorKind::Other, "{e}");
    assert_eq!(
        handshakes.load(Ordering::SeqCst),
        0,
        "a handshake completed"
    );
}

#[tokio::test]
async fn amqps_with_a_client_certificate_when_the_broker_requires_one() {
    let pki = pki();
    let (port, handshakes) = tls_proxy(pki.server_mtls).await;

    let e = AmqpTransport::connect(tls_opts("localhost", port, Some(pki.ca_pem.clone())))
        .await
        .expect_err("no client certificate: refused");
    assert_eq!(e.kind, TransportErrorKind::Other, "{e}");
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);

    let opts = AmqpOptions {
        tls_identity: Some(pki.client.clone()),
        ..tls_opts("localhost", port, Some(pki.ca_pem))
    };
    let shown = format!("{opts:?}");
    assert!(!shown.contains("PRIVATE KEY"), "the key in Debug: {shown}");
    let t = AmqpTransport::connect(opts).await.expect("mutual TLS");
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
    round_trip(&t).await;
    t.close().await;
}
