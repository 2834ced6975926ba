//! Notifications over the real broker, with real keys: two pools of two listeners (each
//! pool all, a pool split), priority routing and filters, a guest's notifications
//! authenticated as `guest:<id>`, forged / replayed / unsigned ones refused and counted,
//! and a restricted guest broker user that can publish notifications but consume none.
//! Everything created (exchanges, queues, the broker user, its operator policy) is removed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::Arc;
use std::time::Duration;

use sealrpc_amqp::admin::Rabbitmqctl;
use sealrpc_amqp::{AmqpOptions, AmqpTransport, CredentialPolicy, GuestCredentials, topology};
use sealrpc_core::bytes::Bytes;
use sealrpc_core::notify::{Filter, ListenerHandle, Priority};
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::security::{Outbound, Peer, RejectReason, Security};
use sealrpc_core::transport::Transport;
use sealrpc_core::transport::{Address, Outgoing};
use sealrpc_core::wire::{Header, Kind, MessageId, NotificationBody};
use sealrpc_core::{Context, Node, Principal};
use sealrpc_signers::{ControlPlaneKeys, GuestKeys, MasterSecret, RotationTable};

const WAIT: Duration = Duration::from_secs(20);

fn uniq(prefix: &str) -> String {
    let mut b = [0u8; 4];
    sealrpc_core::rand::fill(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

fn opts(control_exchange: &str) -> AmqpOptions {
    AmqpOptions {
        control_exchange: control_exchange.to_owned(),
        ..AmqpOptions::from_env()
    }
}

/// Deletes the notification exchange of `control`, the control exchange and `queues`.
async fn cleanup(url: &str, control: &str, queues: &[String], exchanges: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for q in queues {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let mut all = vec![
        topology::notify_exchange(control),
        control.to_owned(),
        topology::reply_exchange(control),
    ];
    all.extend(exchanges.iter().cloned());
    for x in all {
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "cleanup".into()).await;
}

/// Runs `scenario` in a task bounded by 90 s, cleans up, then re-raises its panic.
async fn guarded<F: std::future::Future<Output = ()> + Send + 'static>(
    scenario: F,
    clean: impl std::future::Future<Output = ()>,
) {
    let result = tokio::spawn(tokio::time::timeout(Duration::from_secs(90), scenario)).await;
    clean.await;
    match result {
        Ok(outcome) => outcome.expect("scenario timed out"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("scenario task failed: {e}"),
    }
}

async fn counting(
    node: &Node,
    pool: &str,
    topic: &str,
    prios: &[Priority],
    filter: Filter,
) -> ListenerHandle {
    node.notification_listener(pool)
        .priorities(topic, prios)
        .filter(filter)
        .handler(|n| async move {
            // Every notification here comes from a guest, authenticated as itself.
            assert!(n.sender.as_ref().is_some_and(|p| p.guest_id().is_some()));
        })
        .start()
        .await
        .unwrap()
}

async fn until(what: &str, done: impl Fn() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn notify(publisher: &str, dst: &str) -> Outbound {
    Outbound {
        header: Header {
            id: MessageId::random(),
            kind: Kind::Notify,
            ts: sealrpc_core::security::now_ms(),
            ttl: None,
            src: String::new(),
            dst: dst.to_owned(),
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

async fn send(t: &AmqpTransport, to: &Address, sec: &Security, out: Outbound) -> Bytes {
    let bytes = Bytes::from(sec.seal_and_sign(out).unwrap());
    t.send(Outgoing {
        to: to.clone(),
        payload: bytes.clone(),
        reply_to: None,
        expiration: None,
        confirm: true,
    })
    .await
    .unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_priorities_filters_and_refusals_over_rabbitmq() {
    let control = uniq("ntf");
    let topic = format!("{control}-notifications");
    let url = AmqpOptions::from_env().url;
    let queues: Vec<String> = ["conductor", "taskmanager", "errors"]
        .iter()
        .flat_map(|pool| Priority::ALL.map(|p| topology::notify_queue(pool, &topic, p.as_str())))
        .collect();
    let scenario = {
        let (control, topic) = (control.clone(), topic.clone());
        async move { pools_scenario(&control, &topic).await }
    };
    guarded(scenario, cleanup(&url, &control, &queues, &[])).await;
}

async fn pools_scenario(control: &str, topic: &str) {
    let keys = ControlPlaneKeys::new(
        Arc::new(MasterSecret::generate().unwrap()),
        Arc::new(RotationTable::new()),
        "conductor",
    )
    .unwrap();
    let tm_keys = keys.for_service("taskmanager").unwrap();
    let ops_keys = keys.for_service("ops").unwrap();
    let guest = |id: &str| {
        GuestKeys::from_bundle(&keys.issue_guest_bundle(id).unwrap())
            .unwrap()
            .security()
            .build()
    };
    let (ga, gb) = (guest("a"), guest("b"));
    let t = AmqpTransport::connect(opts(control)).await.unwrap();
    let conductor = Node::new(t.clone(), keys.security());
    let taskmanager = Node::new(t.clone(), tm_keys.security());
    let ops = Node::new(t.clone(), ops_keys.security());
    let info = [Priority::Info];
    let c1 = counting(&conductor, "conductor", topic, &info, Filter::any()).await;
    let c2 = counting(&conductor, "conductor", topic, &info, Filter::any()).await;
    let t1 = counting(&taskmanager, "taskmanager", topic, &info, Filter::any()).await;
    let t2 = counting(&taskmanager, "taskmanager", topic, &info, Filter::any()).await;
    let errors = counting(
        &ops,
        "errors",
        topic,
        &[Priority::Error],
        Filter::event_type("trove.backup.*"),
    )
    .await;

    let notifier = Node::with_security(t.clone(), Arc::clone(&ga))
        .notifier("trove-guestagent.a")
        .topics([topic])
        .build()
        .unwrap();
    let ctx = Context::new();
    for _ in 0..8 {
        notifier
            .info(&ctx, "trove.instance.usage", &20u32)
            .await
            .unwrap();
    }
    notifier
        .error(&ctx, "trove.backup.fail", &1u32)
        .await
        .unwrap();
    notifier
        .error(&ctx, "trove.instance.fail", &2u32)
        .await
        .unwrap(); // filtered
    notifier
        .warn(&ctx, "trove.backup.slow", &3u32)
        .await
        .unwrap(); // no pool: not an error
    until("both pools", || {
        c1.handled() + c2.handled() == 8 && t1.handled() + t2.handled() == 8
    })
    .await;
    until("the error pool", || {
        errors.handled() + errors.filtered() == 2
    })
    .await;
    assert_eq!((errors.handled(), errors.filtered()), (1, 1));
    // Competing within a pool: RabbitMQ round-robins between a queue's consumers.
    assert!(
        c1.handled() > 0 && c2.handled() > 0,
        "{} / {}",
        c1.handled(),
        c2.handled()
    );
    assert!(t1.handled() > 0 && t2.handled() > 0);

    // Refusals, at the conductor pool (only one of its listeners sees each).
    let to = Address::Notification {
        topic: topic.to_owned(),
        priority: Priority::Info,
    };
    let dst = to.dst();
    send(&t, &to, &ga, notify("trove-guestagent.b", &dst)).await; // a claims b's publisher
    let honest = send(&t, &to, &gb, notify("trove-guestagent.b", &dst)).await;
    t.send(Outgoing {
        to: to.clone(),
        payload: honest,
        reply_to: None,
        expiration: None,
        confirm: true,
    })
    .await
    .unwrap(); // replayed
    let plain = SecurityConfig::insecure(Principal::parse("guest:b").unwrap()).build();
    send(&t, &to, &plain, notify("trove-guestagent.b", &dst)).await; // unsigned
    let seen = || c1.handled() + c2.handled() + c1.refused() + c2.refused();
    until("the refusals", || seen() == 8 + 4).await;
    let c = conductor.security().counters();
    assert_eq!(c.rejected_for(RejectReason::SourceMismatch), 1, "{c:?}");
    assert_eq!(c.rejected_for(RejectReason::Replay), 1, "{c:?}");
    assert_eq!(c.rejected_for(RejectReason::Unauthenticated), 1, "{c:?}");
    assert_eq!(
        c1.handled() + c2.handled(),
        9,
        "only b's honest one got through"
    );
    for l in [c1, c2, t1, t2, errors] {
        l.shutdown().await;
    }
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_user_publishes_notifications_but_cannot_consume_them() {
    let tag = uniq("ngu");
    let policy = CredentialPolicy {
        control_exchange: format!("{tag}-ctl"),
        guest_topic: format!("{tag}-ga"),
        call_topics: vec![format!("{tag}-cond")],
        notification_topics: vec![format!("{tag}-notifications")],
        user_prefix: format!("{tag}-guest-"),
        ..CredentialPolicy::default()
    };
    let guest_id = uniq("g");
    let creds = GuestCredentials::for_guest(&guest_id, &policy).unwrap();
    let ctl = Rabbitmqctl::default();
    ctl.apply_async(&creds).await.unwrap();
    let url = AmqpOptions::from_env().url;
    let mut queues: Vec<String> = creds.queues.iter().map(|q| q.name.clone()).collect();
    queues.extend(
        Priority::ALL.map(|p| {
            topology::notify_queue("conductor", &policy.notification_topics[0], p.as_str())
        }),
    );
    let exchanges = vec![
        topology::fanout_exchange(&policy.guest_topic),
        topology::ingress_exchange(&policy.call_topics[0]),
    ];
    let clean = async {
        ctl.delete_user_async(&creds.user).await.unwrap();
        ctl.clear_operator_policy_async(&policy.vhost, &creds.operator_policy.name)
            .await
            .unwrap();
        cleanup(&url, &policy.control_exchange, &queues, &exchanges).await;
    };
    let scenario = {
        let (policy, creds, guest_id) = (policy.clone(), creds.clone(), guest_id.clone());
        async move { guest_user_scenario(&policy, &creds, &guest_id).await }
    };
    guarded(scenario, clean).await;
}

async fn guest_user_scenario(policy: &CredentialPolicy, creds: &GuestCredentials, guest_id: &str) {
    let topic = &policy.notification_topics[0];
    let keys = ControlPlaneKeys::new(
        Arc::new(MasterSecret::generate().unwrap()),
        Arc::new(RotationTable::new()),
        "conductor",
    )
    .unwrap();
    let guest_sec = GuestKeys::from_bundle(&keys.issue_guest_bundle(guest_id).unwrap())
        .unwrap()
        .security();
    let control = AmqpTransport::connect(opts(&policy.control_exchange))
        .await
        .unwrap();
    control.provision_guest(creds).await.unwrap();
    let (guest_user, admin_user) = (creds.user.clone(), control.user().to_owned());
    let conductor = Node::new(control.clone(), keys.security());
    let listener = conductor
        .notification_listener("conductor")
        .target(topic.clone(), Priority::Info)
        .bind_broker_user(move |p, user| {
            if p.guest_id().is_some() {
                user == guest_user
            } else {
                user == admin_user
            }
        })
        .handler(|n| async move {
            assert_eq!(
                n.publisher_id.split_once('.').map(|(_, h)| h.to_owned()),
                n.sender
                    .as_ref()
                    .and_then(|p| p.guest_id().map(str::to_owned))
            );
        })
        .start()
        .await
        .unwrap();

    let guest_opts = AmqpOptions {
        url: creds.url("amqp", "127.0.0.1:5672"),
        control_exchange: policy.control_exchange.clone(),
        declare_exchanges: false,
        ..AmqpOptions::from_env()
    };
    let guest_t = AmqpTransport::connect(guest_opts.clone()).await.unwrap();
    let notifier = Node::new(guest_t.clone(), guest_sec)
        .notifier(format!("trove-guestagent.{guest_id}"))
        .topics([topic.clone()])
        .build()
        .unwrap();
    notifier
        .info(&Context::new(), "trove.instance.usage", &20u32)
        .await
        .unwrap();
    until("the guest's notification", || listener.handled() == 1).await;
    assert_eq!(conductor.security().counters().total_rejected(), 0);

    // The guest may not publish to another notification topic...
    let other = guest_t
        .send(Outgoing {
            to: Address::Notification {
                topic: format!("{topic}x"),
                priority: Priority::Info,
            },
            payload: Bytes::from_static(b"x"),
            reply_to: None,
            expiration: None,
            confirm: true,
        })
        .await;
    assert!(
        other.is_err(),
        "topic permission refuses another topic: {other:?}"
    );
    // ...nor listen to notifications: consuming a pool queue is refused...
    let conn = lapin::Connection::connect(
        &creds.url("amqp", "127.0.0.1:5672"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let q = topology::notify_queue("conductor", topic, "info");
    let consumed = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            lapin::options::BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await;
    assert!(consumed.is_err(), "a guest cannot consume {q}");
    let _ = conn.close(200, "done".into()).await;
    // ...nor start a listener of its own (it configures nothing).
    let own = Node::new(
        guest_t.clone(),
        SecurityConfig::insecure(Principal::parse(&format!("guest:{guest_id}")).unwrap()),
    )
    .notification_listener("spy")
    .target(topic.clone(), Priority::Info)
    .handler(|_| async {})
    .start()
    .await;
    assert!(own.is_err(), "a guest cannot declare a notification queue");
    listener.shutdown().await;
    guest_t.close().await;
    control.close().await;
}
