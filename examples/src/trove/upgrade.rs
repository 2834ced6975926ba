//! The rolling upgrade: half the guests run an old release (policy Off: unsigned), the
//! control plane is Permissive; the old guests are upgraded one by one in random order
//! while calls flow; once the count of unsigned messages the control plane accepted has
//! stopped growing, the control plane flips to Enforce. Then a "newer" guest release sends
//! envelopes with unknown keys at every level, and they are accepted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::{ClassPolicy, Policy};
use sealrpc_core::transport::{Address, Outgoing};
use sealrpc_core::{Context, Target};
use sealrpc_signers::GuestBundle;

use super::api::{GetStatus, GuestReply, method};
use super::cluster::{Cluster, ClusterConfig};
use super::forge::{Forge, Forger};
use super::net::TransportChoice;
use super::services::CONDUCTOR;
use super::{BoxError, Out, settle, wait_until};

/// One step of the upgrade.
#[derive(Debug, Clone)]
pub struct Step {
    /// What happened.
    pub label: String,
    /// Unsigned messages the control plane accepted, in total, after the step.
    pub unsigned_total: u64,
}

/// What the upgrade did.
#[derive(Debug, Clone)]
pub struct UpgradeReport {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// RPCs made during the upgrade.
    pub calls: u64,
    /// RPCs that failed (must be 0).
    pub failures: u64,
    /// Unsigned messages accepted by the control plane during the last round before the
    /// flip (must be 0: nothing old is left).
    pub unsigned_last_round: u64,
    /// Rejections anywhere in the cluster during the upgrade (must be 0).
    pub rejections: u64,
    /// The newer sender's envelope was accepted and executed.
    pub newer_sender_accepted: bool,
}

/// One round of traffic: the task manager calls every guest, every guest casts a heartbeat.
async fn round(cluster: &Cluster, seq: u64) {
    let topics = &cluster.net.topics;
    let tm = &cluster.taskmanager.client;
    for g in &cluster.guests {
        let target = Target::guest(topics.guestagent.clone(), g.id.clone());
        let args = GetStatus {
            instance_id: g.id.clone(),
            payload: vec![7; 64],
        };
        let r = tm
            .call::<_, GuestReply>(&Context::new(), &target, method::GET_STATUS, &args)
            .await;
        if let Err(e) = &r {
            tracing::warn!(error = %e, instance = %g.id, "call failed during the upgrade");
        }
        cluster.ledger.rpc(r.is_ok());
        g.heartbeat(topics, &cluster.ledger, seq).await;
    }
}

/// A round, then waits until the conductor has handled every heartbeat sent so far and
/// the cluster is quiet, so that the unsigned count read next includes all of them.
async fn settled_round(cluster: &Cluster, seq: u64) {
    round(cluster, seq).await;
    let ledger = &cluster.ledger;
    let all_handled = || ledger.count(CONDUCTOR, method::HEARTBEAT) >= ledger.heartbeats_sent();
    if !wait_until(Duration::from_secs(10), all_handled).await {
        tracing::warn!("some heartbeats were not handled within 10 s");
    }
    settle(ledger).await;
}

fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let mut b = [0u8; 8];
        sealrpc_core::rand::fill(&mut b);
        let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Runs the rolling upgrade on a fresh cluster of `guests` guests.
pub async fn run(
    guests: usize,
    transport: &TransportChoice,
    out: Out<'_>,
) -> Result<UpgradeReport, BoxError> {
    let guests = guests.max(2);
    let config = ClusterConfig {
        control_policy: Policy::uniform(ClassPolicy::permissive()),
        old_guests: guests / 2,
        ..ClusterConfig::new(guests, transport.clone())
    };
    let cluster = Cluster::start(&config).await?;
    let result = upgrade(&cluster, config.old_guests, out).await;
    cluster.shutdown().await;
    result
}

