//! The PostgreSQL rotation store against the real server at 127.0.0.1:5432: no update
//! lost under 16 concurrent writers, monotonic versions, a NOTIFY wakes a watcher whose
//! poll is too slow to matter, and a store that fails keeps the last good state (never
//! fails open). Each test uses its own table and drops it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealrpc_core::security::KeyError;
use sealrpc_core::wire::KeyId;
use sealrpc_signers::pg::PgRotationStore;
use sealrpc_signers::{Error, RotationTable, RotationWatcher, WatchOptions};

const URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PATIENCE: Duration = Duration::from_secs(20);

/// A store in a fresh uniquely named table, dropped when the guard goes.
struct Fresh(Arc<PgRotationStore>);

impl Fresh {
    fn new(initial: &RotationTable) -> Self {
        let suffix = hex::encode(rand_bytes());
        let store = PgRotationStore::new(URL, &format!("sealrpc_rot_test_{suffix}")).unwrap();
        store.create(initial).unwrap();
        Self(Arc::new(store))
    }

    fn handle(&self) -> PgRotationStore {
        PgRotationStore::new(URL, self.0.table()).unwrap()
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = self.0.drop_table();
    }
}

fn rand_bytes() -> [u8; 6] {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    b
}

fn id(s: &str) -> KeyId {
    KeyId::parse(s).unwrap()
}

#[test]
fn sixteen_concurrent_writers_lose_nothing_and_versions_only_grow() {
    let store = Fresh::new(&RotationTable::new());
    let writers: Vec<_> = (0..16)
        .map(|w| {
            // Each writer has its own session, as separate processes would.
            let handle = store.handle();
            std::thread::spawn(move || {
                let mut versions = Vec::new();
                for i in 0..5 {
                    let g = format!("w{w}-g{i}");
                    let ((), v) = handle
                        .update_versioned(|t| {
                            t.register_guest(&g)?;
                            if i % 2 == 0 {
                                t.revoke(&g)?;
                            }
                            Ok(())
                        })
                        .unwrap();
                    versions.push(v);
                }
                versions
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in writers {
        let v = w.join().unwrap();
        assert!(v.windows(2).all(|p| p[0] < p[1]), "per writer: {v:?}");
        all.extend(v);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 80, "every commit got its own version");
    let (version, t) = store.0.load_versioned().unwrap();
    assert_eq!(version, 81, "created at 1, then 80 commits");
    assert_eq!(t.guests().len(), 80, "no registration lost");
    assert_eq!(t.revoked().len(), 48, "no revocation lost");
}

#[test]
fn a_failed_change_writes_nothing_and_an_identical_one_keeps_the_version() {
    let store = Fresh::new(&RotationTable::new());
    let err = store
        .0
        .update(|t| {
            t.register_guest("g1")?;
            Err::<(), _>(Error::Invalid {
                what: "test",
                value: String::new(),
            })
        })
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let (v, t) = store.0.load_versioned().unwrap();
    assert_eq!((v, t.guests().len()), (1, 0));
    let ((), v) = store.0.update_versioned(|_| Ok(())).unwrap();
    assert_eq!(v, 1, "nothing changed, nothing written");
    // Importing over a live state is refused: it could undo revocations.
    let err = store.0.create(&RotationTable::new()).unwrap_err();
    assert!(err.to_string().contains("already holds a state"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_the_watcher_and_a_failing_store_keeps_the_last_good_state() {
    let initial = RotationTable::new();
    initial.register_guest("g1").unwrap();
    let store = Fresh::new(&initial);
    let table = Arc::new(RotationTable::new());
    // A poll interval far longer than the test: only the NOTIFY can make it look.
    let watcher = RotationWatcher::start(
        Arc::clone(&table),
        Arc::clone(&store.0),
        WatchOptions::interval(Duration::from_secs(3600)),
    )
    .unwrap();
    let _listener = store.0.listen(watcher.waker()).unwrap();
    assert_eq!(table.check(&id("k3/guest:g1/1")), Ok(()));

    // Another writer (its own session) revokes g1.
    let writer = store.handle();
    let t0 = Instant::now();
    tokio::task::spawn_blocking(move || writer.update(|t| t.revoke("g1")))
        .await
        .unwrap()
        .unwrap();
    while table.check(&id("k3/guest:g1/1")) != Err(KeyError::Revoked) {
        assert!(t0.elapsed() < PATIENCE, "{:?}", watcher.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("NOTIFY propagation: {:?}", t0.elapsed());
    assert!(watcher.stats().applied >= 1);
    assert!(!watcher.check_now().unwrap(), "same version: unchanged");

    // The store becomes unusable (its table is gone): every look fails, is counted, and
    // the revocation stays in force.
    store.0.drop_table().unwrap();
    assert!(watcher.check_now().is_err());
    let s = watcher.stats();
    assert!(s.failing && s.failed >= 1, "{s:?}");
    assert_eq!(table.check(&id("k3/guest:g1/1")), Err(KeyError::Revoked));

    // Recreated from an older state (a restored backup at version 1): refused, since its
    // version is lower than the one applied.
    store.0.create(&initial).unwrap();
    let err = watcher.check_now().unwrap_err();
    assert!(err.to_string().contains("went backwards"), "{err}");
    assert_eq!(table.check(&id("k3/guest:g1/1")), Err(KeyError::Revoked));
}

#[tokio::test]
async fn a_service_does_not_start_on_an_unreachable_store() {
    // Nothing listens on port 1: connecting fails fast.
    let store = PgRotationStore::new("postgres://postgres@127.0.0.1:1/test", "sealrpc_x")
        .unwrap()
        .op_timeout(Duration::from_secs(2));
    let table = Arc::new(RotationTable::new());
    let err =
        RotationWatcher::start(Arc::clone(&table), store, WatchOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err}");
    assert!(!err.to_string().contains("password"), "{err}");
}

#[test]
fn bad_table_names_and_addresses_are_typed_errors() {
    for bad in ["", "Robert'); DROP", "1abc", "a-b", &"x".repeat(64)] {
        assert!(matches!(
            PgRotationStore::new(URL, bad),
            Err(Error::Invalid { .. })
        ));
    }
    let err = PgRotationStore::new("postgres://[::1", "t").unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err}");
    let s = PgRotationStore::new("postgres://u:hunter2@127.0.0.1/db", "t").unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn a_change_slower_than_the_bound_is_rolled_back_and_reported() {
    let store = Fresh::new(&RotationTable::new());
    let slow = store.handle().op_timeout(Duration::from_millis(300));
    let err = slow
        .update(|t| {
            std::thread::sleep(Duration::from_millis(600));
            t.register_guest("late")
        })
        .unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err}");
    let (v, t) = store.0.load_versioned().unwrap();
    assert_eq!((v, t.guest_epoch("late")), (1, None), "nothing written");
}
