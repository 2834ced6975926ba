//! The shared store goes away under running watchers and comes back: a TCP relay between
//! the service and PostgreSQL is cut, then restored. While it is cut every look fails, is
//! counted, and the last good state (revocations included) stays in force; afterwards the
//! session and the NOTIFY listener reconnect by themselves and the missed change is applied.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealrpc_core::security::KeyError;
use sealrpc_core::wire::KeyId;
use sealrpc_signers::pg::PgRotationStore;
use sealrpc_signers::{RotationTable, RotationWatcher, WatchOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const DIRECT: &str = "postgres://postgres@127.0.0.1:5432/test";
const PATIENCE: Duration = Duration::from_secs(30);

/// A relay to PostgreSQL that can be cut (every connection dropped, new ones refused).
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (u, c) = (Arc::clone(&up), Arc::clone(&conns));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().unwrap().push(task);
            }
        });
        Self {
            port,
            up,
            conns,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

fn id(s: &str) -> KeyId {
    KeyId::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_keeps_the_last_good_state_and_recovers_by_itself() {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    let table_name = format!("sealrpc_rot_outage_{}", hex::encode(b));
    let direct = Arc::new(PgRotationStore::new(DIRECT, &table_name).unwrap());
    let initial = RotationTable::new();
    for g in ["g1", "g2"] {
        initial.register_guest(g).unwrap();
    }
    direct.create(&initial).unwrap();
    let relay = Relay::start().await;
    let outcome = tokio::spawn(scenario(
        Arc::clone(&direct),
        relay.url(),
        table_name,
        Arc::new(relay),
    ))
    .await;
    direct.drop_table().unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn scenario(direct: Arc<PgRotationStore>, url: String, name: String, relay: Arc<Relay>) {
    // The service reaches the store only through the relay.
    let store = Arc::new(
        PgRotationStore::new(&url, &name)
            .unwrap()
            .op_timeout(Duration::from_secs(2)),
    );
    let table = Arc::new(RotationTable::new());
    // Only NOTIFY (or check_now) can make it look within the test.
    let watcher = RotationWatcher::start(
        Arc::clone(&table),
        Arc::clone(&store),
        WatchOptions::interval(Duration::from_secs(3600)),
    )
    .unwrap();
    let _listener = store.listen(watcher.waker()).unwrap();
    let write = |g: &'static str| {
        let d = Arc::clone(&direct);
        tokio::task::spawn_blocking(move || d.update(|t| t.revoke(g)))
    };
    let wait_revoked = |g: &'static str| {
        let table = Arc::clone(&table);
        async move {
            let t0 = Instant::now();
            while table.check(&id(&format!("k3/guest:{g}/1"))) != Err(KeyError::Revoked) {
                assert!(t0.elapsed() < PATIENCE, "{g} never applied");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    write("g1").await.unwrap().unwrap();
    wait_revoked("g1").await;

    // Outage: the change made meanwhile cannot be read; every look fails and is counted;
    // the last good state (g1 revoked) stays in force.
    relay.cut();
    write("g2").await.unwrap().unwrap();
    let w = Arc::new(watcher);
    for _ in 0..2 {
        let w2 = Arc::clone(&w);
        let r = tokio::task::spawn_blocking(move || w2.check_now())
            .await
            .unwrap();
        assert!(r.is_err(), "{r:?}");
    }
    let s = w.stats();
    assert!(s.failing && s.failed >= 2, "{s:?}");
    assert_eq!(table.check(&id("k3/guest:g1/1")), Err(KeyError::Revoked));
    assert_eq!(table.check(&id("k3/guest:g2/1")), Ok(()), "not known yet");

    // Back: the session reconnects at the next look, and the listener by itself (it wakes
    // the watcher when it is listening again, which reads the missed change).
    relay.restore();
    wait_revoked("g2").await;
    assert!(!w.stats().failing);
    // And notifications flow again.
    direct
        .update(|t| {
            t.unrevoke("g1");
            Ok(())
        })
        .unwrap();
    let t0 = Instant::now();
    while table.is_revoked("g1") {
        assert!(t0.elapsed() < PATIENCE, "{:?}", w.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
