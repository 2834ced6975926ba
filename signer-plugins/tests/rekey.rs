//! Rekeying over the bus on the in-memory transport: a guest agent with the reserved
//! methods installs its new bundle (file and memory) and proves it under the new key;
//! only a signed control-plane service may call them; a guest that is down gets its
//! bundle when it comes back; a bulk rotation reaches every guest with bounded
//! concurrency and progress.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use sealrpc_core::IncomingRequest;
use tower::Service;

use sealrpc_core::transport::Transport;
use sealrpc_core::{
    Client, Context, Error, HandlerError, MemoryTransport, Server, ServerHandle, Target,
};
use sealrpc_signers::rekey::{
    Delivered, INSTALL, NAMESPACE, PREPARE, Rekey, RekeyAgent, RekeyServerExt, RetryPolicy,
};
use sealrpc_signers::{ControlPlaneKeys, GuestBundle, GuestKeys, MasterSecret, RotationTable};

const CALL: Duration = Duration::from_millis(800);

#[derive(serde::Serialize, serde::Deserialize)]
struct Ping {
    n: u64,
}

struct ControlPlane {
    keys: ControlPlaneKeys,
    client: Client,
    _conductor: ServerHandle,
}

async fn control_plane(transport: &Arc<dyn Transport>) -> ControlPlane {
    let table = Arc::new(RotationTable::new());
    let keys = ControlPlaneKeys::new(
        Arc::new(MasterSecret::generate().unwrap()),
        table,
        "conductor",
    )
    .unwrap();
    let security = keys.security().build();
    let conductor = Server::builder(Arc::clone(transport), Arc::clone(&security))
        .topic("conductor")
        .fanout(false)
        .handler("ping", |_c: Context, a: Ping| async move {
            Ok::<_, HandlerError>(a.n)
        })
        .start()
        .await
        .unwrap();
    let client = Client::builder(Arc::clone(transport), security)
        .build()
        .await
        .unwrap();
    ControlPlane {
        keys,
        client,
        _conductor: conductor,
    }
}

struct Guest {
    keys: GuestKeys,
    agent: RekeyAgent,
    client: Client,
    file: PathBuf,
    server: Option<ServerHandle>,
}

async fn provision(cp: &ControlPlane, dir: &Path, id: &str) -> GuestBundle {
    let bundle = cp.keys.issue_guest_bundle(id).unwrap();
    bundle.save_new(&dir.join(format!("{id}.json"))).unwrap();
    bundle
}

async fn guest(transport: &Arc<dyn Transport>, dir: &Path, id: &str, serve: bool) -> Guest {
    let file = dir.join(format!("{id}.json"));
    let keys = GuestKeys::from_bundle(&GuestBundle::load(&file).unwrap()).unwrap();
    let agent = RekeyAgent::new(keys.clone()).bundle_file(&file);
    let security = keys.security().build();
    let client = Client::builder(Arc::clone(transport), Arc::clone(&security))
        .build()
        .await
        .unwrap();
    let mut g = Guest {
        keys,
        agent,
        client,
        file,
        server: None,
    };
    if serve {
        start_agent(transport, &mut g, id).await;
    }
    g
}

/// Requests in flight across every guest agent that shares it, and the most seen at once.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Counted<S> {
    inner: S,
    gauge: Gauge,
}

impl<S> Service<IncomingRequest> for Counted<S>
where
    S: Service<IncomingRequest> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: IncomingRequest) -> Self::Future {
        let fut = self.inner.call(req);
        let g = self.gauge.clone();
        Box::pin(async move {
            let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
            g.max.fetch_max(n, Ordering::SeqCst);
            // Long enough for deliveries to overlap if nothing bounded them.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let r = fut.await;
            g.now.fetch_sub(1, Ordering::SeqCst);
            r
        })
    }
}

async fn start_agent(transport: &Arc<dyn Transport>, g: &mut Guest, id: &str) {
    start_agent_counted(transport, g, id, &Gauge::default()).await;
}

async fn start_agent_counted(
    transport: &Arc<dyn Transport>,
    g: &mut Guest,
    id: &str,
    gauge: &Gauge,
) {
    let security = g.keys.security().build();
    let gauge = gauge.clone();
    let server = Server::builder(Arc::clone(transport), security)
        .layer(tower::layer::layer_fn(move |inner| Counted {
            inner,
            gauge: gauge.clone(),
        }))
        .topic("guestagent")
        .server_name(id)
        .shared(false)
        .fanout(false)
        .rekey_agent(&g.agent)
        .handler("ping", |_c: Context, a: Ping| async move {
            Ok::<_, HandlerError>(a.n)
        })
        .start()
        .await
        .unwrap();
    g.server = Some(server);
}

