//! The attacks, run live against a running cluster by guest A, which holds only its own
//! bundle (and, in the worst case, broker access that may publish anywhere).

use std::time::Duration;

use sealrpc_core::bytes::Bytes;
use sealrpc_core::notify::{Event, Priority};
use sealrpc_core::security::RejectReason;
use sealrpc_core::security::Security;
use sealrpc_core::security::{Outbound, Peer};
use sealrpc_core::transport::Address;
use sealrpc_core::transport::{Outgoing, TransportErrorKind};
use sealrpc_core::wire::{Header, Kind, MessageId, NotificationBody};
use sealrpc_core::{Client, Context, Error, Secret, Target};
use sealrpc_signers::GuestBundle;

use super::api::{CreateInstance, CreateUser, method};
use super::attack_kit::{Attack, contains, status, tamper_body, tamper_header};
use super::attacks::{Probe, Reason, Row, reply_text};
use super::cluster::Cluster;
use super::forge::{Forge, Forger};
use super::usage::{InstanceUsage, Usage, publisher_id};
use super::{BoxError, settle};

/// A `trove.instance.usage` notification about `victim`, in its name, sealed and signed
/// by `attacker`'s own keys.
fn usage_as(attacker: &Security, to: &Address, victim: &str) -> Result<Vec<u8>, BoxError> {
    let payload = sealrpc_core::payload::encode_value(
        &Usage {
            instance_id: victim.to_owned(),
            volume_gb: 1,
        },
        "payload",
    )?;
    let body = NotificationBody {
        event_type: InstanceUsage::EVENT_TYPE.to_owned(),
        publisher_id: publisher_id(victim),
        payload: payload.into_bytes(),
        ctx: Context::new().encode().into_bytes(),
    };
    Ok(attacker.seal_and_sign(Outbound {
        header: Header {
            id: MessageId::random(),
            kind: Kind::Notify,
            ts: sealrpc_core::security::now_ms(),
            ttl: None,
            src: String::new(),
            dst: to.dst(),
            corr: None,
            reply: None,
            seal: None,
        },
        body: body.into(),
        peer: Peer::ControlPlane,
        carries_secret: false,
    })?)
}

