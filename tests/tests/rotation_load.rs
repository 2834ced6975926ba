//! Key rotation and revocation under load (signed+sealed, real keys).
//!
//! While guests and control-plane clients call each other (and guests cast to the
//! conductor): one guest's epoch is rotated and its new bundle delivered over the existing
//! sealed channel (`install_bundle`, the bundle a `Secret` argument); the control plane's
//! epoch is rotated; then another guest is revoked. Asserts: zero failed calls for
//! everyone but the revoked guest; from the revocation on, every call to or from the
//! revoked guest is refused and none of its casts reaches the application; the conductor
//! counts `revoked_key` rejections; after the grace window is closed, the rotated guest and
//! the control plane work on their new epochs alone.
//!
//! Knobs: `SEALRPC_ROTATION_CALLS` (calls per worker), `SEALRPC_ROTATION_SECS` (time
//! limit). On the memory transport and on RabbitMQ (one connection per guest).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::security::{KeyError, RejectReason};
use sealrpc_core::transport::Transport;
use sealrpc_core::{Context, Error, MemoryTransport, Target};
use sealrpc_tests::cluster::{Seq, rotate_guest_over_channel};
use sealrpc_tests::load::{Cluster, LoadSpec, OpKind, Outcome, RETIRED_OPS, report};
use sealrpc_tests::metrics::knob;

fn spec() -> LoadSpec {
    LoadSpec {
        guests: 8,
        cp_clients: 2,
        conductors: 2,
        calls_per_worker: knob("SEALRPC_ROTATION_CALLS", 120),
        concurrency: 2,
        time_limit: Duration::from_secs(knob("SEALRPC_ROTATION_SECS", 40)),
        timeout: Duration::from_secs(3),
        casts: true,
    }
}