async fn ping(client: &Client, target: Target) -> Result<u64, Error> {
    client
        .prepare(target)
        .timeout(CALL)
        .call(&Context::new(), "ping", &Ping { n: 5 })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_guest_installs_its_bundle_and_answers_under_the_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let cp = control_plane(&transport).await;
    provision(&cp, dir.path(), "g1").await;
    let g = guest(&transport, dir.path(), "g1", true).await;
    assert_eq!(g.keys.epoch(), 1);

    assert_eq!(cp.keys.rotation().rotate_guest("g1").unwrap(), 2);
    let rekey = Rekey::new(cp.keys.clone());
    let got = rekey.deliver(&cp.client, "g1").await.unwrap();
    assert_eq!(got, Delivered::Installed { epoch: 2 });
    assert_eq!(g.keys.epoch(), 2, "installed in memory");
    assert_eq!(g.agent.installed(), 1);
    let on_disk = GuestBundle::load(&g.file).unwrap();
    assert_eq!(on_disk.epoch(), 2, "and in the bundle file");
    assert_eq!(
        on_disk,
        cp.keys.issue_guest_bundle("g1").unwrap(),
        "the bundle the control plane issued"
    );

    // End the grace window at once: only the new epoch is accepted from now on, and the
    // control plane seals to the guest under its new k2. Both directions still work.
    cp.keys.rotation().set_grace(Duration::ZERO);
    assert_eq!(ping(&g.client, Target::new("conductor")).await.unwrap(), 5);
    assert_eq!(
        ping(&cp.client, Target::guest("guestagent", "g1"))
            .await
            .unwrap(),
        5
    );
    // Delivering again changes nothing.
    let again = rekey.deliver(&cp.client, "g1").await.unwrap();
    assert_eq!(again, Delivered::AlreadyCurrent { epoch: 2 });
    assert_eq!(g.agent.installed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_control_plane_service_may_call_the_rekey_methods() {
    let dir = tempfile::tempdir().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let cp = control_plane(&transport).await;
    provision(&cp, dir.path(), "victim").await;
    provision(&cp, dir.path(), "mallory").await;
    let _victim = guest(&transport, dir.path(), "victim", true).await;
    let mallory = guest(&transport, dir.path(), "mallory", false).await;
    let to = Target::guest("guestagent", "victim").namespace(NAMESPACE);
    // A guest (signed and sealed as itself) asking for the victim's wrap key, or pushing
    // a bundle: refused before the handler runs. (It cannot even seal to the victim: a
    // guest holds no k2 of another guest; the check does not depend on that.)
    for method in [PREPARE, INSTALL] {
        let r: Result<serde_json::Value, _> = mallory
            .client
            .prepare(to.clone())
            .timeout(CALL)
            .call(&Context::new(), method, &serde_json::json!({}))
            .await;
        assert!(r.is_err(), "{method}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_is_down_gets_its_bundle_when_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let cp = control_plane(&transport).await;
    provision(&cp, dir.path(), "sleepy").await;
    let mut g = guest(&transport, dir.path(), "sleepy", false).await;
    cp.keys.rotation().rotate_guest("sleepy").unwrap();
    let rekey = Rekey::new(cp.keys.clone())
        .call_timeout(Duration::from_millis(300))
        .retry(RetryPolicy::new(
            30,
            Duration::from_millis(50),
            Duration::from_millis(200),
        ));
    let client = cp.client.clone();
    let delivery = tokio::spawn(async move { rekey.deliver(&client, "sleepy").await });
    // The guest is down for a while (the first attempts fail), then its agent starts.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!delivery.is_finished(), "still retrying");
    start_agent(&transport, &mut g, "sleepy").await;
    let got = tokio::time::timeout(Duration::from_secs(30), delivery)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Delivered::Installed { epoch: 2 });
    assert_eq!(g.keys.epoch(), 2);

    // A guest that never comes back: a bounded number of attempts, then a typed error.
    provision(&cp, dir.path(), "gone").await;
    cp.keys.rotation().rotate_guest("gone").unwrap();
    let rekey = Rekey::new(cp.keys.clone())
        .call_timeout(Duration::from_millis(100))
        .retry(RetryPolicy::new(
            3,
            Duration::from_millis(10),
            Duration::from_millis(20),
        ));
    let err = rekey.deliver(&cp.client, "gone").await.unwrap_err();
    assert!(matches!(err, sealrpc_signers::Error::Rekey { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_rotation_reaches_every_guest_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let cp = control_plane(&transport).await;
    let ids: Vec<String> = (0..24).map(|i| format!("fleet-{i:02}")).collect();
    let gauge = Gauge::default();
    let mut guests = Vec::new();
    for id in &ids {
        provision(&cp, dir.path(), id).await;
        let mut g = guest(&transport, dir.path(), id, false).await;
        start_agent_counted(&transport, &mut g, id, &gauge).await;
        guests.push(g);
    }
    for id in &ids {
        cp.keys.rotation().rotate_guest(id).unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let report = Rekey::new(cp.keys.clone())
        .deliver_all(&cp.client, ids.clone(), 4, move |p| {
            log.lock().unwrap().push((p.done, p.total, p.failed));
        })
        .await;
    assert_eq!(report.installed, 24, "{:?}", report.failed);
    assert!(report.failed.is_empty());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 24);
    assert!(seen.iter().enumerate().all(|(i, p)| *p == (i + 1, 24, 0)));
    assert!(guests.iter().all(|g| g.keys.epoch() == 2));
    // Each delivery makes one call at a time: never more than 4 guests served at once.
    let max = gauge.max.load(Ordering::SeqCst);
    println!("at most {max} rekey requests in flight (bound 4)");
    assert!((1..=4).contains(&max), "{max}");
}

/// The install arguments as they travel (a test-side copy of the wire form).
#[derive(serde::Serialize)]
struct RawInstall {
    epoch: u64,
    #[serde(with = "serde_bytes")]
    guest_eph: Vec<u8>,
    #[serde(with = "serde_bytes")]
    cp_eph: Vec<u8>,
    #[serde(with = "serde_bytes")]
    n: Vec<u8>,
    #[serde(with = "serde_bytes")]
    ct: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct RawPrepared {
    #[allow(dead_code, reason = "part of the wire form")]
    epoch: u64,
    #[serde(with = "serde_bytes")]
    eph: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_mismatched_or_malformed_installs_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let cp = control_plane(&transport).await;
    provision(&cp, dir.path(), "g1").await;
    let g = guest(&transport, dir.path(), "g1", true).await;
    let to = Target::guest("guestagent", "g1").namespace(NAMESPACE);
    let call = |args: RawInstall| {
        let (client, to) = (cp.client.clone(), to.clone());
        async move {
            client
                .prepare(to)
                .timeout(CALL)
                .call::<_, serde_json::Value>(&Context::new(), INSTALL, &args)
                .await
        }
    };
    let prepared: RawPrepared = cp
        .client
        .prepare(to.clone())
        .timeout(CALL)
        .call(&Context::new(), PREPARE, &serde_json::json!({}))
        .await
        .unwrap();
    let raw = |epoch, guest_eph: &[u8]| RawInstall {
        epoch,
        guest_eph: guest_eph.to_vec(),
        cp_eph: vec![9; 32],
        n: vec![0; 24],
        ct: vec![0; 64],
    };
    // Not newer than what the guest holds (a replayed old bundle, a downgrade).
    let r = call(raw(1, &prepared.eph)).await;
    assert!(format!("{r:?}").contains("not newer"), "{r:?}");
    // For a wrap key the guest never drew.
    let r = call(raw(2, &[7; 32])).await;
    assert!(format!("{r:?}").contains("no rekey in progress"), "{r:?}");
    // For its key, but not a wrap that opens (forged by someone without the secret).
    let r = call(raw(2, &prepared.eph)).await;
    assert!(format!("{r:?}").contains("does not open"), "{r:?}");
    // The key was used once: the same delivery again finds nothing pending.
    let r = call(raw(2, &prepared.eph)).await;
    assert!(format!("{r:?}").contains("no rekey in progress"), "{r:?}");
    // Wrong sizes are a bad request.
    let mut short = raw(2, &prepared.eph);
    short.n = vec![0; 12];
    let r = call(short).await;
    assert!(format!("{r:?}").contains("wrong length"), "{r:?}");
    assert_eq!((g.keys.epoch(), g.agent.installed()), (1, 0));
    assert_eq!(GuestBundle::load(&g.file).unwrap().epoch(), 1);
}