/// Runs every attack of guest `cluster.guests[0]` (A) against the cluster, B being
/// `cluster.guests[1]`. Ends with A rotated and then revoked: run it last.
pub async fn run(cluster: &Cluster) -> Result<Vec<Row>, BoxError> {
    let (a, b) = match cluster.guests.as_slice() {
        [a, b, ..] => (a, b),
        _ => return Err("the attack table needs at least two guests".into()),
    };
    // All A holds: its own bundle file.
    let bundle = GuestBundle::load(&a.bundle_path)?;
    let forger = Forger::from_bundle(&bundle)?;
    let client = Client::builder(cluster.net.attacker.clone(), a.security.clone())
        .default_timeout(Duration::from_secs(5))
        .build()
        .await?;
    let mut t = Attack {
        cluster,
        b,
        forger,
        client,
        rows: Vec::new(),
    };
    settle(&cluster.ledger).await;
    let (pa, pb) = (a.principal.clone(), b.principal.clone());
    let topics = cluster.net.topics.clone();
    let b_dst = t.b_queue().dst();
    let cond_dst = t.conductor().dst();

    // 1. Read B's traffic: a captured create_user call to B, password inside.
    let password = Secret::new(format!("pw-captured-{}", super::keys::new_tag()));
    let captured = t.capture_call_to_b(&password).await?;
    settle(&cluster.ledger).await;
    let probe = Probe::new(&a.security, &cluster.ledger);
    let served = |dst: &str| dst == b_dst || dst.ends_with(&a.id);
    let opened = a.security.admit(&captured, &served);
    let leak = contains(&captured, password.expose().as_bytes());
    let outcome = probe.outcome(None).await;
    let note = match (opened.is_ok(), leak) {
        (false, false) => "sealed under k2(B): A cannot open it; password not in the bytes",
        _ => "READABLE",
    };
    t.record(
        "read B's create_user call (captured on the wire)",
        Reason::Pipeline(RejectReason::WrongDirection),
        outcome,
        "-".into(),
        note,
    );

    // 2. Forge a control-plane call to B (A can sign only as itself, cannot seal to B).
    let forged = Forge {
        kind: Kind::Call,
        seal: false,
        ..Forge::cast(
            "control:taskmanager",
            &b_dst,
            method::CREATE_USER,
            &CreateUser {
                instance_id: b.id.clone(),
                user: "backdoor".into(),
                password: Secret::new("attacker-chosen".into()),
                databases: vec!["orders".into()],
            },
        )?
    };
    let bytes = t.forger.build(&forged)?;
    t.raw_row(
        "forge a control-plane call to B (create_user)",
        false,
        bytes,
        RejectReason::UnknownKey,
        "B pins only control-plane keys",
    )
    .await?;

    // 3. Impersonate B to the conductor, claiming src = B.
    let imp = Forge::cast(
        &pb,
        &cond_dst,
        method::UPDATE_STATUS,
        &status(&b.id, "SHUTDOWN"),
    )?;
    let bytes = t.forger.build(&imp)?;
    t.raw_row(
        "impersonate B: update_status(B), src=B",
        true,
        bytes,
        RejectReason::SourceMismatch,
        "signed by A, claims B",
    )
    .await?;

    // 3b. A usage notification in B's name: signed by A, publisher and payload B's.
    let probe = Probe::new(&cluster.conductor.security, &cluster.ledger);
    let usage = Address::Notification {
        topic: topics.notifications.clone(),
        priority: Priority::Info,
    };
    let in_bs_name = usage_as(&a.security, &usage, &b.id)?;
    t.inject(usage, in_bs_name).await?;
    let outcome = probe.outcome(None).await;
    t.record(
        "emit a usage notification as B",
        Reason::Pipeline(RejectReason::SourceMismatch),
        outcome,
        "-".into(),
        "publisher trove-guestagent.B, signed by A",
    );

    // 4. Impersonate B with an honest src: authenticated as A, refused by policy in code.
    let probe = Probe::new(&cluster.conductor.security, &cluster.ledger);
    let target = Target::new(topics.conductor.clone());
    let r: Result<(), Error> = t
        .client
        .call(
            &Context::new(),
            &target,
            method::UPDATE_STATUS,
            &status(&b.id, "SHUTDOWN"),
        )
        .await;
    let outcome = probe.outcome(Some(&r)).await;
    t.record(
        "impersonate B: update_status(B), src=A",
        Reason::Forbidden,
        outcome,
        reply_text(&r),
        "authorize: caller must be guest:B",
    );

    // 5. Replay the captured call to B.
    t.raw_row(
        "replay the captured call to B",
        false,
        captured.to_vec(),
        RejectReason::Replay,
        "same id, still fresh",
    )
    .await?;

    // 6, 7. Tamper with the captured call.
    t.raw_row(
        "tamper a header (extend the deadline)",
        false,
        tamper_header(&captured)?,
        RejectReason::BadSignature,
        "signature covers h",
    )
    .await?;
    t.raw_row(
        "tamper a body (flip one bit)",
        false,
        tamper_body(&captured)?,
        RejectReason::BadSignature,
        "signature covers b",
    )
    .await?;

    // 8. Downgrade: unsigned and unsealed, under Enforce.
    let plain = Forge {
        seal: false,
        sign: false,
        ..Forge::cast(
            &pa,
            &cond_dst,
            method::UPDATE_STATUS,
            &status(&a.id, "ACTIVE"),
        )?
    };
    let bytes = t.forger.build(&plain)?;
    t.raw_row(
        "send unsigned + unsealed (downgrade)",
        true,
        bytes,
        RejectReason::Unauthenticated,
        "conductor enforces",
    )
    .await?;

    // 9. A method a guest may not call.
    let probe = Probe::new(&cluster.taskmanager.security, &cluster.ledger);
    let tm = Target::new(topics.taskmanager.clone());
    let args = CreateInstance {
        instance_id: "evil".into(),
        datastore: "mysql".into(),
        database: "x".into(),
        user: "x".into(),
        password: Secret::new("attacker-chosen".into()),
    };
    let r: Result<(), Error> = t
        .client
        .call(&Context::new(), &tm, method::CREATE_INSTANCE, &args)
        .await;
    let outcome = probe.outcome(Some(&r)).await;
    t.record(
        "call taskmanager.create_instance",
        Reason::Forbidden,
        outcome,
        reply_text(&r),
        "control plane only",
    );

    // 10. Oversized envelope.
    let big = vec![0x42u8; cluster.conductor.security.limits().max_envelope + 1];
    t.raw_row(
        "send an oversized envelope (limit + 1 byte)",
        true,
        big,
        RejectReason::Oversized,
        "checked before decoding",
    )
    .await?;

    // 11. Garbage.
    let mut junk = vec![0u8; 512];
    sealrpc_core::rand::fill(&mut junk);
    t.raw_row(
        "send 512 random bytes",
        true,
        junk,
        RejectReason::Malformed,
        "not an envelope",
    )
    .await?;

    // 12. With A's own broker user (when per-guest credentials are in force).
    if let Some(own) = &a.link.own_credentials {
        let probe = Probe::new(&b.security, &cluster.ledger);
        let bytes = t.forger.build(&forged)?;
        let sent = own
            .send(Outgoing {
                to: t.b_queue(),
                payload: Bytes::from(bytes),
                reply_to: None,
                expiration: None,
                confirm: true,
            })
            .await;
        let (_, executed) = probe.outcome(Some(&Ok(()))).await;
        let refused = matches!(&sent, Err(e) if e.kind == TransportErrorKind::AccessRefused);
        let observed = refused.then_some(Reason::BrokerAccessRefused);
        t.record(
            "publish to B's queue with A's broker user",
            Reason::BrokerAccessRefused,
            (observed, executed),
            "-".into(),
            "no write on <ga>_ingress",
        );
    }

    // The red-team review's classes (policy class, kb unicast, reply without corr, ...).
    super::attack_review::run(&mut t).await?;

    // 13. Stale epoch: the operator rotated A's keys (grace 0); A keeps its old bundle.
    let table = cluster.operator.table();
    table.set_grace(Duration::ZERO);
    table.rotate_guest(&a.id)?;
    let own = Forge::cast(
        &pa,
        &cond_dst,
        method::UPDATE_STATUS,
        &status(&a.id, "ACTIVE"),
    )?;
    let bytes = t.forger.build(&own)?;
    t.raw_row(
        "use a stale epoch (rotated, past grace)",
        true,
        bytes,
        RejectReason::StaleKey,
        "A's epoch 1, current 2",
    )
    .await?;

    // 14. Revoked key: the operator revoked A.
    table.revoke(&a.id)?;
    let bytes = t.forger.build(&own)?;
    t.raw_row(
        "use a revoked key",
        true,
        bytes,
        RejectReason::RevokedKey,
        "instance revoked",
    )
    .await?;
    Ok(t.rows)
}
