//! Notifications on the in-memory transport: pools (each pool all, within a pool split),
//! priority routing, filters, the authenticated sender, and refusals (forged publisher or
//! source, replay, unsigned under Enforce, a cast to a notification address).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sealrpc_core::notify::{Filter, IncomingNotification, ListenerHandle, Priority};
use sealrpc_core::security::Security;
use sealrpc_core::security::{KeyError, KeyResolver, Outbound, Peer, RejectReason};
use sealrpc_core::transport::Transport;
use sealrpc_core::transport::{Address, Outgoing};
use sealrpc_core::wire::{Header, KeyId, Kind, MessageId, NotificationBody, RequestBody, Role};
use sealrpc_core::{Context, MemoryTransport, Node, Principal, Version};

use common::{ToySeal, ToySigner, secure, secure_config};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
struct Usage {
    instance_id: String,
    volume_gb: u32,
}

sealrpc_core::notification! {
    /// A guest's usage report.
    struct InstanceUsage = "trove.instance.usage"(Usage), priority = Info;
}

type Seen = Arc<Mutex<Vec<IncomingNotification>>>;

async fn listener(
    node: &Node,
    pool: &str,
    filter: Filter,
    prios: &[Priority],
) -> (ListenerHandle, Seen) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let handle = node
        .notification_listener(pool)
        .priorities("notifications", prios)
        .filter(filter)
        .handler(move |n| {
            let sink = Arc::clone(&sink);
            async move { sink.lock().unwrap().push(n) }
        })
        .start()
        .await
        .unwrap();
    (handle, seen)
}

async fn seen_all(handles: &[&ListenerHandle], n: u64) {
    let each = async {
        loop {
            let total: u64 = handles
                .iter()
                .map(|h| h.handled() + h.filtered() + h.refused())
                .sum();
            if total >= n {
                return;
            }
            for h in handles {
                // Wake on any change; the sum is re-read each round.
                let _ =
                    tokio::time::timeout(Duration::from_millis(20), h.wait_seen(u64::MAX)).await;
            }
        }
    };
    tokio::time::timeout(WAIT, each)
        .await
        .expect("notifications did not arrive");
}

fn node(bus: &MemoryTransport, sec: Arc<Security>) -> Node {
    Node::with_security(bus.clone(), sec)
}

