//! The network of a cluster: the in-memory transport or RabbitMQ, a wiretap (a copy of
//! every message published: what anyone who can read the broker sees), per-guest broker
//! credentials, and the attacker's raw access.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sealrpc_amqp::admin::Rabbitmqctl;
use sealrpc_amqp::{AmqpOptions, AmqpTransport, CredentialPolicy, GuestCredentials};
use sealrpc_core::MemoryTransport;
use sealrpc_core::bytes::Bytes;
use sealrpc_core::transport::{
    Address, ListenSpec, NotifyListenSpec, Outgoing, ReplyInbox, Subscription, Transport,
    TransportError,
};
use tokio::sync::broadcast;

use super::BoxError;
use super::api::Topics;

/// Which transport a cluster runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportChoice {
    /// The embedded in-memory transport.
    Memory,
    /// RabbitMQ at this URL (`amqp://user:pass@host:port/vhost`), or a cluster's nodes
    /// (a comma-separated list, see `AmqpOptions::url`).
    Amqp(String),
}

/// A copy of one published message.
pub type Tapped = (Address, Bytes);

/// A transport that copies every message it sends to a wiretap.
#[derive(Debug)]
pub struct TapTransport {
    inner: Arc<dyn Transport>,
    tap: broadcast::Sender<Tapped>,
}

#[async_trait]
impl Transport for TapTransport {
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError> {
        if self.tap.receiver_count() > 0 {
            let _ = self.tap.send((msg.to.clone(), msg.payload.clone()));
        }
        self.inner.send(msg).await
    }

    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError> {
        self.inner.listen(spec).await
    }

    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError> {
        self.inner.reply_inbox().await
    }

    async fn listen_notifications(
        &self,
        spec: &NotifyListenSpec,
    ) -> Result<Subscription, TransportError> {
        self.inner.listen_notifications(spec).await
    }
}

/// A guest's connection to the network.
#[derive(Debug, Clone)]
pub struct GuestLink {
    /// What the guest agent uses (tapped).
    pub transport: Arc<dyn Transport>,
    /// The guest's own broker connection, untapped, when it has its own credentials.
    pub own_credentials: Option<Arc<dyn Transport>>,
    /// The guest's broker user and the broker's URL with it (password redacted in
    /// `Debug`): what a compromised guest uses for raw AMQP.
    pub broker_user: Option<GuestBrokerUser>,
}

/// A guest's generated broker user, as the guest holds it.
#[derive(Clone)]
pub struct GuestBrokerUser {
    /// The user, its permissions and queues.
    pub credentials: GuestCredentials,
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
}

impl std::fmt::Debug for GuestBrokerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestBrokerUser")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The transport options for `url`: with several brokers (a cluster), cluster mode:
/// durable exchanges and quorum topic and server queues, which survive a node loss.
fn base_options(url: &str) -> AmqpOptions {
    let clustered = url.contains(',');
    AmqpOptions {
        durable: clustered,
        quorum_queues: clustered,
        ..AmqpOptions::from_env().with_url(url)
    }
}

#[derive(Debug)]
struct AmqpState {
    url: String,
    /// The run's name prefix (its queues and exchanges), for the cleanup in cluster mode.
    prefix: String,
    host_ports: Vec<String>,
    policy: CredentialPolicy,
    per_guest: bool,
    /// The control plane's own transport: it provisions the guests' queues.
    operator: AmqpTransport,
    guests: Mutex<Vec<GuestCredentials>>,
    connections: Mutex<Vec<AmqpTransport>>,
}

/// The network of one cluster.
#[derive(Debug)]
pub struct Net {
    /// The control plane's transport (tapped).
    pub control: Arc<dyn Transport>,
    /// Raw broker access for the attacker: on RabbitMQ the worst case, a broker account
    /// that may publish anywhere (Trove's old shared credentials). Untapped.
    pub attacker: Arc<dyn Transport>,
    /// The topics.
    pub topics: Topics,
    /// A note for the output (e.g. per-guest credentials unavailable).
    pub note: Option<String>,
    tap: broadcast::Sender<Tapped>,
    amqp: Option<AmqpState>,
}

/// The `host:port` of each address of `url` (one URL or a list).
fn host_ports(url: &str) -> Vec<String> {
    url.split(',')
        .map(|one| {
            let rest = one.split_once("://").map_or(one, |(_, r)| r);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            rest.split(['/', '?'])
                .next()
                .unwrap_or(rest)
                .trim()
                .to_owned()
        })
        .collect()
}

