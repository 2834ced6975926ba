//! A lost AMQP connection and its reconnect are counted (`sealrpc_transport_*`): the
//! transport connects through a local TCP relay to the broker, the relay cuts every
//! connection (the broker itself is never touched), and the supervisor reconnects.
//!
//! One test in this binary: it installs a process-wide recorder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::observe::{TRANSPORT_CONNECTIONS_LOST, TRANSPORT_RECONNECTS};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Relays 127.0.0.1:<port> to the broker; `cut` closes every relayed connection.
struct Relay {
    port: u16,
    accept: JoinHandle<()>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let links = Arc::clone(&links);
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let link = tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    links.lock().unwrap().push(link);
                }
            })
        };
        Self {
            port,
            accept,
            links,
        }
    }

    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// One recorded counter: name, labels, value.
type Counted = (String, Vec<(String, String)>, u64);

fn count(snapshot: &[Counted], name: &str, outcome: Option<&str>) -> u64 {
    snapshot
        .iter()
        .filter(|(n, labels, _)| {
            n == name
                && labels.contains(&("transport".into(), "amqp".into()))
                && outcome.is_none_or(|o| labels.contains(&("outcome".into(), o.into())))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_and_its_reconnect_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let live = common::opts();
    sealrpc_amqp::wait_for_broker(&live.url, Duration::from_secs(30))
        .await
        .expect("broker up");
    let relay = Relay::start("127.0.0.1:5672".to_owned()).await;
    let exchange = common::uniq("t-reconnect-metrics");
    let opts = AmqpOptions {
        url: format!("amqp://guest:guest@127.0.0.1:{}/%2f", relay.port),
        control_exchange: exchange.clone(),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(200),
        ..common::opts()
    };
    let t = AmqpTransport::connect(opts).await.unwrap();
    assert_eq!(t.connection_generation(), 1);

    relay.cut();
    let reconnected = tokio::time::timeout(Duration::from_secs(30), async {
        while t.connection_generation() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    t.close().await;
    drop(relay);

    let snapshot: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let DebugValue::Counter(n) = value else {
                return None;
            };
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            Some((key.name().to_owned(), labels, n))
        })
        .collect();
    common::cleanup(&[], &[exchange.clone(), format!("{exchange}_reply")]).await;
    reconnected.expect("reconnected through the relay");
    assert_eq!(
        count(&snapshot, TRANSPORT_CONNECTIONS_LOST, None),
        1,
        "{snapshot:?}"
    );
    assert_eq!(
        count(&snapshot, TRANSPORT_RECONNECTS, Some("ok")),
        1,
        "{snapshot:?}"
    );
}
