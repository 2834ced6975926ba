//! Per-guest broker users, proven against the real broker: a guest can deliver only to
//! the queues of the services it may call and to the reply inbox of a call it answers,
//! whatever route it tries (default exchange, dead-lettering, alternate exchanges,
//! exchange-to-exchange bindings, `CC`/`BCC` headers, `amq.*` exchanges, declares), and
//! legitimate traffic (calls, casts, fanout, replies both ways) still flows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod guest_setup;
mod probe;

use std::time::Duration;

use guest_setup::{Fleet, policy, uniq};
use probe::{Probe, Victims, drain_attacks, headers_with};
use sealrpc_amqp::credentials::GuestLimits;
use sealrpc_amqp::{AmqpTransport, topology};
use sealrpc_core::transport::{Address, ListenSpec, Outgoing, Transport, TransportErrorKind};

fn msg(to: Address, payload: impl Into<sealrpc_core::bytes::Bytes>) -> Outgoing {
    Outgoing {
        to,
        payload: payload.into(),
        reply_to: None,
        expiration: None,
        confirm: false,
    }
}

async fn recv(
    sub: &mut sealrpc_core::transport::Subscription,
    secs: u64,
) -> Option<sealrpc_core::transport::Delivery> {
    tokio::time::timeout(Duration::from_secs(secs), sub.recv())
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_reaches_only_what_it_may_call_and_replies_it_owes() {
    let tag = uniq("iso");
    let fleet = Fleet::start(
        policy(&tag, GuestLimits::default()),
        &["aaaa1111", "bbbb2222"],
    )
    .await;
    let tm = format!("{tag}-tm");
    let old = format!("{tag}-old");
    let fleet = std::sync::Arc::new(fleet);
    let task = {
        let (fleet, tm, old) = (fleet.clone(), tm.clone(), old.clone());
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(90), scenario(&fleet, &tm, &old)).await
        })
    };
    // A panic in the scenario still lets everything below be cleaned up.
    let outcome = guest_setup::unwind_after(task.await);
    fleet
        .cleanup(
            &[tm.clone(), format!("{tm}.t1"), format!("{old}.g")],
            &[topology::ingress_exchange(&tm)],
        )
        .await;
    let violations = outcome().expect("scenario timed out");
    assert!(
        violations.is_empty(),
        "{} violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// Runs everything and returns the violations found (empty = confined and working).
async fn scenario(fleet: &Fleet, tm: &str, old: &str) -> Vec<String> {
    let p = &fleet.policy;
    let (ca, cb) = (&fleet.guests[0], &fleet.guests[1]);
    let cond = p.call_topics[0].clone();
    let op = &fleet.operator;
    // The control plane: the conductor (callable by guests) answers; the task manager
    // topic is not callable by guests.
    let mut conductor = op
        .listen(&ListenSpec {
            topic: cond.clone(),
            server: "c1".into(),
            shared: true,
            fanout: false,
        })
        .await
        .unwrap();
    let tm_sub = op
        .listen(&ListenSpec {
            topic: tm.to_owned(),
            server: "t1".into(),
            shared: true,
            fanout: false,
        })
        .await
        .unwrap();
    let (cond_tx, mut cond_seen) = tokio::sync::mpsc::channel(64);
    let responder = op.clone();
    tokio::spawn(async move {
        while let Some(mut d) = conductor.recv().await {
            let who = d.broker_user.clone().unwrap_or_default();
            if let Some(r) = d.reply_to.clone() {
                let _ = responder
                    .send(msg(Address::Reply(r), format!("hello {who}")))
                    .await;
            }
            let _ = cond_tx.send(d.payload.clone()).await;
            d.ack().await;
        }
    });
    let a = AmqpTransport::connect(fleet.guest_opts(0)).await.unwrap();
    let b = AmqpTransport::connect(fleet.guest_opts(1)).await.unwrap();
    let a_sub = a.listen(&ca.listen).await.unwrap();
    let b_sub = b.listen(&cb.listen).await.unwrap();
    let mut victims = Victims {
        subs: vec![
            ("B", b_sub),
            ("task manager", tm_sub),
            ("A's own queue", a_sub),
        ],
    };

    let mut probe = Probe::new(fleet.raw(0).await);
    attacks(&mut probe, fleet, tm).await;
    probe.violations.extend(drain_attacks(&mut victims).await);
    // The conductor may get what A sends it: that is what A may call.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), cond_seen.recv()).await
    {
    }

    let mut v = probe.violations;
    v.extend(legitimate(fleet, &a, &mut victims, (&cond, tm), old).await);
    a.close().await;
    b.close().await;
    v
}

/// Every route class a guest could use to reach B, the task manager or its own queue.
async fn attacks(probe: &mut Probe, fleet: &Fleet, tm: &str) {
    let p = &fleet.policy;
    let (ca, cb) = (&fleet.guests[0], &fleet.guests[1]);
    let ctl = p.control_exchange.as_str();
    let cond = p.call_topics[0].as_str();
    let ingress = topology::ingress_exchange(cond);
    let reply_x = topology::reply_exchange(ctl);
    let fanout_x = topology::fanout_exchange(&p.guest_topic);
    let (a_q, a_fq) = (ca.queues[0].name.as_str(), ca.queues[1].name.as_str());
    let (b_q, b_fq) = (cb.queues[0].name.as_str(), cb.queues[1].name.as_str());
    let token = format!("{}{}", topology::REPLY_TOKEN_PREFIX, "ab".repeat(12));
    let others = [b_q, tm, a_q];
    let unroutable = format!("{cond}.nobody");

    // Publishing: each either refused (403) or delivered nowhere it must not go.
    let cc = |keys: &[&str]| headers_with("CC", keys);
    let routes: Vec<(&str, String, &str, Option<_>)> = vec![
        ("default exchange to B", String::new(), b_q, None),
        (
            "default exchange to the task manager",
            String::new(),
            tm,
            None,
        ),
        (
            "default exchange into its own queue",
            String::new(),
            a_q,
            None,
        ),
        ("control exchange with B's key", ctl.into(), b_q, None),
        ("control exchange into its own queue", ctl.into(), a_q, None),
        (
            "control exchange, CC to B",
            ctl.into(),
            cond,
            Some(cc(&others)),
        ),
        (
            "control exchange, BCC to B",
            ctl.into(),
            cond,
            Some(headers_with("BCC", &others)),
        ),
        ("ingress with B's key", ingress.clone(), b_q, None),
        ("ingress, CC to B", ingress.clone(), cond, Some(cc(&others))),
        (
            "ingress, BCC to B",
            ingress.clone(),
            cond,
            Some(headers_with("BCC", &others)),
        ),
        (
            "ingress, unroutable key",
            ingress.clone(),
            &unroutable,
            None,
        ),
        ("reply exchange with B's key", reply_x.clone(), b_q, None),
        (
            "reply exchange, CC to B",
            reply_x.clone(),
            &token,
            Some(cc(&others)),
        ),
        (
            "the task manager's ingress",
            topology::ingress_exchange(tm),
            tm,
            None,
        ),
        ("guest fanout exchange", fanout_x.clone(), "", None),
        ("amq.direct", "amq.direct".into(), b_q, None),
        ("amq.topic", "amq.topic".into(), b_q, None),
        ("amq.fanout", "amq.fanout".into(), "", None),
        ("amq.headers", "amq.headers".into(), "", None),
        ("amq.match", "amq.match".into(), "", None),
    ];
    for (what, exchange, key, headers) in routes {
        probe.publish(what, &exchange, key, headers).await;
    }

    // Declaring and binding: every attempt is refused with 403.
    let dlx = probe::dead_letter_args(ctl, b_q);
    probe
        .declare_queue(
            "delete its own fanout queue (to re-declare it)",
            a_fq,
            None,
            true,
        )
        .await;
    probe
        .declare_queue(
            "its own queue, dead-lettering to B",
            a_fq,
            Some(dlx.clone()),
            false,
        )
        .await;
    probe
        .publish("into its dead-lettering queue", "", a_fq, None)
        .await;
    probe
        .declare_queue(
            "a server-named queue, dead-lettering to B",
            "",
            Some(dlx.clone()),
            false,
        )
        .await;
    probe
        .declare_queue(
            "a durable queue to park messages in",
            &format!("{a_q}-park"),
            None,
            false,
        )
        .await;
    probe
        .declare_exchange("an exchange with the control exchange as alternate", ctl)
        .await;
    probe
        .bind_exchange("control exchange <- guest fanout exchange", ctl, &fanout_x)
        .await;
    probe
        .bind_exchange("ingress <- amq.fanout", &ingress, "amq.fanout")
        .await;
    probe
        .bind_exchange("reply exchange <- control exchange", &reply_x, ctl)
        .await;
    probe
        .bind_queue(
            "own queue to the control exchange with B's key",
            a_q,
            ctl,
            b_q,
        )
        .await;
    probe
        .bind_queue("own queue to the control exchange with #", a_q, ctl, "#")
        .await;
    probe
        .bind_queue("own queue to amq.fanout", a_q, "amq.fanout", "")
        .await;
    probe
        .bind_queue("B's queue to the control exchange", b_q, ctl, a_q)
        .await;
    probe.read_queue("consume B's queue", b_q).await;
    probe.read_queue("consume B's fanout queue", b_fq).await;
    probe
        .read_queue("basic.get from the task manager's queue", tm)
        .await;
    probe.delete_queue("delete B's queue", b_q).await;
    probe.forged_user_id(b_q).await;
    probe.passive_check(b_q).await;
}

/// What must keep working: operator -> guest, fanout, guest calls and casts, replies to
/// the guest by direct reply-to, the guest's replies through the reply exchange, and an
/// old-style guest answering a new control plane by direct reply-to.
async fn legitimate(
    fleet: &Fleet,
    a: &AmqpTransport,
    victims: &mut Victims,
    (cond, tm): (&str, &str),
    old: &str,
) -> Vec<String> {
    let mut v = Vec::new();
    let (ca, cb) = (&fleet.guests[0], &fleet.guests[1]);
    let op = &fleet.operator;
    let topic = fleet.policy.guest_topic.clone();
    let mut fail = |what: &str, ok: bool| {
        if !ok {
            v.push(format!("legitimate traffic broken: {what}"));
        }
    };
    let to_a = Address::Server {
        topic: topic.clone(),
        server: ca.listen.server.clone(),
    };
    let r = op.send(msg(to_a.clone(), "task for A")).await;
    fail(&format!("operator -> A: {r:?}"), r.is_ok());
    let d = recv(&mut victims.subs[2].1, 5).await;
    fail(
        "A gets its task",
        d.as_ref().is_some_and(|d| &d.payload[..] == b"task for A"),
    );
    if let Some(mut d) = d {
        d.ack().await;
    }
    let r = op
        .send(msg(Address::Fanout(topic.clone()), "everyone"))
        .await;
    fail(&format!("fanout: {r:?}"), r.is_ok());
    for i in [0, 2] {
        let d = recv(&mut victims.subs[i].1, 5).await;
        fail(
            "fanout reaches both guests",
            d.is_some_and(|d| &d.payload[..] == b"everyone"),
        );
    }
    // A calls the conductor (Topic) and gets the reply; casts to one server.
    let mut inbox = a.reply_inbox().await.unwrap();
    let mut call = msg(Address::Topic(cond.to_owned()), "status");
    call.reply_to = Some(inbox.route.clone());
    let r = a.send(call).await;
    fail(&format!("A calls the conductor: {r:?}"), r.is_ok());
    let reply = recv(&mut inbox.deliveries, 5).await;
    let want = format!("hello {}", ca.user);
    fail(
        "the conductor's reply reaches A",
        reply.is_some_and(|r| r.payload == want.as_bytes()),
    );
    let to_c1 = Address::Server {
        topic: cond.to_owned(),
        server: "c1".into(),
    };
    let r = a.send(msg(to_c1, "cast")).await;
    fail(&format!("A casts to conductor.c1: {r:?}"), r.is_ok());
    // Through the transport A cannot address B, the task manager, or serve B's name.
    let to_b = Address::Server {
        topic: topic.clone(),
        server: cb.listen.server.clone(),
    };
    for (what, to) in [
        ("B", to_b),
        ("the task manager", Address::Topic(tm.to_owned())),
    ] {
        let e = a.send(msg(to, "x")).await;
        fail(
            &format!("A's send to {what} is AccessRefused: {e:?}"),
            e.as_ref()
                .is_err_and(|e| e.kind == TransportErrorKind::AccessRefused),
        );
    }
    let e = a.listen(&cb.listen).await;
    fail(
        "A cannot listen as B",
        e.is_err_and(|e| e.kind == TransportErrorKind::AccessRefused),
    );
    // The control plane calls A; A answers through the reply exchange.
    let mut op_inbox = op.reply_inbox().await.unwrap();
    let mut call = msg(to_a, "ping");
    call.reply_to = Some(op_inbox.route.clone());
    let r = op.send(call).await;
    fail(&format!("operator calls A: {r:?}"), r.is_ok());
    if let Some(mut d) = recv(&mut victims.subs[2].1, 5).await {
        fail(
            "A's delivery names the caller's reply token",
            d.reply_to.as_deref() == Some(op_inbox.route.as_str()),
        );
        let r = a
            .send(msg(
                Address::Reply(d.reply_to.clone().unwrap_or_default()),
                "pong",
            ))
            .await;
        fail(&format!("A replies: {r:?}"), r.is_ok());
        d.ack().await;
        let got = recv(&mut op_inbox.deliveries, 5).await;
        fail(
            "A's reply reaches the operator, attributed to A",
            got.is_some_and(|g| {
                &g.payload[..] == b"pong" && g.broker_user == Some(ca.user.clone())
            }),
        );
    } else {
        fail("A gets the operator's call", false);
    }
    // An old-style guest (reads only the AMQP reply_to) still answers by direct reply-to.
    let ok = probe::old_guest_answers(op, &mut op_inbox, &fleet.policy.control_exchange, old).await;
    fail("an old-style guest's direct reply-to answer arrives", ok);
    v
}