/// `rabbitmqctl`, aimed at `$SEALRPC_RABBITMQCTL_NODE` when set (e.g. `c1@localhost` for
/// the local cluster of `rpc-amqp/scripts/rabbitmq-cluster.sh`), else the default node.
fn rabbitmqctl() -> Rabbitmqctl {
    Rabbitmqctl {
        node: std::env::var("SEALRPC_RABBITMQCTL_NODE")
            .ok()
            .filter(|n| !n.is_empty()),
        ..Rabbitmqctl::default()
    }
}

impl Net {
    fn tapped(&self, t: Arc<dyn Transport>) -> Arc<dyn Transport> {
        Arc::new(TapTransport {
            inner: t,
            tap: self.tap.clone(),
        })
    }

    /// Connects (or creates) the network.
    pub async fn start(choice: &TransportChoice) -> Result<Self, BoxError> {
        let tap = broadcast::channel(4096).0;
        match choice {
            TransportChoice::Memory => {
                let t: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
                let control = Arc::new(TapTransport {
                    inner: Arc::clone(&t),
                    tap: tap.clone(),
                });
                Ok(Self {
                    control,
                    attacker: t,
                    topics: Topics::plain(),
                    note: None,
                    tap,
                    amqp: None,
                })
            }
            TransportChoice::Amqp(url) => Self::amqp(url, tap).await,
        }
    }

    async fn amqp(url: &str, tap: broadcast::Sender<Tapped>) -> Result<Self, BoxError> {
        let prefix = format!("trove{}", super::keys::new_tag());
        let topics = Topics::prefixed(&prefix);
        let opts = base_options(url);
        sealrpc_amqp::wait_for_broker(&opts.url, std::time::Duration::from_secs(30)).await?;
        let control = AmqpTransport::connect(opts.clone()).await?;
        control.declare_fanout(&topics.guestagent).await?;
        let attacker = AmqpTransport::connect(opts.clone()).await?;
        let policy = CredentialPolicy {
            control_exchange: opts.control_exchange.clone(),
            guest_topic: topics.guestagent.clone(),
            call_topics: vec![topics.conductor.clone()],
            notification_topics: vec![topics.notifications.clone()],
            ..CredentialPolicy::default()
        };
        // Can we administer the broker? (Per-guest users need rabbitmqctl.)
        let ctl = rabbitmqctl();
        let mut probe = tokio::process::Command::new(&ctl.program);
        if let Some(node) = &ctl.node {
            probe.args(["-n", node]);
        }
        let probe = probe.args(["-q", "list_users"]).output().await;
        let per_guest = matches!(&probe, Ok(out) if out.status.success());
        let note = (!per_guest).then(|| {
            "rabbitmqctl is not usable here: guests share the broker account of the control \
             plane (no per-guest broker credentials)"
                .to_owned()
        });
        let net = Self {
            control: Arc::new(control.clone()),
            attacker: Arc::new(attacker.clone()),
            topics,
            note,
            tap,
            amqp: Some(AmqpState {
                url: opts.url.clone(),
                prefix,
                host_ports: host_ports(&opts.url),
                policy,
                per_guest,
                operator: control.clone(),
                guests: Mutex::new(Vec::new()),
                connections: Mutex::new(vec![control, attacker]),
            }),
        };
        Ok(Self {
            control: net.tapped(Arc::clone(&net.control)),
            ..net
        })
    }

    /// True when guests get their own broker users.
    pub fn per_guest_credentials(&self) -> bool {
        self.amqp.as_ref().is_some_and(|a| a.per_guest)
    }

    /// The broker port the control plane's connection is on now (RabbitMQ only).
    pub fn control_port(&self) -> Option<u16> {
        let amqp = self.amqp.as_ref()?;
        let conns = amqp.connections.lock().unwrap_or_else(|p| p.into_inner());
        conns.first()?.connected_port()
    }

    /// How many times the control plane's connection was established (0 off RabbitMQ).
    pub fn control_generation(&self) -> u64 {
        let Some(amqp) = &self.amqp else { return 0 };
        let conns = amqp.connections.lock().unwrap_or_else(|p| p.into_inner());
        conns
            .first()
            .map_or(0, AmqpTransport::connection_generation)
    }

    /// True on RabbitMQ.
    pub fn is_amqp(&self) -> bool {
        self.amqp.is_some()
    }

