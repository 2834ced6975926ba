#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Redis replay store against the Redis at 127.0.0.1:6379 (`REDIS_URL` overrides it):
//! atomic across stores, the same verdicts as rpc-core's in-process guard on a random
//! sequence (quota, fair share, eviction and watermark included), and the per-guest quota
//! and control-plane reserve under a hostile guest. Each test uses its own key prefix
//! and deletes its keys afterwards.

use std::sync::Arc;

use sealrpc_core::security::{
    ReplayCheck, ReplayConfig, ReplayGuard, ReplayStore, ReplayVerdict, now_ms,
};
use sealrpc_core::wire::MessageId;
use sealrpc_replay_redis::RedisReplayStore;

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn prefix(test: &str) -> String {
    let mut b = [0u8; 6];
    sealrpc_core::rand::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("sealrpc-test:{test}:{hex}")
}

async fn store(prefix: &str) -> RedisReplayStore {
    RedisReplayStore::builder(url())
        .prefix(prefix)
        .connect()
        .await
        .expect("store")
}

async fn check(
    store: &dyn ReplayStore,
    config: &ReplayConfig,
    principal: &str,
    id: MessageId,
    ts: u64,
    now: u64,
) -> ReplayVerdict {
    store
        .check_and_record(ReplayCheck {
            principal,
            id,
            ts,
            now_ms: now,
            config,
        })
        .await
        .expect("redis answers")
}

#[tokio::test]
async fn a_replay_is_refused_by_another_store_and_one_of_racing_checks_wins() {
    let p = prefix("race");
    let (a, b) = (store(&p).await, store(&p).await);
    let config = ReplayConfig::default();
    let now = now_ms();
    let id = MessageId::random();
    assert_eq!(
        check(&a, &config, "control:api", id, now, now).await,
        ReplayVerdict::Recorded
    );
    assert_eq!(
        check(&b, &config, "control:api", id, now, now).await,
        ReplayVerdict::Replay
    );
    // The same id of another principal is another message.
    assert_eq!(
        check(&b, &config, "guest:g1", id, now, now).await,
        ReplayVerdict::Recorded
    );

    // 16 concurrent checks of one fresh id over two stores: exactly one records it.
    let id = MessageId::random();
    let stores = [Arc::new(a.clone()), Arc::new(b.clone())];
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            check(&*s, &ReplayConfig::default(), "guest:g2", id, now, now).await
        }));
    }
    let mut recorded = 0;
    for t in tasks {
        match t.await.unwrap() {
            ReplayVerdict::Recorded => recorded += 1,
            v => assert_eq!(v, ReplayVerdict::Replay),
        }
    }
    assert_eq!(recorded, 1);
    assert!(a.delete_all().await.unwrap() > 0);
}

/// A small xorshift, so that the sequence is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn the_redis_store_gives_the_in_process_guards_verdicts() {
    // Small room, so that the sequence reaches the guests' share, the fair share, eviction,
    // watermarks, the per-guest quota, the capacity and pruning.
    let config = ReplayConfig {
        skew_ms: 2_000,
        future_skew_ms: 2_000,
        capacity: 40,
        control_reserve: 10,
        per_guest: 14,
    };
    let principals = [
        "control:api",
        "control:taskmanager",
        "guest:a",
        "guest:b",
        "guest:c",
        "guest:d",
        "guest:e",
        "guest:f",
    ];
    let p = prefix("model");
    let redis = store(&p).await;
    let guard = ReplayGuard::new(config);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // After the store's start (its restart rule is not under test here).
    let mut now = now_ms() + 5_000;
    let mut seen: Vec<(usize, MessageId, u64)> = Vec::new();
    let mut verdicts = std::collections::BTreeMap::new();
    for step in 0..1_500 {
        now += rng.below(40);
        // Guests c..f are busy; a and b quiet; the control plane in bursts.
        let who = match rng.below(10) {
            0 => rng.below(2) as usize,
            1 => 2 + rng.below(2) as usize,
            _ => 4 + rng.below(4) as usize,
        };
        let (who, id, ts) = if !seen.is_empty() && rng.below(8) == 0 {
            seen[rng.below(seen.len() as u64) as usize]
        } else {
            let ts = now + rng.below(2_000) - 1_000;
            (who, MessageId::random(), ts)
        };
        let principal = principals[who];
        if ts + config.skew_ms < now || ts > now + config.future_skew_ms {
            continue; // the pipeline's time check refuses it before any store
        }
        let want = ReplayVerdict::from_guard(guard.check_and_record(principal, id, ts, now));
        let got = check(&redis, &config, principal, id, ts, now).await;
        assert_eq!(got, want, "step {step}: {principal} ts {ts} now {now}");
        *verdicts.entry(format!("{want:?}")).or_insert(0) += 1;
        seen.push((who, id, ts));
    }
    // The sequence did reach every verdict.
    for v in ["Recorded", "Replay", "Full"] {
        assert!(verdicts.get(v).copied().unwrap_or(0) > 5, "{verdicts:?}");
    }
    redis.delete_all().await.unwrap();
}

