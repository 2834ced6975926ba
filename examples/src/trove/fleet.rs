//! The fleet phase (`trove_cluster --amqp --fleet N`): N guests on RabbitMQ, each with its
//! own bundle, its own generated broker user and its own connection, provisioned in bulk
//! through the management API ([`sealrpc_amqp::fleet`]); every guest called, one fanout
//! to all, and one full rekey over the bus under load. Cleans up every user, queue and
//! policy it made, whatever happens. The figures are in `docs/reliability.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use sealrpc_amqp::fleet::FleetProvisioner;
use sealrpc_amqp::management::ManagementApi;
use sealrpc_amqp::{AmqpOptions, AmqpTransport, CredentialPolicy, GuestCredentials};
use sealrpc_core::Client;
use sealrpc_core::transport::Transport;

use super::fleet_guest::{FleetGuest, GuestConnect, connect_guests, rss_kib};
use super::fleet_phases::{self, PhaseFigures};
use super::keys::{Operator, new_instance_id, new_tag};
use super::{BoxError, Out};

/// Sockets left to the other users of a shared broker.
const SOCKET_MARGIN: u64 = 64;

/// How to run the fleet phase.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Guests to provision (each gets a bundle and a broker user).
    pub guests: usize,
    /// The broker (the operator's account: it declares the fanout exchange).
    pub url: String,
    /// Trim each guest connection ([`AmqpOptions::lean`]); false measures the defaults.
    pub lean: bool,
    /// Rounds of one call to every guest.
    pub call_rounds: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
}

impl FleetOptions {
    /// `guests` guests on `url`, lean connections, two call rounds, 32 calls in flight.
    pub fn new(guests: usize, url: impl Into<String>) -> Self {
        Self {
            guests,
            url: url.into(),
            lean: true,
            call_rounds: 2,
            concurrency: 32,
        }
    }
}

/// What the fleet phase measured and made.
#[derive(Debug, Default)]
pub struct FleetReport {
    /// Guests provisioned (bundles and broker users).
    pub provisioned: usize,
    /// Guests connected (each its own connection).
    pub connected: usize,
    /// Why fewer connected than were provisioned, if so.
    pub cap_note: Option<String>,
    /// Issuing every bundle (keys).
    pub keys_time: Duration,
    /// Creating every broker user, permission, limit, queue and binding, and the policy.
    pub broker_time: Duration,
    /// RSS (KiB) with the control plane up, before any guest was provisioned.
    pub rss_control_kib: u64,
    /// RSS (KiB) after provisioning every guest (the control plane with N guests).
    pub rss_provisioned_kib: u64,
    /// RSS (KiB) with every guest connected and idle.
    pub rss_connected_kib: u64,
    /// RSS (KiB) after the calls, the fanout and the rekey (buffers touched by traffic).
    pub rss_after_kib: u64,
    /// The calls, fanout and rekey figures.
    pub phases: PhaseFigures,
    /// The broker users made (all deleted at the end).
    pub users: Vec<String>,
    /// The queues made (all deleted at the end).
    pub queues: Vec<String>,
    /// The operator policy set (vhost, name; cleared at the end).
    pub policy: Option<(String, String)>,
    /// Whether the cleanup reported no error.
    pub cleaned_up: bool,
}

impl FleetReport {
    /// Provisioning time per guest, keys and broker user together.
    pub fn per_guest_provisioning(&self) -> Duration {
        (self.keys_time + self.broker_time) / u32::try_from(self.provisioned.max(1)).unwrap_or(1)
    }

    /// RSS per idle guest connection (KiB), guest runtime included.
    pub fn per_connection_kib(&self) -> u64 {
        self.rss_connected_kib
            .saturating_sub(self.rss_provisioned_kib)
            / u64::try_from(self.connected.max(1)).unwrap_or(1)
    }

    /// True when every guest connected was called, reached by the fanout and rekeyed,
    /// with no failed call, and everything was cleaned up.
    pub fn success(&self) -> bool {
        let p = &self.phases;
        self.connected > 0
            && p.call_failures == 0
            && p.calls == (self.connected * p.rounds) as u64
            && p.fanout_reached == self.connected
            && p.rekey_installed == self.connected
            && p.rekey_failed == 0
            && p.load_failures == 0
            && self.cleaned_up
    }
}

/// What the run made, for the cleanup.
struct Made {
    provisioner: FleetProvisioner,
    /// The guest topic's fanout exchange, once declared.
    fanout: Option<String>,
    control: AmqpTransport,
    creds: Vec<GuestCredentials>,
    guests: Vec<FleetGuest>,
}

/// Runs the fleet phase and prints its figures to `out`.
pub async fn run(opts: &FleetOptions, out: Out<'_>) -> Result<FleetReport, BoxError> {
    let tag = format!("fleet{}", new_tag());
    let base = AmqpOptions::from_env().with_url(opts.url.clone());
    sealrpc_amqp::wait_for_broker(&base.url, Duration::from_secs(30)).await?;
    let control = AmqpTransport::connect(base.clone()).await?;
    let api = ManagementApi::from_env();
    let mut made = Made {
        provisioner: FleetProvisioner::new(api),
        fanout: None,
        control,
        creds: Vec::new(),
        guests: Vec::new(),
    };
    let mut report = FleetReport::default();
    let result = body(opts, &tag, &base, &mut made, &mut report, out).await;
    report.cleaned_up = cleanup(made, out).await;
    result.map(|()| report)
}

