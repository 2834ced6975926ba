//! Failover on the local three-node cluster (`scripts/rabbitmq-cluster.sh`, started here
//! if it is not up; the test fails if it cannot start). A server (listener on quorum
//! topic and server queues, plus a fanout queue) and a client (reply inbox) connect to
//! different nodes; the client's node is killed (`kill -9` of its beam.smp), then the
//! server's node is stopped (`stop_app`). Each time the same transports, subscriptions
//! and inbox carry on from another node: calls round-trip again, the fanout reaches the
//! listener again (its exclusive queue re-declared on the new node), nothing rebuilt.
//! A second test freezes a node (SIGSTOP): only missed heartbeats tell its client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{msg, spec, uniq};
use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::transport::{Address, Delivery, Outgoing, ReplyInbox, Transport};
use tokio::sync::mpsc;

fn options(exchange: &str, first: usize) -> AmqpOptions {
    AmqpOptions {
        control_exchange: exchange.to_owned(),
        durable: true,
        quorum_queues: true,
        heartbeat: Duration::from_secs(2),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_secs(1),
        reconnect_wait: Duration::from_secs(5),
        confirm_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        ..AmqpOptions::default().with_urls(cluster::urls_from(first))
    }
}

/// Echoes every call back to its reply-to and reports every payload it got on `seen`.
async fn echo(t: AmqpTransport, mut sub: mpsc::Receiver<Delivery>, seen: mpsc::Sender<Bytes>) {
    while let Some(mut d) = sub.recv().await {
        let payload = d.payload.clone();
        if let Some(r) = d.reply_to.take() {
            let _ = t.send(msg(Address::Reply(r), payload.clone())).await;
        }
        if let Some(a) = d.acker.take() {
            a.ack().await;
        }
        let _ = seen.send(payload).await;
    }
}

/// One call and its reply within 2 s; false on any failure.
async fn round_trip(t: &AmqpTransport, inbox: &mut ReplyInbox, topic: &str, n: u64) -> bool {
    let body = Bytes::from(format!("call-{n}"));
    let m = Outgoing {
        reply_to: Some(inbox.route.clone()),
        confirm: true,
        ..msg(Address::Topic(topic.to_owned()), body.clone())
    };
    if t.send(m).await.is_err() {
        return false;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(d)) = tokio::time::timeout_at(deadline, inbox.deliveries.recv()).await {
        if d.payload == body {
            return true;
        }
    }
    false
}

/// Retries round trips until one succeeds (bounded); the time from `since` to it.
async fn until_round_trip(
    t: &AmqpTransport,
    inbox: &mut ReplyInbox,
    topic: &str,
    since: Instant,
) -> Duration {
    for n in 0..100 {
        if round_trip(t, inbox, topic, n).await {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no call round-tripped within 100 attempts after the node loss");
}

/// Publishes fanouts until the listener sees one (its fanout queue is back).
async fn until_fanout(t: &AmqpTransport, seen: &mut mpsc::Receiver<Bytes>, topic: &str) {
    for n in 0..100 {
        let body = Bytes::from(format!("fan-{n}"));
        let _ = t
            .send(msg(Address::Fanout(topic.to_owned()), body.clone()))
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(p)) = tokio::time::timeout_at(deadline, seen.recv()).await {
            if p == body {
                return;
            }
        }
    }
    panic!("the fanout never reached the listener again");
}

/// Deletes the test's quorum queues and exchanges from whichever node answers.
async fn cleanup(queues: &[String], exchanges: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    for url in cluster::urls() {
        let Ok(conn) =
            lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
        else {
            continue;
        };
        for q in queues {
            let ch = conn.create_channel().await.unwrap();
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for x in exchanges {
            let ch = conn.create_channel().await.unwrap();
            let _ = ch
                .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = conn.close(200, "cleanup".into()).await;
        return;
    }
}

/// The tests of this binary never fault the cluster at the same time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_inbox_and_fanout_follow_the_cluster() {
    let _serial = SERIAL.lock().await;
    cluster::ensure();
    let heal = cluster::Heal;
    let run = uniq("cluster");
    let _purge = cluster::Purge(run.clone());
    let exchange = format!("{run}-ctl");
    let topic = format!("{run}-t");
    let server = AmqpTransport::connect(options(&exchange, 2)).await.unwrap();
    let client = AmqpTransport::connect(options(&exchange, 1)).await.unwrap();
    assert_eq!(server.connected_port(), Some(cluster::port(2)));
    assert_eq!(client.connected_port(), Some(cluster::port(1)));

    let sub = server
        .listen(&spec(&topic, "s1", true, true))
        .await
        .unwrap();
    let (seen_tx, mut seen) = mpsc::channel(1024);
    tokio::spawn(echo(server.clone(), sub, seen_tx));
    let mut inbox = client.reply_inbox().await.unwrap();
    assert!(
        round_trip(&client, &mut inbox, &topic, 0).await,
        "a call before any fault"
    );
    until_fanout(&client, &mut seen, &topic).await;
    // The topic and server queues are quorum queues (only those have a leader).
    let leader = cluster::leader(&topic, Duration::from_secs(10));
    println!("[cluster] quorum queue {topic}: leader c{leader}");

    // 1. The client's node crashes: the client reconnects elsewhere, its inbox with it.
    let t0 = Instant::now();
    cluster::kill(1);
    let took = until_round_trip(&client, &mut inbox, &topic, t0).await;
    println!("[cluster] kill -9 c1 (client's node): first call round-tripped after {took:?}");
    assert_ne!(client.connected_port(), Some(cluster::port(1)));
    assert_eq!(client.connection_generation(), 2);
    cluster::restart(1);

    // 2. The server's node stops its app: the listener (quorum queues and fanout queue)
    // comes back on another node, into the same subscription.
    let t0 = Instant::now();
    cluster::stop_app(2);
    let took = until_round_trip(&client, &mut inbox, &topic, t0).await;
    println!("[cluster] stop_app c2 (server's node): first call round-tripped after {took:?}");
    until_fanout(&client, &mut seen, &topic).await;
    assert_ne!(server.connected_port(), Some(cluster::port(2)));
    assert_eq!(server.connection_generation(), 2);
    cluster::start_app(2);

    server.close().await;
    client.close().await;
    cleanup(
        &[topic.clone(), format!("{topic}.s1")],
        &[exchange, format!("{topic}_fanout")],
    )
    .await;
    drop(heal);
}

/// A node that stops answering without closing its sockets (a frozen VM, a partition):
/// the client notices by missed heartbeats (about two intervals) and moves to another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_left_after_missed_heartbeats() {
    let _serial = SERIAL.lock().await;
    cluster::ensure();
    let heal = cluster::Heal;
    let run = uniq("frozen");
    let _purge = cluster::Purge(run.clone());
    let t = AmqpTransport::connect(options(&format!("{run}-ctl"), 3))
        .await
        .unwrap();
    assert_eq!(t.connected_port(), Some(cluster::port(3)));
    let t0 = Instant::now();
    cluster::freeze(3);
    let thaw = cluster::Thaw(3);
    let moved = loop {
        if let Some(p) = t.connected_port()
            && p != cluster::port(3)
        {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "still on the frozen node after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "[cluster] SIGSTOP c3 (heartbeat 2 s): the client moved to another node after {moved:?}"
    );
    assert_eq!(t.connection_generation(), 2);
    drop(thaw);
    t.close().await;
    drop(heal);
}