    /// A wiretap: every message published from now on.
    pub fn wiretap(&self) -> broadcast::Receiver<Tapped> {
        self.tap.subscribe()
    }

    /// Connects guest `instance_id`: on RabbitMQ with its own generated broker user when
    /// `rabbitmqctl` is usable.
    pub async fn guest(&self, instance_id: &str) -> Result<GuestLink, BoxError> {
        let Some(amqp) = &self.amqp else {
            return Ok(GuestLink {
                transport: Arc::clone(&self.control),
                own_credentials: None,
                broker_user: None,
            });
        };
        if !amqp.per_guest {
            return Ok(GuestLink {
                transport: Arc::clone(&self.control),
                own_credentials: None,
                broker_user: None,
            });
        }
        let creds = GuestCredentials::for_guest(instance_id, &amqp.policy)?;
        rabbitmqctl().apply_async(&creds).await?;
        amqp.guests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(creds.clone());
        // The guest declares nothing: the operator provisions its queues.
        amqp.operator.provision_guest(&creds).await?;
        let urls: Vec<String> = amqp
            .host_ports
            .iter()
            .map(|hp| creds.url("amqp", hp))
            .collect();
        // Raw AMQP (the attacker's kit) speaks to one broker: the first.
        let url = urls.first().cloned().ok_or("no broker address")?;
        let opts = AmqpOptions {
            url: AmqpOptions::default().with_urls(urls).url,
            declare_exchanges: false,
            connection_name: Some(creds.user.clone()),
            ..base_options(&amqp.url)
        };
        let t = AmqpTransport::connect(opts).await?;
        amqp.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(t.clone());
        let raw: Arc<dyn Transport> = Arc::new(t);
        Ok(GuestLink {
            transport: self.tapped(Arc::clone(&raw)),
            own_credentials: Some(raw),
            broker_user: Some(GuestBrokerUser {
                credentials: creds,
                url,
            }),
        })
    }

    /// Closes broker connections and deletes the guests' broker users, queues and the
    /// guest topic's operator policy.
    pub async fn close(&self) {
        let Some(amqp) = &self.amqp else { return };
        let guests = std::mem::take(&mut *amqp.guests.lock().unwrap_or_else(|p| p.into_inner()));
        for c in &guests {
            if let Err(e) = amqp.operator.deprovision_guest(c).await {
                tracing::warn!(error = %e, "cannot delete a guest's queues");
            }
        }
        let conns =
            std::mem::take(&mut *amqp.connections.lock().unwrap_or_else(|p| p.into_inner()));
        for c in conns {
            c.close().await;
        }
        let deletes = guests.iter().map(|c| async move {
            if let Err(e) = rabbitmqctl().delete_user_async(&c.user).await {
                tracing::warn!(error = %e, "cannot delete a guest's broker user");
            }
        });
        futures_util::future::join_all(deletes).await;
        if let Some(c) = guests.first()
            && let Err(e) = rabbitmqctl()
                .clear_operator_policy_async(&c.vhost, &c.operator_policy.name)
                .await
        {
            tracing::warn!(error = %e, "cannot clear the guests' operator policy");
        }
        if amqp.per_guest && base_options(&amqp.url).durable {
            delete_durable(&amqp.prefix).await;
        }
    }
}

/// Cluster mode leaves durable queues and exchanges behind: deletes the run's (names
/// starting with `prefix-`) with `rabbitmqctl`, best effort.
async fn delete_durable(prefix: &str) {
    let ctl = rabbitmqctl();
    let run = |args: Vec<String>| {
        let mut c = tokio::process::Command::new(&ctl.program);
        if let Some(node) = &ctl.node {
            c.args(["-n", node]);
        }
        c.args(args);
        async move { c.output().await.ok() }
    };
    let mine = |out: Option<std::process::Output>| -> Vec<String> {
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|n| n.starts_with(&format!("{prefix}-")))
            .map(str::to_owned)
            .collect()
    };
    let list = |what: &str| {
        vec![
            "-q".into(),
            what.into(),
            "name".into(),
            "--no-table-headers".into(),
        ]
    };
    for q in mine(run(list("list_queues")).await) {
        run(vec!["-q".into(), "delete_queue".into(), q]).await;
    }
    for x in mine(run(list("list_exchanges")).await) {
        let expr = format!(
            "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"{x}\">>), false, <<\"trove_cluster\">>)."
        );
        run(vec!["-q".into(), "eval".into(), expr]).await;
    }
}
