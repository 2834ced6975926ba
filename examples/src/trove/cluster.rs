//! A whole Trove-like cluster in one process: keys issued by the operator, an API, a task
//! manager, a conductor and N guest agents, on one network.

use std::collections::BTreeMap;
use std::sync::Arc;

use sealrpc_core::notify::ListenerHandle;
use sealrpc_core::security::Security;
use sealrpc_core::security::{CounterSnapshot, Policy, RejectReason, ReplayConfig};
use sealrpc_core::wire::Limits;
use sealrpc_core::{Client, ServerHandle};
use tokio::sync::{Mutex, mpsc};

use super::BoxError;
use super::guest::Guest;
use super::keys::{Operator, new_instance_id};
use super::ledger::Ledger;
use super::net::{Net, TransportChoice};
use super::services::{Provisioned, start_conductor, start_taskmanager};

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of guest agents.
    pub guests: usize,
    /// The transport.
    pub transport: TransportChoice,
    /// The policy of every control-plane service.
    pub control_policy: Policy,
    /// The policy of the (new) guests.
    pub guest_policy: Policy,
    /// The first `old_guests` guests run an old release: policy Off (they hold bundles).
    pub old_guests: usize,
    /// Receive limits of every node.
    pub limits: Limits,
    /// The conductor's replay guard (sized so the demo can fill a guest's quota).
    pub conductor_replay: ReplayConfig,
}

impl ClusterConfig {
    /// `guests` guests on `transport`, everything signed, sealed and enforced, and a 1 MiB
    /// envelope limit (the demo's messages are small).
    pub fn new(guests: usize, transport: TransportChoice) -> Self {
        Self {
            guests,
            transport,
            control_policy: Policy::default(),
            guest_policy: Policy::default(),
            old_guests: 0,
            limits: Limits {
                max_envelope: 1024 * 1024,
                ..Limits::default()
            },
            conductor_replay: ReplayConfig {
                capacity: 4096,
                control_reserve: 1024,
                per_guest: 256,
                ..ReplayConfig::default()
            },
        }
    }
}

/// A control-plane service of the cluster.
#[derive(Debug)]
pub struct Service {
    /// `control:<name>`.
    pub principal: String,
    /// Its security runtime.
    pub security: Arc<Security>,
    /// Its client.
    pub client: Client,
}

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The network.
    pub net: Net,
    /// The operator's keys.
    pub operator: Operator,
    /// What ran.
    pub ledger: Arc<Ledger>,
    /// The API (a client of the task manager).
    pub api: Service,
    /// The task manager (a server and a client of the guests).
    pub taskmanager: Service,
    /// The conductor (a server).
    pub conductor: Service,
    /// The guests, in start order.
    pub guests: Vec<Guest>,
    /// Instances provisioned by the task manager, as they finish.
    pub provisioned: Mutex<mpsc::UnboundedReceiver<Provisioned>>,
    servers: Vec<ServerHandle>,
    /// The conductor's usage notification listener (pool `conductor`).
    usage: ListenerHandle,
}

