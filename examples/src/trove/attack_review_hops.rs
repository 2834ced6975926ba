//! Review rows that span several hops: a context secret that must stop at the task
//! manager, and a replay guard that a guest must not be able to fill for everyone.

use std::time::Duration;

use sealrpc_core::security::{AdmittedBody, RejectReason, RestartRule};
use sealrpc_core::transport::Address;
use sealrpc_core::{Context, Secret, Target};
use sealrpc_signers::GuestKeys;

use super::BoxError;
use super::api::{CreateInstance, Heartbeat, method};
use super::attack_kit::{Attack, contains};
use super::attacks::{Probe, Reason};
use super::forge::Forge;
use super::services::CONDUCTOR;
use super::wait_until;

/// The API gives the task manager a context secret, then has it provision A: A reads
/// every call it gets and must find no secret in their contexts.
pub(crate) async fn secret_in_child_context(t: &mut Attack<'_>) -> Result<(), BoxError> {
    let cluster = t.cluster;
    let a = &cluster.guests[0];
    let token = Secret::new(format!("pw-ctx-{}", super::keys::new_tag()));
    let mut ctx = Context::new();
    ctx.insert_secret("admin_token", &token)?;
    let mut tap = cluster.net.wiretap();
    let args = CreateInstance {
        instance_id: a.id.clone(),
        datastore: "mysql".into(),
        database: "orders".into(),
        user: "app".into(),
        password: Secret::new(format!("pw-{}", super::keys::new_tag())),
    };
    let tm = Target::new(cluster.net.topics.taskmanager.clone());
    cluster
        .api
        .client
        .cast(&ctx, &tm, method::CREATE_INSTANCE, &args)
        .await?;
    let mut provisioned = cluster.provisioned.lock().await;
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(p) = provisioned.recv().await {
            if p.instance_id == a.id {
                return p.result.is_ok();
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    drop(provisioned);

    // A's view: its own bundle opens every call the task manager sent it.
    let keys = GuestKeys::from_bundle(&sealrpc_signers::GuestBundle::load(&a.bundle_path)?)?;
    // An offline reader of captured traffic: no restart rule (it admitted nothing before).
    let reader = keys.security().restart_rule(RestartRule::Off).build();
    let to_a = Address::Server {
        topic: cluster.net.topics.guestagent.clone(),
        server: a.id.clone(),
    };
    let a_dst = to_a.dst();
    let (mut opened, mut leaked) = (0, false);
    while let Ok((to, bytes)) = tap.try_recv() {
        if to != to_a {
            continue;
        }
        if let Ok(m) = reader.admit(&bytes, &|d: &str| d == a_dst)
            && let AdmittedBody::Request(body) = &m.body
        {
            opened += 1;
            let ctx = Context::decode(&body.ctx);
            leaked |= ctx.secret_names().next().is_some()
                || contains(&body.ctx, token.expose().as_bytes());
        }
    }
    let withheld = done && opened > 0 && !leaked;
    // The provisioning's trailing casts (status updates) finish before the next row.
    cluster
        .ledger
        .settle(Duration::from_millis(250), Duration::from_secs(5))
        .await;
    t.record(
        "read the API's context secret in a child context",
        Reason::SecretWithheld,
        (withheld.then_some(Reason::SecretWithheld), leaked),
        "-".into(),
        "child() starts without secrets; A opened its calls",
    );
    Ok(())
}

/// A fills its own replay quota at the conductor with ids stamped in the future; the
/// overflow is refused, and B and the control plane are still admitted.
pub(crate) async fn fill_the_replay_guard(t: &mut Attack<'_>) -> Result<(), BoxError> {
    let cluster = t.cluster;
    let a = &cluster.guests[0];
    let conductor = &cluster.conductor.security;
    let quota = conductor.replay_guard().config().per_guest;
    // The provisioning above ends with status casts to the conductor: let them land.
    super::settle(&cluster.ledger).await;
    let probe = Probe::new(conductor, &cluster.ledger);
    let before = conductor.counters();
    // A method nobody serves: admitted ids take room, and no handler runs.
    let fill = Forge {
        stamped_ahead_ms: 50_000,
        ..Forge::cast(
            &a.principal,
            &t.conductor().dst(),
            "x_fill_replay_guard",
            &Heartbeat {
                instance_id: a.id.clone(),
                seq: 0,
            },
        )?
    };
    for _ in 0..quota + 16 {
        let bytes = t.forger.build(&fill)?;
        t.inject(t.conductor(), bytes).await?;
    }
    let full =
        |s: &sealrpc_core::security::CounterSnapshot| s.rejected_for(RejectReason::ReplayGuardFull);
    wait_until(Duration::from_secs(10), || {
        full(&conductor.counters()) >= full(&before) + 16
    })
    .await;
    let (observed, executed) = probe.outcome(None).await;

    // Everyone else is still admitted: B's heartbeat and a control-plane one.
    let target = Target::new(cluster.net.topics.conductor.clone());
    let beats = cluster.ledger.count(CONDUCTOR, method::HEARTBEAT);
    for client in [&t.b.client, &cluster.api.client] {
        let h = Heartbeat {
            instance_id: t.b.id.clone(),
            seq: 1,
        };
        client
            .cast(&Context::new(), &target, method::HEARTBEAT, &h)
            .await?;
    }
    let others_ok = wait_until(Duration::from_secs(5), || {
        cluster.ledger.count(CONDUCTOR, method::HEARTBEAT) >= beats + 2
    })
    .await;
    t.record(
        "fill the replay guard (ids stamped +50 s)",
        Reason::Pipeline(RejectReason::ReplayGuardFull),
        (observed.filter(|_| others_ok), executed),
        "-".into(),
        "only A's quota is full: B and control admitted",
    );
    Ok(())
}
