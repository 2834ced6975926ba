//! The call monitor (oslo's `call_monitor_timeout`) over the real broker: heartbeats keep a
//! long call alive past its monitor timeout, and a server whose connection dies mid-call
//! is noticed within the monitor timeout. (Forged and replayed heartbeats are refused by
//! the same pipeline on every transport: rpc-core/tests/call_monitor.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, opts, uniq};
use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::{Client, Context, Error, HandlerError, Principal, Server, ServerHandle, Target};
use serde::{Deserialize, Serialize};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const MONITOR: Duration = Duration::from_secs(1);
const TEST_BOUND: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
struct Sleep {
    ms: u64,
}

struct Rig {
    exchange: String,
    topic: String,
    server_side: Arc<AmqpTransport>,
    server: Option<ServerHandle>,
    client_side: Arc<AmqpTransport>,
    client: Client,
}

async fn rig() -> Rig {
    let exchange = uniq("t-monitor-ctl");
    let topic = uniq("t-monitor");
    let options = || AmqpOptions {
        control_exchange: exchange.clone(),
        ..opts()
    };
    let server_side = Arc::new(connect(options()).await);
    let client_side = Arc::new(connect(options()).await);
    let security = |p: &str| SecurityConfig::insecure(Principal::parse(p).unwrap()).build();
    let server = Server::builder(server_side.clone(), security("control:conductor"))
        .topic(topic.clone())
        .server_name("s")
        .fanout(false)
        .handler("sleep", |_ctx: Context, s: Sleep| async move {
            tokio::time::sleep(Duration::from_millis(s.ms)).await;
            Ok::<_, HandlerError>("done".to_owned())
        })
        .start()
        .await
        .unwrap();
    let client = Client::builder(client_side.clone(), security("control:api"))
        .call_monitor_timeout(MONITOR)
        .build()
        .await
        .unwrap();
    Rig {
        exchange,
        topic,
        server_side,
        server: Some(server),
        client_side,
        client,
    }
}

impl Rig {
    async fn sleep_call(&self, ms: u64) -> Result<String, Error> {
        let target = self
            .client
            .prepare(Target::new(self.topic.clone()))
            .timeout(CALL_TIMEOUT);
        target.call(&Context::new(), "sleep", &Sleep { ms }).await
    }

    async fn cleanup(mut self) {
        drop(self.server.take());
        self.server_side.close().await;
        self.client_side.close().await;
        let topic = &self.topic;
        common::cleanup(
            &[topic.clone(), format!("{topic}.s")],
            &[self.exchange.clone(), format!("{topic}_fanout")],
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_call_succeeds_well_past_its_monitor_timeout_over_rabbitmq() {
    let rig = rig().await;
    let result = tokio::time::timeout(TEST_BOUND, rig.sleep_call(3000)).await;
    rig.cleanup().await;
    assert_eq!(result.expect("bounded").unwrap(), "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_connection_dies_mid_call_is_noticed_over_rabbitmq() {
    let mut rig = rig().await;
    let (server, server_side) = (rig.server.take(), Arc::clone(&rig.server_side));
    let started = Instant::now();
    let outcome = tokio::time::timeout(TEST_BOUND, async {
        let call = rig.sleep_call(60_000);
        let kill = async move {
            // Long enough for heartbeats (every ~500 ms); then the server's node dies.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            drop(server);
            server_side.close().await;
        };
        let (result, ()) = tokio::join!(call, kill);
        result
    })
    .await;
    let elapsed = started.elapsed();
    rig.cleanup().await;
    match outcome.expect("bounded") {
        Err(e @ Error::MonitorTimeout(_)) => assert!(e.is_retriable()),
        other => panic!("expected a monitor timeout, got {other:?}"),
    }
    assert!(elapsed < CALL_TIMEOUT, "noticed before the call timeout");
}