impl Cluster {
    /// Issues the keys and starts every node.
    pub async fn start(config: &ClusterConfig) -> Result<Self, BoxError> {
        let net = Net::start(&config.transport).await?;
        let operator = Operator::init()?;
        let ledger = Arc::new(Ledger::default());
        let service = |name: &str| -> Result<(String, Arc<Security>), BoxError> {
            let keys = operator.service(name)?;
            let mut security = keys
                .security()
                .policy(config.control_policy)
                .limits(config.limits);
            if name == "conductor" {
                security = security.replay(config.conductor_replay);
            }
            let security = security.build();
            Ok((format!("control:{name}"), security))
        };
        let mut nodes = Vec::new();
        for name in ["api", "taskmanager", "conductor"] {
            let (principal, security) = service(name)?;
            let client = Client::builder(Arc::clone(&net.control), Arc::clone(&security))
                .build()
                .await?;
            nodes.push(Service {
                principal,
                security,
                client,
            });
        }
        let conductor = nodes.pop().ok_or("no conductor")?;
        let taskmanager = nodes.pop().ok_or("no task manager")?;
        let api = nodes.pop().ok_or("no api")?;

        let (done, provisioned) = mpsc::unbounded_channel();
        let servers = vec![
            start_conductor(
                Arc::clone(&net.control),
                Arc::clone(&conductor.security),
                &net.topics,
                Arc::clone(&ledger),
            )
            .await?,
            start_taskmanager(
                Arc::clone(&net.control),
                Arc::clone(&taskmanager.security),
                taskmanager.client.clone(),
                net.topics.clone(),
                Arc::clone(&ledger),
                done,
            )
            .await?,
        ];

        let usage = super::usage::listen(
            Arc::clone(&net.control),
            Arc::clone(&conductor.security),
            &net.topics,
            Arc::clone(&ledger),
        )
        .await?;

        // Keys and broker users for every guest (the broker users in parallel: each
        // rabbitmqctl run takes most of a second).
        let ids: Vec<String> = (0..config.guests).map(|_| new_instance_id()).collect();
        let mut bundles = Vec::with_capacity(ids.len());
        for id in &ids {
            bundles.push(operator.issue_guest(id)?);
        }
        let links = futures_util::future::join_all(ids.iter().map(|id| net.guest(id))).await;
        let mut guests = Vec::with_capacity(config.guests);
        for (i, ((id, bundle), link)) in ids.iter().zip(bundles).zip(links).enumerate() {
            let policy = if i < config.old_guests {
                Policy::uniform(sealrpc_core::security::ClassPolicy::off())
            } else {
                config.guest_policy
            };
            let g = Guest::start(
                id,
                bundle,
                link?,
                &net.topics,
                policy,
                config.limits,
                Arc::clone(&ledger),
            )
            .await?;
            guests.push(g);
        }
        Ok(Self {
            net,
            operator,
            ledger,
            api,
            taskmanager,
            conductor,
            guests,
            provisioned: Mutex::new(provisioned),
            servers,
            usage,
        })
    }

    /// Every node's principal and security runtime.
    pub fn nodes(&self) -> Vec<(String, Arc<Security>)> {
        let mut out: Vec<_> = [&self.api, &self.taskmanager, &self.conductor]
            .iter()
            .map(|s| (s.principal.clone(), Arc::clone(&s.security)))
            .collect();
        out.extend(
            self.guests
                .iter()
                .map(|g| (g.principal.clone(), Arc::clone(&g.security))),
        );
        out
    }

    /// The control plane's security runtimes.
    pub fn control_plane(&self) -> [&Arc<Security>; 3] {
        [
            &self.api.security,
            &self.taskmanager.security,
            &self.conductor.security,
        ]
    }

    /// Rejections by reason, summed over every node.
    pub fn rejections(&self) -> BTreeMap<RejectReason, u64> {
        let mut out = BTreeMap::new();
        for (_, s) in self.nodes() {
            for (r, n) in s.counters().rejected {
                *out.entry(r).or_default() += n;
            }
        }
        out
    }

    /// The sum of the control plane's counters.
    pub fn control_counters(&self) -> CounterSnapshot {
        let mut total = CounterSnapshot::default();
        for s in self.control_plane() {
            let c = s.counters();
            total.accepted += c.accepted;
            total.accepted_unauthenticated += c.accepted_unauthenticated;
            total.accepted_unsealed += c.accepted_unsealed;
            for (r, n) in c.rejected {
                *total.rejected.entry(r).or_default() += n;
            }
        }
        total
    }

    /// The guest with instance id `id`.
    pub fn guest(&self, id: &str) -> Option<&Guest> {
        self.guests.iter().find(|g| g.id == id)
    }

    /// Stops every server, closes the network, deletes the key directory.
    pub async fn shutdown(self) {
        self.usage.shutdown().await;
        for s in self.servers {
            s.shutdown().await;
        }
        for g in self.guests {
            g.shutdown().await;
        }
        self.net.close().await;
    }
}
