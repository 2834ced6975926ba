//! Three conductor replicas (competing consumers on one topic, in-memory transport), each
//! with its own keys and watcher on one shared PostgreSQL rotation store. `sealrpc-keys
//! revoke --store` (the real binary) reaches all three: each refuses the revoked guest
//! (counted as `revoked_key`) and still serves the others. The store's table is unique
//! to the test and dropped at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealrpc_core::security::RejectReason;
use sealrpc_core::security::Security;
use sealrpc_core::transport::Transport;
use sealrpc_core::{
    Client, Context, Error, HandlerError, MemoryTransport, Server, ServerHandle, Target,
};
use sealrpc_signers::pg::{NotifyListener, PgRotationStore};
use sealrpc_signers::{
    ControlPlaneKeys, GuestBundle, GuestKeys, MasterSecret, RotationWatcher, WatchOptions,
};

const URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PATIENCE: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(serde::Serialize, serde::Deserialize)]
struct Ping {
    n: u64,
}

fn keys(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

struct DropTable(PgRotationStore);
impl Drop for DropTable {
    fn drop(&mut self) {
        let _ = self.0.drop_table();
    }
}

struct Replica {
    name: String,
    security: Arc<Security>,
    watcher: RotationWatcher,
    _listener: NotifyListener,
    _server: ServerHandle,
}

async fn replica(
    transport: &Arc<dyn Transport>,
    master: &Arc<MasterSecret>,
    table: &str,
    topic: &str,
    name: &str,
) -> Replica {
    // Its own store handle (session), table, keys and watcher: as on its own host.
    let store = Arc::new(PgRotationStore::new(URL, table).unwrap());
    let state = Arc::new(store.load().unwrap());
    let keys = ControlPlaneKeys::new(Arc::clone(master), state, "conductor").unwrap();
    let watcher =
        RotationWatcher::start_for_keys(&keys, Arc::clone(&store), WatchOptions::default())
            .unwrap();
    let listener = store.listen(watcher.waker()).unwrap();
    let security = keys.security().build();
    let server = Server::builder(Arc::clone(transport), Arc::clone(&security))
        .topic(topic)
        .server_name(name)
        .fanout(false)
        .handler("ping", |_ctx: Context, a: Ping| async move {
            Ok::<_, HandlerError>(a.n)
        })
        .start()
        .await
        .unwrap();
    Replica {
        name: name.to_owned(),
        security,
        watcher,
        _listener: listener,
        _server: server,
    }
}

async fn ping(client: &Client, target: Target) -> Result<u64, Error> {
    client
        .prepare(target)
        .timeout(CALL_TIMEOUT)
        .call(&Context::new(), "ping", &Ping { n: 7 })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_revocation_in_the_shared_store_reaches_every_replica() {
    let memory: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let transports = vec![memory; 4];
    scenario(&transports, "conductor").await;
}

/// The same over RabbitMQ: each replica and the guests on their own connection, competing
/// consumers on one topic queue. Unique exchange and topic; exchanges deleted at the end.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_over_rabbitmq() {
    use sealrpc_amqp::{AmqpOptions, AmqpTransport};
    const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    let tag = format!("rotpg{}", hex::encode(b));
    let (exchange, topic) = (format!("{tag}-ctl"), format!("{tag}-cond"));
    let mut conns = Vec::new();
    for _ in 0..4 {
        let t = AmqpTransport::connect(AmqpOptions {
            control_exchange: exchange.clone(),
            ..AmqpOptions::default().with_url(AMQP)
        })
        .await
        .unwrap();
        conns.push(Arc::new(t));
    }
    let transports: Vec<Arc<dyn Transport>> = conns
        .iter()
        .map(|c| Arc::clone(c) as Arc<dyn Transport>)
        .collect();
    let outcome = tokio::spawn(async move { scenario(&transports, &topic).await }).await;
    for c in &conns {
        c.close().await;
    }
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "cleanup".into()).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Replicas on `transports[0..3]`, guests on `transports[3]`, serving `topic`.
async fn scenario(transports: &[Arc<dyn Transport>], topic: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ds = d.to_str().unwrap();
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).unwrap();
    let table = format!("sealrpc_rot_replicas_{}", hex::encode(suffix));
    let _cleanup = DropTable(PgRotationStore::new(URL, &table).unwrap());
    let store = ["--store", URL, "--store-table", &table];

    keys(&["init", "--dir", ds, "--service", "conductor"]);
    keys(&[&["import", "--dir", ds][..], &store[..]].concat());
    let (good, bad) = ("good-7f3a", "bad-0b1c");
    for id in [good, bad] {
        let out = d.join(format!("{id}.json"));
        let out = out.to_str().unwrap();
        keys(
            &[
                &["issue-guest", id, "--dir", ds, "--out", out][..],
                &store[..],
            ]
            .concat(),
        );
    }

    let master = Arc::new(MasterSecret::load(&d.join("master.key")).unwrap());
    let mut replicas = Vec::new();
    for (i, name) in ["r1", "r2", "r3"].into_iter().enumerate() {
        replicas.push(replica(&transports[i], &master, &table, topic, name).await);
    }
    let transport = &transports[3];
    let guest_client = |id: &str| {
        let bundle = GuestBundle::load(&d.join(format!("{id}.json"))).unwrap();
        let security = GuestKeys::from_bundle(&bundle).unwrap().security().build();
        Client::builder(Arc::clone(transport), security).build()
    };
    let g_good = guest_client(good).await.unwrap();
    let g_bad = guest_client(bad).await.unwrap();
    for r in &replicas {
        let to = Target::new(topic).server(&r.name);
        assert_eq!(ping(&g_bad, to.clone()).await.unwrap(), 7, "{}", r.name);
    }
    let before: Vec<u64> = replicas
        .iter()
        .map(|r| r.security.counters().rejected_for(RejectReason::RevokedKey))
        .collect();

    // Revoke in the shared store, with the CLI; no replica is told anything else.
    let t0 = Instant::now();
    keys(&[&["revoke", bad][..], &store[..]].concat());
    for r in &replicas {
        while !r.watcher.table().is_revoked(bad) {
            assert!(
                t0.elapsed() < PATIENCE,
                "{}: {:?}",
                r.name,
                r.watcher.stats()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "all three replicas applied the revocation after {:?} (bound 2 s)",
        t0.elapsed()
    );

    for (r, before) in replicas.iter().zip(before) {
        let to = Target::new(topic).server(&r.name);
        let refused = ping(&g_bad, to.clone()).await;
        assert!(
            matches!(refused, Err(Error::Timeout(_))),
            "{}: {refused:?}",
            r.name
        );
        assert!(
            r.security.counters().rejected_for(RejectReason::RevokedKey) > before,
            "{} counts it as revoked_key",
            r.name
        );
        assert_eq!(
            ping(&g_good, to).await.unwrap(),
            7,
            "{} serves others",
            r.name
        );
        assert!(!r.watcher.stats().failing);
    }
    // On the shared topic too, whichever replica takes the call.
    for _ in 0..3 {
        let refused = ping(&g_bad, Target::new(topic)).await;
        assert!(matches!(refused, Err(Error::Timeout(_))), "{refused:?}");
    }
}
