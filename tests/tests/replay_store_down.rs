#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The shared replay store goes down and comes back, on the memory transport and on the
//! real RabbitMQ: the conductor (its replay store on a Redis of this test's own, on a free
//! port from 6390 up, never the shared one) refuses calls and casts while Redis is down
//! (`ReplayStoreUnavailable`, counted; the caller gets the coarse `Replay` code from the
//! server, not a timeout) and admits again once Redis is back. A Redis that lost its memory
//! also refuses, for one window, what was stamped before it came back
//! (`StampedBeforeStart`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealrpc_core::security::RejectReason;
use sealrpc_core::{Client, Context, Error, ErrorCode, Target};
use sealrpc_tests::cluster::{ConductorState, ControlKeys, Seq, conductor_named, uniq};
use sealrpc_tests::replay::{Broker, Wire, eventually, publish, record_cast, redis_store};

/// A redis-server of this test's own (killed on drop).
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> Self {
        let mut b = [0u8; 2];
        sealrpc_core::rand::fill(&mut b);
        let mut port = 6390 + u16::from_le_bytes(b) % 2000;
        // A free port: one that binds now.
        for _ in 0..50 {
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break;
            }
            port += 1;
        }
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: a Redis that accepts connections
    /// but does not answer.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(client: &Client, topic: &str, seq: u64) -> Result<u64, Error> {
    client
        .prepare(Target::new(topic))
        .timeout(Duration::from_secs(10))
        .call(
            &Context::new(),
            "ping",
            &Seq {
                from: "g1".into(),
                seq,
            },
        )
        .await
}

/// Pings until one call is admitted (at most 50 tries, 100 ms apart).
async fn retry_ping(client: &Client, topic: &str) -> bool {
    for seq in 10..60 {
        if ping(client, topic, seq).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn redis_down_then_back(wire: Wire) {
    let mut redis = OwnRedis::start();
    // The client's own timeout is long: the receiver's bound is what refuses in time.
    let (store, _cleanup) = redis_store(&redis.url(), "down", Duration::from_secs(5)).await;
    let broker = Broker::new(wire).await;
    let keys = ControlKeys::new();
    let topic = uniq("down");
    let state = Arc::new(ConductorState::default());
    let conductor = keys
        .conductor
        .security()
        .replay_store(store)
        .replay_store_timeout(Duration::from_millis(250))
        .build();
    let server = conductor_named(&broker.connect().await, &conductor, &topic, "a", &state).await;
    let transport = broker.connect().await;
    let guest = keys.guest("g1").security().build();
    let client = Client::builder(Arc::clone(&transport), Arc::clone(&guest))
        .build()
        .await
        .unwrap();
    assert_eq!(ping(&client, &topic, 1).await.unwrap(), 1);

    // Redis hangs: the receiver waits at most its bound (250 ms), then refuses.
    redis.signal("-STOP");
    let started = Instant::now();
    match ping(&client, &topic, 2).await {
        Err(Error::Rejected { code, .. }) => assert_eq!(code, ErrorCode::Replay),
        other => panic!("admitted or not answered while the store hangs: {other:?}"),
    }
    println!("refused in {:?} with the store frozen", started.elapsed());
    redis.signal("-CONT");
    assert!(
        retry_ping(&client, &topic).await,
        "no call admitted after Redis thawed"
    );

    redis.kill();
    let started = Instant::now();
    match ping(&client, &topic, 2).await {
        Err(Error::Rejected { code, .. }) => assert_eq!(code, ErrorCode::Replay),
        other => panic!("admitted or not answered while the store is down: {other:?}"),
    }
    println!("refused in {:?} with the store down", started.elapsed());
    let unavailable = || {
        conductor
            .counters()
            .rejected_for(RejectReason::ReplayStoreUnavailable)
    };
    assert!(unavailable() >= 1);
    // A cast is refused (not run) too.
    let before = unavailable();
    publish(
        &transport,
        sealrpc_core::transport::Address::Topic(topic.clone()),
        record_cast(&guest, &topic, "g1", 1),
    )
    .await;
    assert!(eventually(|| unavailable() > before).await);
    assert_eq!(state.casts_from("g1"), (0, 0));

    // Redis is back (empty: no persistence): calls are admitted again.
    redis.restart();
    assert!(
        retry_ping(&client, &topic).await,
        "no call admitted after Redis came back"
    );
    println!("counters: {:?}", conductor.counters().rejected);
    server.shutdown().await;
}

#[tokio::test]
async fn memory_redis_down_fails_closed_then_recovers() {
    redis_down_then_back(Wire::Memory).await;
}

#[tokio::test]
async fn amqp_redis_down_fails_closed_then_recovers() {
    redis_down_then_back(Wire::Amqp).await;
}
