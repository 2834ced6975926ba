//! The demo's Prometheus endpoint, scraped over HTTP after real signed and sealed calls on
//! the memory transport (api -> taskmanager -> conductor): calls and requests by method and
//! outcome, latency, in flight, a replay and an authorization refusal by reason, and the
//! replay guard's size, each with the count the nodes themselves hold.
//!
//! The recorder is process-wide: both tests share one exporter, and each asserts only on
//! series of its own (its method names; the AMQP test's nodes run Off, so they reject and
//! record nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sealrpc_core::observe::{self, FORBIDDEN};
use sealrpc_core::security::RejectReason;
use sealrpc_core::security::Security;
use sealrpc_core::transport::{Outgoing, Transport};
use sealrpc_core::{Client, Context, HandlerError, MemoryTransport, Server, Target};
use sealrpc_examples::metrics_endpoint;
use sealrpc_examples::trove::keys::Operator;
use sealrpc_examples::trove::wait_until;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    n: u32,
}

const TM: &str = "scrape_taskmanager";
const CONDUCTOR: &str = "scrape_conductor";

/// The exporter's address, installed by the first test to ask.
fn exporter() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(install_exporter)
}

/// Installs the exporter on a free loopback port (a port just seen free may be taken by
/// another process before the exporter binds it: a few tries).
fn install_exporter() -> SocketAddr {
    let mut last = None;
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match metrics_endpoint::install(addr) {
            Ok(()) => return addr,
            Err(e) => last = Some(e),
        }
    }
    panic!("cannot install the exporter: {last:?}");
}

