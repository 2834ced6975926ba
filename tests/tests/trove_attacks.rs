//! The compromised-guest attack table of `trove_cluster`, live against a running cluster,
//! on the in-memory transport and on RabbitMQ: every attack is rejected for its typed
//! reason and no handler runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealrpc_examples::trove::attack_rows;
use sealrpc_examples::trove::attacks::Row;
use sealrpc_examples::trove::cluster::{Cluster, ClusterConfig};
use sealrpc_examples::trove::net::TransportChoice;
use sealrpc_examples::trove::{BoxError, traffic};
use sealrpc_tests::trove::{amqp, assert_rows};

async fn attack(transport: TransportChoice) -> Result<(Vec<Row>, bool), BoxError> {
    let cluster = Cluster::start(&ClusterConfig::new(3, transport)).await?;
    let per_guest = cluster.net.per_guest_credentials();
    let mut sink = std::io::sink();
    let result = async {
        let t = traffic::run(&cluster, &mut sink).await?;
        assert_eq!(t.active, 3);
        assert_eq!(t.failures, 0);
        attack_rows::run(&cluster).await
    }
    .await;
    cluster.shutdown().await;
    Ok((result?, per_guest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_table_on_memory() {
    let (rows, _) = attack(TransportChoice::Memory).await.unwrap();
    assert_rows(&rows, 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_table_on_rabbitmq() {
    // Another suite may restart the broker app for a few seconds: retry once.
    let (rows, per_guest) = match attack(amqp()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("first attempt failed ({e}); retrying");
            attack(amqp()).await.unwrap()
        }
    };
    assert_rows(&rows, if per_guest { 23 } else { 22 });
    if per_guest {
        assert!(rows.iter().any(|r| r.attack.contains("A's broker user")));
    }
}
