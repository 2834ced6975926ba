//! A small signed+sealed cluster for the reliability suites: a control plane (conductor
//! servers, API clients) and guest agents, all with real keys from one master secret.
//!
//! Conductor methods: `report {from, seq}` (call; a guest may only report as itself),
//! `record {from, seq}` (cast; counted per `(from, seq)` for dedup), `ping {seq}` (call).
//! Guest agent methods: `ping {seq}` (call; stalls forever on a stuck guest) and
//! `install_bundle {bundle}` (call from the control plane only; the bundle travels as a
//! `Secret` inside the sealed body and is installed at once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sealrpc_core::security::Security;
use sealrpc_core::transport::Transport;
use sealrpc_core::{
    Caller, Client, Context, Error, HandlerError, Secret, Server, ServerHandle, Target,
};
use sealrpc_signers::{ControlPlaneKeys, GuestBundle, GuestKeys, MasterSecret, RotationTable};
use serde::{Deserialize, Serialize};

/// A unique name: `prefix-<12 hex>` (topics, exchanges).
pub fn uniq(prefix: &str) -> String {
    let mut b = [0u8; 6];
    sealrpc_core::rand::fill(&mut b);
    format!("{prefix}-{}", hex::encode(b))
}

/// Arguments of `report`, `record` and `ping`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seq {
    /// The sender's own name (its instance id, or a control-plane worker name).
    pub from: String,
    /// A per-sender sequence number.
    pub seq: u64,
}

/// Arguments of `install_bundle`.
#[derive(Serialize, Deserialize)]
pub struct InstallBundle {
    /// The bundle's JSON (`GuestBundle::to_json`).
    pub bundle: Secret<String>,
}

/// The control plane's keys: one master, one rotation table, two services.
#[derive(Debug, Clone)]
pub struct ControlKeys {
    /// The shared rotation table.
    pub table: Arc<RotationTable>,
    /// `control:conductor`.
    pub conductor: ControlPlaneKeys,
    /// `control:api`.
    pub api: ControlPlaneKeys,
}

impl ControlKeys {
    /// Fresh keys (new master, grace one hour).
    pub fn new() -> Self {
        let master = Arc::new(MasterSecret::generate().expect("master"));
        let table = Arc::new(RotationTable::new());
        let conductor =
            ControlPlaneKeys::new(master, Arc::clone(&table), "conductor").expect("conductor");
        let api = conductor.for_service("api").expect("api");
        Self {
            table,
            conductor,
            api,
        }
    }

    /// Issues `id`'s bundle and loads it as the guest would.
    pub fn guest(&self, id: &str) -> GuestKeys {
        let bundle = self.conductor.issue_guest_bundle(id).expect("bundle");
        GuestKeys::from_bundle(&bundle).expect("guest keys")
    }
}

impl Default for ControlKeys {
    fn default() -> Self {
        Self::new()
    }
}

/// What the conductor servers saw.
#[derive(Debug, Default)]
pub struct ConductorState {
    /// Deliveries of `record` per `(from, seq)`.
    pub casts: Mutex<HashMap<(String, u64), u32>>,
    /// `report` calls handled, per guest.
    pub reports: Mutex<HashMap<String, u64>>,
}

impl ConductorState {
    /// Deliveries of `record` from `from` (distinct seqs, duplicates beyond the first).
    pub fn casts_from(&self, from: &str) -> (usize, u64) {
        let casts = self.casts.lock().expect("lock");
        let mine = casts.iter().filter(|((f, _), _)| f == from);
        let (mut distinct, mut dups) = (0, 0);
        for (_, n) in mine {
            distinct += 1;
            dups += u64::from(n.saturating_sub(1));
        }
        (distinct, dups)
    }
}

/// Starts a conductor server on `topic` (shared topic queue; several compete).
pub async fn conductor(
    transport: &Arc<dyn Transport>,
    security: &Arc<Security>,
    topic: &str,
    state: &Arc<ConductorState>,
) -> ServerHandle {
    let name = uniq("c");
    conductor_named(transport, security, topic, &name, state).await
}