/// `GET /metrics` with a plain HTTP/1.1 request; the body.
async fn scrape(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the exporter answered")
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// Sample lines of the exposition format: (name, labels) -> value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        out.insert((name.to_owned(), labels), value.parse().unwrap());
    }
    out
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    *samples
        .get(&key)
        .unwrap_or_else(|| panic!("no sample {key:?} in {samples:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoint_reports_calls_rejections_and_the_replay_guard() {
    let addr = exporter();

    let operator = Operator::init().unwrap();
    let security =
        |name: &str| -> Arc<Security> { operator.service(name).unwrap().security().build() };
    let bus = MemoryTransport::new();
    let mut tap = bus.wiretap();
    let t: Arc<dyn Transport> = Arc::new(bus);
    let (api, tm, conductor) = (
        security("api"),
        security("taskmanager"),
        security("conductor"),
    );

    let conductor_server = Server::builder(Arc::clone(&t), Arc::clone(&conductor))
        .topic(CONDUCTOR)
        .handler("scrape_record", |_ctx: Context, j: Job| async move {
            Ok::<_, HandlerError>(j.n)
        })
        .handler("scrape_refuse", |_ctx: Context, _j: Job| async move {
            Err::<u32, _>(HandlerError::forbidden())
        })
        .start()
        .await
        .unwrap();
    let tm_client = Client::builder(Arc::clone(&t), Arc::clone(&tm))
        .build()
        .await
        .unwrap();
    let tm_server = Server::builder(Arc::clone(&t), Arc::clone(&tm))
        .topic(TM)
        .handler("scrape_create", move |ctx: Context, j: Job| {
            let c = tm_client.clone();
            async move {
                c.call::<_, u32>(&ctx.child(), &Target::new(CONDUCTOR), "scrape_record", &j)
                    .await
                    .map_err(|e| HandlerError::new("Downstream", e.to_string()))
            }
        })
        .start()
        .await
        .unwrap();
    let api_client = Client::builder(Arc::clone(&t), Arc::clone(&api))
        .build()
        .await
        .unwrap();

    for n in 0..3 {
        let got: u32 = api_client
            .call(
                &Context::new(),
                &Target::new(TM),
                "scrape_create",
                &Job { n },
            )
            .await
            .unwrap();
        assert_eq!(got, n);
    }
    let refused = api_client
        .call::<_, u32>(
            &Context::new(),
            &Target::new(CONDUCTOR),
            "scrape_refuse",
            &Job { n: 9 },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code().as_str(), "Forbidden");

    // Replay one call the conductor already admitted, as someone reading the bus could.
    let conductor_topic = Target::new(CONDUCTOR).address();
    let copied = loop {
        let (to, bytes) = tap.try_recv().expect("the conductor's traffic was tapped");
        if to == conductor_topic {
            break bytes;
        }
    };
    t.send(Outgoing {
        to: conductor_topic,
        payload: copied,
        reply_to: None,
        expiration: None,
        confirm: false,
    })
    .await
    .unwrap();
    let replayed = || conductor.counters().rejected_for(RejectReason::Replay) == 1;
    assert!(wait_until(Duration::from_secs(10), replayed).await);

    let samples = parse(&scrape(addr).await);
    let calls = |method, outcome| {
        value(
            &samples,
            observe::CLIENT_CALLS,
            &[("method", method), ("kind", "call"), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("scrape_create", "ok"), 3.0);
    assert_eq!(calls("scrape_record", "ok"), 3.0);
    assert_eq!(calls("scrape_refuse", "Forbidden"), 1.0);
    let served = |method, outcome| {
        value(
            &samples,
            observe::SERVER_REQUESTS,
            &[("method", method), ("kind", "call"), ("outcome", outcome)],
        )
    };
    assert_eq!(served("scrape_create", "ok"), 3.0);
    assert_eq!(served("scrape_record", "ok"), 3.0);
    assert_eq!(served("scrape_refuse", "Forbidden"), 1.0);
    let create = [("method", "scrape_create"), ("kind", "call")];
    let latency_count = format!("{}_count", observe::CLIENT_CALL_DURATION);
    assert_eq!(value(&samples, &latency_count, &create), 3.0);
    let server_count = format!("{}_count", observe::SERVER_REQUEST_DURATION);
    assert_eq!(value(&samples, &server_count, &create), 3.0);
    assert_eq!(
        value(&samples, observe::CLIENT_CALLS_IN_FLIGHT, &create),
        0.0
    );
    assert_eq!(
        value(&samples, observe::SERVER_REQUESTS_IN_FLIGHT, &create),
        0.0
    );

    // Rejections by reason, as the nodes count them.
    let rejections = |reason| value(&samples, observe::REJECTIONS, &[("reason", reason)]);
    assert_eq!(rejections("replay"), 1.0);
    assert_eq!(rejections(FORBIDDEN), 1.0);
    let nodes = [&api, &tm, &conductor];
    let forbidden: u64 = nodes.iter().map(|s| s.counters().forbidden).sum();
    assert_eq!(forbidden, 1);

    // The replay gauge: every id the three guards hold (control-plane principals only).
    let held: usize = nodes.iter().map(|s| s.replay_guard().len()).sum();
    // api: 3 + 1 replies; taskmanager: 3 requests and 3 replies; conductor: 3 + 1 requests
    // (the replayed copy takes no room).
    assert_eq!(held, 4 + 6 + 4, "every admitted signed message is recorded");
    let gauge = value(
        &samples,
        observe::REPLAY_GUARD_IDS,
        &[("holder", "control")],
    );
    assert_eq!(gauge, held as f64);

    tm_server.shutdown().await;
    conductor_server.shutdown().await;
}

/// A unique name for broker objects: `prefix-<pid>-<hex>`.
fn uniq(prefix: &str) -> String {
    let mut b = [0u8; 4];
    sealrpc_core::rand::fill(&mut b);
    format!("{prefix}-{}-{}", std::process::id(), hex::encode(b))
}

/// Deletes what the AMQP test's server declared.
async fn delete_broker_objects(url: &str, queues: &[String], exchanges: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(conn) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        for q in queues {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for x in exchanges {
            let _ = ch
                .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "cleanup".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoint_reports_calls_over_rabbitmq() {
    use sealrpc_amqp::{AmqpOptions, AmqpTransport};
    use sealrpc_core::Principal;
    use sealrpc_core::security::SecurityConfig;

    let addr = exporter();
    let exchange = uniq("t-scrape-ctl");
    let topic = uniq("t-scrape");
    let opts = AmqpOptions {
        control_exchange: exchange.clone(),
        ..AmqpOptions::from_env()
    };
    let url = opts.url.clone();
    sealrpc_amqp::wait_for_broker(&url, Duration::from_secs(30))
        .await
        .unwrap();
    let run = {
        let (opts, topic) = (opts.clone(), topic.clone());
        tokio::spawn(async move {
            let t = Arc::new(AmqpTransport::connect(opts).await.unwrap());
            let security = |p: &str| SecurityConfig::insecure(Principal::parse(p).unwrap()).build();
            let server = Server::builder(Arc::clone(&t), security("control:conductor"))
                .topic(topic.clone())
                .server_name("s")
                .fanout(false)
                .handler("scrape_amqp_echo", |_ctx: Context, j: Job| async move {
                    Ok::<_, HandlerError>(j.n)
                })
                .start()
                .await
                .unwrap();
            let client = Client::builder(Arc::clone(&t), security("control:api"))
                .build()
                .await
                .unwrap();
            for n in 0..2 {
                let got: u32 = client
                    .call(
                        &Context::new(),
                        &Target::new(topic.clone()),
                        "scrape_amqp_echo",
                        &Job { n },
                    )
                    .await
                    .unwrap();
                assert_eq!(got, n);
            }
            let samples = parse(&scrape(addr).await);
            server.shutdown().await;
            t.close().await;
            samples
        })
    };
    let samples = tokio::time::timeout(Duration::from_secs(60), run).await;
    delete_broker_objects(
        &url,
        &[topic.clone(), format!("{topic}.s")],
        &[
            format!("{exchange}_reply"),
            exchange,
            format!("{topic}_fanout"),
        ],
    )
    .await;
    let samples = samples.expect("bounded").expect("the scenario passed");
    let echo = |metric| {
        value(
            &samples,
            metric,
            &[
                ("method", "scrape_amqp_echo"),
                ("kind", "call"),
                ("outcome", "ok"),
            ],
        )
    };
    assert_eq!(echo(observe::CLIENT_CALLS), 2.0);
    assert_eq!(echo(observe::SERVER_REQUESTS), 2.0);
}