trait FromGuard {
    fn from_guard(r: Result<(), sealrpc_core::security::RejectReason>) -> Self;
}

impl FromGuard for ReplayVerdict {
    fn from_guard(r: Result<(), sealrpc_core::security::RejectReason>) -> Self {
        use sealrpc_core::security::RejectReason;
        match r {
            Ok(()) => ReplayVerdict::Recorded,
            Err(RejectReason::Replay) => ReplayVerdict::Replay,
            Err(RejectReason::ReplayGuardFull) => ReplayVerdict::Full,
            Err(other) => panic!("unexpected {other}"),
        }
    }
}

#[tokio::test]
async fn a_hostile_guest_fills_only_its_own_quota() {
    let config = ReplayConfig {
        capacity: 300,
        control_reserve: 100,
        per_guest: 50,
        ..ReplayConfig::default()
    };
    let p = prefix("quota");
    let (replica_a, replica_b) = (store(&p).await, store(&p).await);
    let now = now_ms() + 1_000;
    // The hostile guest floods through both replicas: 50 ids, then refused.
    let mut refused = 0;
    for i in 0..80u64 {
        let s = if i % 2 == 0 { &replica_a } else { &replica_b };
        match check(
            s,
            &config,
            "guest:hostile",
            MessageId::random(),
            now + i,
            now,
        )
        .await
        {
            ReplayVerdict::Recorded => {}
            ReplayVerdict::Full => refused += 1,
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(refused, 30);
    // Another guest and the control plane are admitted, on either replica.
    for s in [&replica_a, &replica_b] {
        for who in ["guest:honest", "control:api"] {
            assert_eq!(
                check(s, &config, who, MessageId::random(), now, now).await,
                ReplayVerdict::Recorded
            );
        }
    }
    replica_a.delete_all().await.unwrap();
}

#[tokio::test]
async fn a_store_whose_memory_is_lost_refuses_what_was_stamped_before() {
    let p = prefix("since");
    let s = store(&p).await;
    let config = ReplayConfig::default();
    let now = now_ms();
    let before = MessageId::random();
    assert_eq!(
        check(&s, &config, "control:api", before, now + 1, now + 2).await,
        ReplayVerdict::Recorded
    );
    // Redis lost everything (a restart without persistence, a flush): the store cannot
    // know it saw `before`.
    s.delete_all().await.unwrap();
    let later = now + 10;
    assert_eq!(
        check(&s, &config, "control:api", before, now + 1, later).await,
        ReplayVerdict::BeforeStart
    );
    assert_eq!(
        check(
            &s,
            &config,
            "control:api",
            MessageId::random(),
            later,
            later
        )
        .await,
        ReplayVerdict::Recorded
    );
    s.delete_all().await.unwrap();
}