async fn wait_progress(cluster: &Cluster, at: u64) {
    while cluster.progress.load(Ordering::Relaxed) < at {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A short name for an error, for the tally.
fn kind(e: &Error) -> String {
    match e {
        Error::Rejected { code, .. } => format!("Rejected({code})"),
        Error::Security(k) => format!("Security({k:?})"),
        other => format!("{:?}", other.code()),
    }
}

async fn scenario(label: &str, cp: Arc<dyn Transport>, guest_transports: Vec<Arc<dyn Transport>>) {
    let spec = spec();
    let cluster = Arc::new(Cluster::start(&spec, &cp, &guest_transports).await);
    let rotated = cluster.guests[0].id.clone();
    let revoked = cluster.guests[1].id.clone();
    // Ops of the whole run (calls plus casts), to trigger events part-way through.
    let total = (spec.guests * 2 + spec.cp_clients) as u64 * spec.calls_per_worker;

    let t0 = Instant::now();
    let driver = {
        let (c, s) = (Arc::clone(&cluster), spec.clone());
        tokio::spawn(async move { c.drive(&s).await })
    };

    // 1. Mid-load: rotate a guest, deliver its bundle over the sealed channel.
    wait_progress(&cluster, total / 5).await;
    let epoch = rotate_guest_over_channel(
        &cluster.control,
        &cluster.api_clients[0],
        &cluster.guest_topic,
        &rotated,
    )
    .await
    .expect("bundle delivered over the existing sealed channel");
    assert_eq!(epoch, 2);
    // 2. Rotate the control plane (guests pinned the next epoch's keys in advance).
    assert_eq!(cluster.control.table.rotate_control(), 2);
    // 3. Revoke another guest.
    wait_progress(&cluster, total * 2 / 5).await;
    cluster.control.table.revoke(&revoked).unwrap();
    let revoked_at = Instant::now();
    cluster.retired.lock().unwrap().insert(revoked.clone());

    let outcomes: Vec<Outcome> = driver.await.unwrap();
    let elapsed = t0.elapsed();
    let others: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.guest.as_deref() != Some(revoked.as_str()))
        .collect();
    let after: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.guest.as_deref() == Some(revoked.as_str()) && o.started > revoked_at)
        .collect();
    report(label, &outcomes, elapsed);
    let mut tally: BTreeMap<(String, String), usize> = BTreeMap::new();
    for o in &after {
        let k = o.error.as_ref().map_or("Ok".to_owned(), kind);
        *tally.entry((format!("{:?}", o.kind), k)).or_default() += 1;
    }
    let cond = cluster.cond_security.counters();
    println!(
        "[{label}] rotated {rotated} (epoch {}), control epoch {}; revoked {revoked}: after revocation {tally:?}; conductor rejections {:?}",
        cluster.guests[0].keys.epoch(),
        cluster.control.table.control_epoch(),
        cond.rejected,
    );

    // Everyone else: zero failures, through both rotations and the revocation.
    let failed: Vec<String> = others
        .iter()
        .filter_map(|o| {
            o.error
                .as_ref()
                .map(|e| format!("{:?} {:?}: {e}", o.kind, o.guest))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        others
            .iter()
            .any(|o| o.guest.as_deref() == Some(rotated.as_str()) && o.started > revoked_at),
        "the rotated guest kept working after its rotation"
    );
    // The revoked guest: every call started after the revocation is refused. The control
    // plane refuses to send to it at once, typed (`Revoked`), never in clear...
    let to_revoked = after.iter().filter(|o| o.kind == OpKind::ApiToGuest);
    for o in to_revoked {
        assert!(
            matches!(o.error, Some(Error::Security(KeyError::Revoked))),
            "call to the revoked guest: {:?}",
            o.error
        );
    }
    // ...and its own calls get no answer: the conductor rejects them (counted below) and
    // cannot seal a reply to it, so they end at their timeout.
    let own: Vec<&&Outcome> = after
        .iter()
        .filter(|o| o.kind == OpKind::GuestToConductor)
        .collect();
    assert!(
        !own.is_empty() && own.len() <= RETIRED_OPS * spec.concurrency,
        "{}",
        own.len()
    );
    for o in own {
        assert!(matches!(o.error, Some(Error::Timeout(_))), "{:?}", o.error);
    }
    // ...its calls to the control plane are rejected as revoked...
    assert!(cond.rejected_for(RejectReason::RevokedKey) > 0, "{cond:?}");
    // ...and none of its casts sent after the revocation reached the application.
    let casts_after: Vec<u64> = after
        .iter()
        .filter(|o| o.kind == OpKind::GuestCast)
        .map(|o| o.seq)
        .collect();
    let delivered_late: Vec<u64> = {
        let casts = cluster.state.casts.lock().unwrap();
        casts_after
            .iter()
            .copied()
            .filter(|s| casts.contains_key(&(revoked.clone(), *s)))
            .collect()
    };
    assert!(
        delivered_late.is_empty(),
        "casts of a revoked guest delivered: {delivered_late:?}"
    );

    // Close the grace window: only the new epochs are accepted now, and they work.
    cluster.control.table.set_grace(Duration::ZERO);
    let ctx = Context::new();
    for g in [&cluster.guests[0], &cluster.guests[2]] {
        let r: u64 = cluster.api_clients[1]
            .call(
                &ctx,
                &Target::guest(&cluster.guest_topic, g.id.as_str()),
                "ping",
                &Seq {
                    from: "api".into(),
                    seq: 9,
                },
            )
            .await
            .unwrap();
        assert_eq!(r, 9);
        let r: u64 = g
            .client
            .call(
                &ctx,
                &Target::new(&cluster.cond_topic),
                "report",
                &Seq {
                    from: g.id.clone(),
                    seq: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(r, 10);
    }
    assert_eq!(cluster.control.table.guest_epoch(&rotated), Some(2));
    assert_eq!(cluster.guests[0].keys.epoch(), 2);
    assert_eq!(cluster.in_flight(), 0);
    let cluster = Arc::into_inner(cluster).expect("driver done");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_revoke_under_load_memory() {
    let t: Arc<dyn Transport> = Arc::new(MemoryTransport::with_capacity(256));
    scenario("rotation/memory", Arc::clone(&t), vec![t]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_revoke_under_load_amqp() {
    let opts = AmqpOptions::from_env();
    sealrpc_amqp::wait_for_broker(&opts.url, Duration::from_secs(30))
        .await
        .unwrap();
    let connect = || async {
        Arc::new(
            AmqpTransport::connect(AmqpOptions::from_env())
                .await
                .unwrap(),
        ) as Arc<dyn Transport>
    };
    let cp = connect().await;
    let mut guests = Vec::new();
    for _ in 0..spec().guests {
        guests.push(connect().await);
    }
    scenario("rotation/amqp", cp, guests).await;
}