async fn body(
    opts: &FleetOptions,
    tag: &str,
    base: &AmqpOptions,
    made: &mut Made,
    report: &mut FleetReport,
    out: Out<'_>,
) -> Result<(), BoxError> {
    let topic = format!("{tag}-guestagent");
    let operator = Operator::init()?;
    let keys = operator.service("taskmanager")?;
    let t: Arc<dyn Transport> = Arc::new(made.control.clone());
    let client = Client::builder(t, keys.security().build()).build().await?;
    made.control.declare_fanout(&topic).await?;
    made.fanout = Some(sealrpc_amqp::topology::fanout_exchange(&topic));
    report.rss_control_kib = rss_kib();
    writeln!(
        out,
        "\n== fleet: {} guests on RabbitMQ, bulk provisioning ==",
        opts.guests
    )?;

    let ids: Vec<String> = (0..opts.guests).map(|_| new_instance_id()).collect();
    let started = Instant::now();
    let bundles: Vec<PathBuf> = operator.issue_guests(&ids)?;
    report.keys_time = started.elapsed();
    let policy = CredentialPolicy {
        control_exchange: base.control_exchange.clone(),
        guest_topic: topic.clone(),
        call_topics: vec![format!("{tag}-conductor")],
        user_prefix: format!("{tag}-g-"),
        ..CredentialPolicy::default()
    };
    let started = Instant::now();
    for id in &ids {
        made.creds.push(GuestCredentials::for_guest(id, &policy)?);
    }
    report.users = made.creds.iter().map(|c| c.user.clone()).collect();
    report.queues = made
        .creds
        .iter()
        .flat_map(|c| c.queues.iter().map(|q| q.name.clone()))
        .collect();
    report.policy = made
        .creds
        .first()
        .map(|c| (c.vhost.clone(), c.operator_policy.name.clone()));
    made.provisioner.provision(&made.creds).await?;
    report.broker_time = started.elapsed();
    report.provisioned = ids.len();
    report.rss_provisioned_kib = rss_kib();
    writeln!(
        out,
        "provisioned {} guests in {:.2?} (keys {:.2?}, broker users {:.2?}): {:.2?} per guest",
        ids.len(),
        report.keys_time + report.broker_time,
        report.keys_time,
        report.broker_time,
        report.per_guest_provisioning()
    )?;

    // As many connections as the broker's socket limit leaves room for.
    let (used, total) = made.provisioner.api().sockets().await?;
    let room = usize::try_from(total.saturating_sub(used).saturating_sub(SOCKET_MARGIN))
        .unwrap_or(usize::MAX);
    let fit = ids.len().min(room);
    if fit < ids.len() {
        report.cap_note = Some(format!(
            "the broker allows {total} sockets (its file descriptor limit), {used} are in use \
             by others: {fit} guest connections fit (keeping {SOCKET_MARGIN} spare)"
        ));
    }
    if let Some(note) = &report.cap_note {
        writeln!(out, "{note}")?;
    }
    let how = GuestConnect {
        host_port: host_port(&base.url),
        base: base.clone(),
        lean: opts.lean,
        topic: topic.clone(),
    };
    let fanouts = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    made.guests = connect_guests(&ids[..fit], &bundles, &made.creds, &how, &fanouts).await?;
    report.connected = made.guests.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.rss_connected_kib = rss_kib();
    writeln!(
        out,
        "connected {} guests in {:.2?} ({} options): RSS {} MiB -> {} MiB, {} KiB per idle guest connection",
        report.connected,
        started.elapsed(),
        if opts.lean { "lean" } else { "default" },
        report.rss_provisioned_kib / 1024,
        report.rss_connected_kib / 1024,
        report.per_connection_kib()
    )?;
    writeln!(
        out,
        "control plane RSS: {} MiB before provisioning, {} MiB with {} guests provisioned",
        report.rss_control_kib / 1024,
        report.rss_provisioned_kib / 1024,
        report.provisioned
    )?;
    report.phases = fleet_phases::run(
        &client,
        &keys,
        &operator,
        &made.guests,
        &topic,
        opts,
        &fanouts,
        out,
    )
    .await?;
    report.rss_after_kib = rss_kib();
    let after = report
        .rss_after_kib
        .saturating_sub(report.rss_provisioned_kib)
        / u64::try_from(report.connected.max(1)).unwrap_or(1);
    writeln!(
        out,
        "RSS after the traffic and the rekey: {} MiB, {after} KiB per guest connection",
        report.rss_after_kib / 1024
    )?;
    Ok(())
}

/// The `host:port` of the first broker of `url`.
fn host_port(url: &str) -> String {
    let one = url.split(',').next().unwrap_or(url);
    let rest = one.split_once("://").map_or(one, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?'])
        .next()
        .unwrap_or(rest)
        .trim()
        .to_owned()
}

/// Closes every guest and deletes every user, queue and policy made; true when no step
/// failed.
async fn cleanup(made: Made, out: Out<'_>) -> bool {
    let started = Instant::now();
    for g in made.guests {
        g.shutdown().await;
    }
    let mut ok = true;
    if let Err(e) = made.provisioner.deprovision(&made.creds).await {
        tracing::warn!(error = %e, "fleet cleanup: cannot remove the guests");
        ok = false;
    }
    if let Err(e) = made.provisioner.clear_policies(&made.creds).await {
        tracing::warn!(error = %e, "fleet cleanup: cannot clear the operator policy");
        ok = false;
    }
    if let Some(x) = &made.fanout
        && let Err(e) = made.provisioner.api().delete_exchange("/", x).await
    {
        tracing::warn!(error = %e, "fleet cleanup: cannot delete the fanout exchange");
        ok = false;
    }
    made.control.close().await;
    let _ = writeln!(
        out,
        "cleanup: {} users, {} queues, the operator policy removed in {:.2?}{}",
        made.creds.len(),
        made.creds.len() * 2,
        started.elapsed(),
        if ok {
            ""
        } else {
            " (with errors, see the log)"
        }
    );
    ok
}
