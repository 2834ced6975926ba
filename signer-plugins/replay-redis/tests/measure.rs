#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Replay-store figures for docs/reliability.md ("Replay store"): Redis memory per id and
//! the time of one check, sequential and with concurrent checks pipelined on one
//! connection. Printed, never asserted. Run:
//! `cargo test -p sealrpc-replay-redis --test measure -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use sealrpc_core::security::{ReplayCheck, ReplayConfig, ReplayStore, ReplayVerdict, now_ms};
use sealrpc_core::wire::MessageId;
use sealrpc_replay_redis::RedisReplayStore;

const IDS: usize = 20_000;
const GUESTS: usize = 200;

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
#[ignore = "a measurement: run it by hand"]
async fn replay_store_memory_and_latency() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let mut b = [0u8; 6];
    sealrpc_core::rand::fill(&mut b);
    let prefix = format!(
        "sealrpc-measure:{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    let store = Arc::new(
        RedisReplayStore::builder(&url)
            .prefix(&prefix)
            .connect()
            .await
            .unwrap(),
    );
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let config = ReplayConfig::default();
    let principals: Vec<String> = (0..GUESTS).map(|i| format!("guest:{i:036}")).collect();
    let before = used_memory(&mut conn).await;
    let now = now_ms() + 1_000;

    // Sequential: one check at a time, one round trip each.
    let started = Instant::now();
    for i in 0..IDS / 2 {
        let v = store
            .check_and_record(ReplayCheck {
                principal: &principals[i % GUESTS],
                id: MessageId::random(),
                ts: now,
                now_ms: now,
                config: &config,
            })
            .await
            .unwrap();
        assert_eq!(v, ReplayVerdict::Recorded);
    }
    let sequential = started.elapsed() / (IDS / 2) as u32;

    // Concurrent: 32 tasks, their checks pipelined on the one multiplexed connection.
    let started = Instant::now();
    let per_task = IDS / 2 / 32;
    let mut tasks = Vec::new();
    for t in 0..32 {
        let (store, principals) = (Arc::clone(&store), principals.clone());
        tasks.push(tokio::spawn(async move {
            let config = ReplayConfig::default();
            for i in 0..per_task {
                store
                    .check_and_record(ReplayCheck {
                        principal: &principals[(t * per_task + i) % GUESTS],
                        id: MessageId::random(),
                        ts: now,
                        now_ms: now,
                        config: &config,
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let concurrent = started.elapsed() / (per_task * 32) as u32;
    let ids = IDS / 2 + per_task * 32;
    let after = used_memory(&mut conn).await;
    let own: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(format!("{{{prefix}}}:p:{}", principals[0]))
        .query_async(&mut conn)
        .await
        .unwrap();
    let class: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(format!("{{{prefix}}}:guests"))
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    println!(
        "{ids} ids of {GUESTS} guests: used_memory +{} B ({} B/id); MEMORY USAGE: one guest's set {own} B for {} ids, the guests' set {class} B ({} B/id)",
        after - before,
        (after - before) / ids as i64,
        ids / GUESTS,
        class / ids as i64,
    );
    println!("per check: {sequential:?} sequential, {concurrent:?} with 32 concurrent checks");
    store.delete_all().await.unwrap();
}