/// [`conductor`] with a fixed server name (its queue is `topic.name`).
pub async fn conductor_named(
    transport: &Arc<dyn Transport>,
    security: &Arc<Security>,
    topic: &str,
    name: &str,
    state: &Arc<ConductorState>,
) -> ServerHandle {
    let (s1, s2) = (Arc::clone(state), Arc::clone(state));
    Server::builder(Arc::clone(transport), Arc::clone(security))
        .topic(topic)
        .server_name(name)
        .fanout(false)
        .max_concurrency(256)
        .handler("report", move |_ctx: Context, a: Seq| {
            *s1.reports
                .lock()
                .expect("lock")
                .entry(a.from.clone())
                .or_default() += 1;
            async move { Ok::<_, HandlerError>(a.seq) }
        })
        .authorize("report", |c: &Caller, a: &Seq| {
            c.is_control_plane() || c.is_guest(&a.from)
        })
        .handler("record", move |_ctx: Context, a: Seq| {
            *s2.casts
                .lock()
                .expect("lock")
                .entry((a.from, a.seq))
                .or_default() += 1;
            async move { Ok::<_, HandlerError>(()) }
        })
        .handler("ping", |_ctx: Context, a: Seq| async move {
            Ok::<_, HandlerError>(a.seq)
        })
        .start()
        .await
        .expect("conductor starts")
}

/// A guest agent: its keys, its node security, its server and its client.
#[derive(Debug)]
pub struct Guest {
    /// The instance id.
    pub id: String,
    /// Its key store (rotation installs new bundles here).
    pub keys: GuestKeys,
    /// Its node security (shared by its server and client).
    pub security: Arc<Security>,
    /// Its agent server.
    pub server: Option<ServerHandle>,
    /// Its client (calls the conductor).
    pub client: Client,
    /// `ping` calls it handled.
    pub pings: Arc<AtomicU64>,
    /// While set, `ping` never returns (a stuck agent).
    pub stuck: Arc<AtomicBool>,
}

/// Starts guest `id`'s agent on `topic` (`topic.<id>` only) and its client.
pub async fn guest(
    transport: &Arc<dyn Transport>,
    control: &ControlKeys,
    topic: &str,
    id: &str,
    max_concurrency: usize,
) -> Guest {
    let keys = control.guest(id);
    let security = keys.security().build();
    let pings = Arc::new(AtomicU64::new(0));
    let stuck = Arc::new(AtomicBool::new(false));
    let (p, st, k) = (Arc::clone(&pings), Arc::clone(&stuck), keys.clone());
    let server = Server::builder(Arc::clone(transport), Arc::clone(&security))
        .topic(topic)
        .server_name(id)
        .shared(false)
        .fanout(false)
        .max_concurrency(max_concurrency)
        .handler("ping", move |_ctx: Context, a: Seq| {
            let (p, st) = (Arc::clone(&p), Arc::clone(&st));
            async move {
                if st.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                p.fetch_add(1, Ordering::Relaxed);
                Ok::<_, HandlerError>(a.seq)
            }
        })
        .handler("install_bundle", move |_ctx: Context, a: InstallBundle| {
            let k = k.clone();
            async move {
                let bundle = GuestBundle::from_json(a.bundle.expose())
                    .map_err(|_| HandlerError::bad_request("not a bundle"))?;
                k.install_bundle(&bundle)
                    .map_err(|e| HandlerError::bad_request(e.to_string()))?;
                Ok::<_, HandlerError>(k.epoch())
            }
        })
        .authorize_caller("install_bundle", Caller::is_control_plane)
        .start()
        .await
        .expect("guest agent starts");
    let client = Client::builder(Arc::clone(transport), Arc::clone(&security))
        .build()
        .await
        .expect("guest client");
    Guest {
        id: id.to_owned(),
        keys,
        security,
        server: Some(server),
        client,
        pings,
        stuck,
    }
}

/// Rotates guest `id`'s epoch and delivers its new bundle over the existing sealed
/// channel (a `Secret` argument of `install_bundle`); returns the guest's new epoch.
pub async fn rotate_guest_over_channel(
    control: &ControlKeys,
    client: &Client,
    topic: &str,
    id: &str,
) -> Result<u64, Error> {
    control.table.rotate_guest(id).expect("rotate");
    let bundle = control.conductor.issue_guest_bundle(id).expect("bundle");
    let args = InstallBundle {
        bundle: Secret::new(bundle.to_json().to_string()),
    };
    client
        .call(
            &Context::new(),
            &Target::guest(topic, id),
            "install_bundle",
            &args,
        )
        .await
}

/// `n` instance ids, unique per run.
pub fn guest_ids(n: usize) -> Vec<String> {
    let run = uniq("g");
    (0..n).map(|i| format!("{run}-{i:02}")).collect()
}
