//! `sealrpc-keys rotate --guest ID --deliver --amqp URL` (the real binary) against the real
//! RabbitMQ at 127.0.0.1:5672: a guest agent serving the reserved rekey methods over AMQP
//! receives its new bundle, installs it (file and memory), and the CLI reports success.
//! Unique exchange and topic names; the exchanges are deleted at the end (the queues are
//! transient and go with their consumers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::Server;
use sealrpc_core::transport::Transport;
use sealrpc_signers::rekey::{RekeyAgent, RekeyServerExt};
use sealrpc_signers::{GuestBundle, GuestKeys};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn keys(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
        .args(args)
        .output()
        .unwrap()
}

async fn delete_exchanges(names: &[String]) {
    use lapin::options::ExchangeDeleteOptions;
    let conn = lapin::Connection::connect(URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for x in names {
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "cleanup".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_rotate_and_deliver_over_rabbitmq() {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    let tag = format!("rekey{}", hex::encode(b));
    let (exchange, topic) = (format!("{tag}-ctl"), format!("{tag}-ga"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ds = d.to_str().unwrap().to_owned();
    let bundle_file = d.join("g1.json");
    let o = keys(&["init", "--dir", &ds, "--service", "conductor"]);
    assert!(o.status.success());
    let o = keys(&[
        "issue-guest",
        "g1",
        "--dir",
        &ds,
        "--out",
        bundle_file.to_str().unwrap(),
    ]);
    assert!(o.status.success());

    let transport = Arc::new(
        AmqpTransport::connect(AmqpOptions {
            control_exchange: exchange.clone(),
            ..AmqpOptions::default().with_url(URL)
        })
        .await
        .unwrap(),
    );
    let guest_keys = GuestKeys::from_bundle(&GuestBundle::load(&bundle_file).unwrap()).unwrap();
    let agent = RekeyAgent::new(guest_keys.clone()).bundle_file(&bundle_file);
    let args = [
        "rotate",
        "--dir",
        &ds,
        "--guest",
        "g1",
        "--deliver",
        "--amqp",
        URL,
        "--control-exchange",
        &exchange,
        "--agent-topic",
        &topic,
    ]
    .map(str::to_owned);
    // The guest agent is down when the delivery starts: the CLI retries (no listener ->
    // bounded backoff) until the agent comes up, then delivers.
    let cli = tokio::task::spawn_blocking(move || keys(&args.each_ref().map(String::as_str)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let retried = !cli.is_finished();
    let dyn_transport: Arc<dyn Transport> = transport.clone();
    let server = Server::builder(dyn_transport, guest_keys.security().build())
        .topic(&topic)
        .server_name("g1")
        .shared(false)
        .fanout(false)
        .rekey_agent(&agent)
        .start()
        .await
        .unwrap();

    let out = tokio::time::timeout(Duration::from_secs(60), cli)
        .await
        .unwrap()
        .unwrap();
    println!("the agent started while the CLI was retrying: {retried}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);
    transport.close().await;
    delete_exchanges(&[exchange, format!("{topic}_fanout")]).await;

    assert!(out.status.success(), "{text}");
    assert!(text.contains("delivered 1 of 1"), "{text}");
    assert_eq!(guest_keys.epoch(), 2, "installed in memory");
    assert_eq!(
        GuestBundle::load(&bundle_file).unwrap().epoch(),
        2,
        "and on disk"
    );
    assert_eq!(agent.installed(), 1);
}