#[tokio::test]
async fn every_pool_gets_all_and_a_pool_splits_them() {
    let bus = MemoryTransport::new();
    let conductor = node(&bus, secure("control:conductor"));
    let taskmanager = node(&bus, secure("control:taskmanager"));
    let info = [Priority::Info];
    let (a1, s_a1) = listener(&conductor, "conductor", Filter::any(), &info).await;
    let (a2, s_a2) = listener(&conductor, "conductor", Filter::any(), &info).await;
    let (b1, s_b1) = listener(&taskmanager, "taskmanager", Filter::any(), &info).await;
    let (b2, s_b2) = listener(&taskmanager, "taskmanager", Filter::any(), &info).await;

    let guest = node(&bus, secure("guest:g"));
    let notifier = guest.notifier("trove-guestagent.g").build().unwrap();
    let usage = Usage {
        instance_id: "g".into(),
        volume_gb: 20,
    };
    for _ in 0..10 {
        notifier
            .emit::<InstanceUsage>(&Context::new(), &usage)
            .await
            .unwrap();
    }
    seen_all(&[&a1, &a2, &b1, &b2], 20).await;

    let count = |s: &Seen| s.lock().unwrap().len();
    assert_eq!(
        count(&s_a1) + count(&s_a2),
        10,
        "pool conductor gets every notification"
    );
    assert_eq!(
        count(&s_b1) + count(&s_b2),
        10,
        "pool taskmanager gets every notification"
    );
    for s in [&s_a1, &s_a2, &s_b1, &s_b2] {
        assert!(count(s) > 0, "the listeners of a pool share the work");
    }
    let n = s_a1.lock().unwrap()[0].clone();
    assert_eq!(
        n.sender,
        Principal::parse("guest:g"),
        "authenticated as the guest"
    );
    assert!(n.signed && n.sealed);
    assert_eq!(n.ctx.principal(), Principal::parse("guest:g").as_ref());
    assert!(n.is::<InstanceUsage>());
    assert_eq!(
        (n.topic.as_str(), n.priority),
        ("notifications", Priority::Info)
    );
    assert_eq!(n.payload::<Usage>().unwrap(), usage);
    assert_eq!(conductor.security().counters().total_rejected(), 0);
    for h in [a1, a2, b1, b2] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn priorities_route_and_filters_select() {
    let bus = MemoryTransport::new();
    let cp = node(&bus, secure("control:conductor"));
    let billing = node(&bus, secure("control:billing"));
    let (errors, s_err) = listener(
        &cp,
        "errors",
        Filter::any(),
        &[Priority::Error, Priority::Critical],
    )
    .await;
    let (usage, s_use) = listener(
        &billing,
        "billing",
        Filter::event_type("trove.instance.*").and_publisher_id("trove-guestagent.*"),
        &Priority::ALL,
    )
    .await;
    let tm = node(&bus, secure("control:taskmanager"));
    let n = tm.notifier("taskmanager.host1").build().unwrap();
    let ctx = Context::new();
    n.info(&ctx, "trove.instance.create", &1).await.unwrap(); // billing: wrong publisher
    n.error(&ctx, "trove.instance.fail", &2).await.unwrap(); // errors only (billing filters)
    n.critical(&ctx, "trove.backup.fail", &3).await.unwrap(); // errors only
    n.sample(&ctx, "trove.instance.metric", &4).await.unwrap(); // billing filters it
    let g = node(&bus, secure("guest:g"))
        .notifier("trove-guestagent.g")
        .build()
        .unwrap();
    g.info(&ctx, "trove.instance.usage", &5).await.unwrap(); // billing
    g.warn(&ctx, "trove.backup.slow", &6).await.unwrap(); // nobody: billing filters it
    seen_all(&[&errors, &usage], 8).await;

    let payloads = |s: &Seen| -> Vec<i32> {
        s.lock()
            .unwrap()
            .iter()
            .map(|n| n.payload().unwrap())
            .collect()
    };
    assert_eq!(payloads(&s_err), vec![2, 3]);
    assert_eq!(payloads(&s_use), vec![5]);
    assert_eq!((usage.filtered(), errors.filtered()), (5, 0));
    // Another pool on the same node (one replay guard) would see every copy as a replay.
    let refused = cp
        .notification_listener("other")
        .target("notifications", Priority::Error)
        .handler(|_| async {})
        .start()
        .await;
    assert!(refused.is_err(), "a second pool on one node is refused");
    errors.shutdown().await;
    usage.shutdown().await;
    let other = listener(&cp, "other", Filter::any(), &[Priority::Error]).await;
    other.0.shutdown().await;
}

/// Guest `g`'s keys, but claiming to be `claim` in the header (a forged `src`).
#[derive(Debug)]
struct Impostor {
    real: Principal,
    claim: Principal,
}

impl KeyResolver for Impostor {
    fn me(&self) -> Principal {
        self.claim.clone()
    }
    fn seal_key_for(&self, _peer: &Peer) -> Option<KeyId> {
        Some(KeyId::new(Role::K3, self.real.clone(), 1))
    }
    fn check_key(&self, _key_id: &KeyId) -> Result<(), KeyError> {
        Ok(())
    }
}

fn notify_outbound(publisher: &str) -> Outbound {
    Outbound {
        header: Header {
            id: MessageId::random(),
            kind: Kind::Notify,
            ts: sealrpc_core::security::now_ms(),
            ttl: None,
            src: String::new(),
            dst: "notifications.info".into(),
            corr: None,
            reply: None,
            seal: None,
        },
        body: NotificationBody {
            event_type: "trove.instance.usage".into(),
            publisher_id: publisher.into(),
            payload: Bytes::from_static(&[0x01]),
            ctx: Bytes::from_static(&[0x80]),
        }
        .into(),
        peer: Peer::ControlPlane,
        carries_secret: false,
    }
}

async fn send_raw(bus: &MemoryTransport, to: Address, envelope: Vec<u8>) {
    bus.send(Outgoing {
        to,
        payload: Bytes::from(envelope),
        reply_to: None,
        expiration: None,
        confirm: true,
    })
    .await
    .unwrap();
}

fn info_address() -> Address {
    Address::Notification {
        topic: "notifications".into(),
        priority: Priority::Info,
    }
}

#[tokio::test]
async fn forged_replayed_unsigned_and_misdirected_are_refused() {
    let bus = MemoryTransport::new();
    let cp = node(&bus, secure("control:conductor"));
    let (l, seen) = listener(&cp, "conductor", Filter::any(), &[Priority::Info]).await;

    // Guest a names guest b's publisher id: refused as a source mismatch.
    let a = secure("guest:a");
    send_raw(
        &bus,
        info_address(),
        a.seal_and_sign(notify_outbound("trove-guestagent.b"))
            .unwrap(),
    )
    .await;
    // Guest a's keys, header claiming guest:b.
    let real = Principal::parse("guest:a").unwrap();
    let claim = Principal::parse("guest:b").unwrap();
    let impostor = sealrpc_core::security::SecurityConfig::new(Arc::new(Impostor {
        real: real.clone(),
        claim,
    }))
    .signer(Arc::new(ToySigner(KeyId::new(Role::Sig, real, 1))))
    .sealer(Arc::new(ToySeal))
    .build();
    send_raw(
        &bus,
        info_address(),
        impostor
            .seal_and_sign(notify_outbound("trove-guestagent.b"))
            .unwrap(),
    )
    .await;
    // Unsigned and unsealed, under Enforce.
    let plain =
        sealrpc_core::security::SecurityConfig::insecure(Principal::parse("guest:a").unwrap())
            .build();
    send_raw(
        &bus,
        info_address(),
        plain
            .seal_and_sign(notify_outbound("trove-guestagent.a"))
            .unwrap(),
    )
    .await;
    // A cast that reaches a notification address is not a notification.
    let mut cast = notify_outbound("x");
    cast.header.kind = Kind::Cast;
    cast.body = RequestBody {
        method: "usage".into(),
        version: Version::new(1, 0),
        namespace: None,
        args: Bytes::from_static(&[0x80]),
        ctx: Bytes::from_static(&[0x80]),
        monitor: None,
    }
    .into();
    send_raw(&bus, info_address(), a.seal_and_sign(cast).unwrap()).await;
    // An honest one, then its replay.
    let honest = a
        .seal_and_sign(notify_outbound("trove-guestagent.a"))
        .unwrap();
    send_raw(&bus, info_address(), honest.clone()).await;
    send_raw(&bus, info_address(), honest).await;
    seen_all(&[&l], 6).await;

    let c = cp.security().counters();
    assert_eq!(c.rejected_for(RejectReason::SourceMismatch), 2, "{c:?}");
    assert_eq!(c.rejected_for(RejectReason::Unauthenticated), 1, "{c:?}");
    assert_eq!(c.rejected_for(RejectReason::Misdirected), 1, "{c:?}");
    assert_eq!(c.rejected_for(RejectReason::Replay), 1, "{c:?}");
    assert_eq!((l.handled(), l.refused()), (1, 5));
    assert_eq!(seen.lock().unwrap()[0].publisher_id, "trove-guestagent.a");
    l.shutdown().await;
}

#[tokio::test]
async fn a_guest_notifier_refuses_another_guests_publisher_id() {
    let bus = MemoryTransport::new();
    let g = node(&bus, secure("guest:a"));
    assert!(g.notifier("trove-guestagent.b").build().is_err());
    assert!(g.notifier("trove-guestagent.a").build().is_ok());
    // No pool listens: not an error (like a fanout).
    let n = g.notifier("guest:a").build().unwrap();
    n.info(&Context::new(), "trove.instance.usage", &())
        .await
        .unwrap();
    let _ = secure_config("control:x");
}

#[tokio::test]
async fn a_panicking_handler_does_not_stop_the_listener() {
    let bus = MemoryTransport::new();
    let cp = node(&bus, secure("control:conductor"));
    let l = cp
        .notification_listener("conductor")
        .target("notifications", Priority::Info)
        .handler(|n| async move {
            if n.event_type == "boom" {
                panic!("handler bug");
            }
        })
        .start()
        .await
        .unwrap();
    let n = node(&bus, secure("control:api"))
        .notifier("api.h1")
        .build()
        .unwrap();
    n.info(&Context::new(), "boom", &()).await.unwrap();
    n.info(&Context::new(), "fine", &()).await.unwrap();
    tokio::time::timeout(WAIT, l.wait_handled(2)).await.unwrap();
    l.shutdown().await;
}

#[tokio::test]
async fn an_rpc_server_never_takes_a_notification() {
    // A server named `info` on topic `notifications` serves `notifications.info`, the
    // address of the info notifications: the kind keeps them apart.
    let bus = MemoryTransport::new();
    let cp = node(&bus, secure("control:conductor"));
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let server = cp
        .server()
        .topic("notifications")
        .server_name("info")
        .handler(
            "trove.instance.usage",
            move |_ctx, _a: serde_json::Value| {
                let flag = Arc::clone(&flag);
                async move {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok::<_, sealrpc_core::HandlerError>(())
                }
            },
        )
        .start()
        .await
        .unwrap();
    // The notifier sends to the pools only (none here); a raw copy to the server's address:
    let g = secure("guest:g");
    let to = Address::Server {
        topic: "notifications".into(),
        server: "info".into(),
    };
    send_raw(
        &bus,
        to,
        g.seal_and_sign(notify_outbound("guest:g")).unwrap(),
    )
    .await;
    let refused = async {
        while cp
            .security()
            .counters()
            .rejected_for(RejectReason::Misdirected)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, refused).await.unwrap();
    assert!(!ran.load(std::sync::atomic::Ordering::Relaxed));
    server.shutdown().await;
}