fn step(steps: &mut Vec<Step>, out: &mut dyn std::io::Write, total: u64, label: String) {
    let _ = writeln!(
        out,
        "  {label:<56} unsigned accepted by the control plane: {total}"
    );
    let _ = out.flush();
    steps.push(Step {
        label,
        unsigned_total: total,
    });
}

async fn upgrade(cluster: &Cluster, old: usize, out: Out<'_>) -> Result<UpgradeReport, BoxError> {
    let unsigned = || cluster.control_counters().accepted_unauthenticated;
    let mut steps = Vec::new();
    settled_round(cluster, 0).await;
    let new = cluster.guests.len() - old;
    let label = format!("start: {old} old (Off) + {new} new guests, control Permissive");
    step(&mut steps, out, unsigned(), label);

    // Traffic flows all along, in the background.
    let stop = AtomicBool::new(false);
    let background = async {
        let mut seq = 1;
        while !stop.load(Ordering::Relaxed) {
            round(cluster, seq).await;
            seq += 1;
        }
    };
    let enforce = Policy::default();
    let upgrades = async {
        let mut order: Vec<usize> = (0..old).collect();
        shuffle(&mut order);
        for (k, i) in order.iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let g = &cluster.guests[*i];
            g.security.set_policy(enforce);
            let label = format!("upgraded guest {} ({}/{old}) to Enforce", g.id, k + 1);
            step(&mut steps, out, unsigned(), label);
        }
        stop.store(true, Ordering::Relaxed);
    };
    tokio::join!(background, upgrades);

    settled_round(cluster, 1_000).await;
    let before = unsigned();
    settled_round(cluster, 1_001).await;
    let unsigned_last_round = unsigned() - before;
    let label = format!("one more round of calls: +{unsigned_last_round} unsigned");
    step(&mut steps, out, unsigned(), label);
    for s in cluster.control_plane() {
        s.set_policy(enforce);
    }
    settled_round(cluster, 2_000).await;
    let label = "control plane flipped to Enforce, one more round".to_owned();
    step(&mut steps, out, unsigned(), label);

    let newer_sender_accepted = newer_sender(cluster).await?;
    let _ = writeln!(
        out,
        "  newer guest release (unknown keys at every level + an unknown signature algorithm): {}",
        if newer_sender_accepted {
            "accepted and executed"
        } else {
            "NOT accepted"
        }
    );
    let rejections = cluster.rejections().values().sum();
    Ok(UpgradeReport {
        steps,
        calls: cluster.ledger.calls(),
        failures: cluster.ledger.failures(),
        unsigned_last_round,
        rejections,
        newer_sender_accepted,
    })
}

/// The last guest, running a newer release, sends an `update_status` whose envelope has
/// keys this release does not know at every level. True when the conductor executed it.
async fn newer_sender(cluster: &Cluster) -> Result<bool, BoxError> {
    let g = cluster.guests.last().ok_or("no guest")?;
    let forger = Forger::from_bundle(&GuestBundle::load(&g.bundle_path)?)?;
    let args = super::api::UpdateStatus {
        instance_id: g.id.clone(),
        status: "ACTIVE-v2".into(),
    };
    let conductor = Address::Topic(cluster.net.topics.conductor.clone());
    let f = Forge {
        future: true,
        ..Forge::cast(&g.principal, &conductor.dst(), method::UPDATE_STATUS, &args)?
    };
    let before = cluster.ledger.count(CONDUCTOR, method::UPDATE_STATUS);
    g.link
        .transport
        .send(Outgoing {
            to: conductor,
            payload: Bytes::from(forger.build(&f)?),
            reply_to: None,
            expiration: None,
            confirm: true,
        })
        .await?;
    let ledger = &cluster.ledger;
    Ok(wait_until(Duration::from_secs(5), || {
        ledger.count(CONDUCTOR, method::UPDATE_STATUS) > before
            && ledger.status(&g.id).as_deref() == Some("ACTIVE-v2")
    })
    .await)
}
