//! The rotation watcher on its own: any `RotationSource` plugs in; a failing source keeps
//! the old state and is counted; `wake` makes it look at once; a reload moves the control
//! plane's signing and sealing epochs too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealrpc_core::security::{KeyError, KeyResolver, Peer};
use sealrpc_core::wire::KeyId;
use sealrpc_signers::{
    ControlPlaneKeys, Error, Fetched, MasterSecret, RotationFile, RotationSource, RotationTable,
    RotationWatcher, StateVersion, WatchOptions,
};

/// A source whose next answer the test sets: a state (as JSON) or a failure.
#[derive(Debug, Default)]
struct Scripted {
    next: Mutex<Option<Result<String, String>>>,
}

impl Scripted {
    fn set(&self, answer: Result<String, String>) {
        *self.next.lock().unwrap() = Some(answer);
    }
}

impl RotationSource for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }

    fn fetch(&self, applied: Option<&StateVersion>) -> Result<Fetched, Error> {
        let answer = self.next.lock().unwrap().clone();
        match answer {
            None => Ok(Fetched::Unchanged),
            Some(Err(why)) => Err(Error::Corrupt {
                path: "scripted".into(),
                reason: why,
            }),
            Some(Ok(json)) => {
                let version = StateVersion::from_bytes(json.as_bytes());
                if applied == Some(&version) {
                    return Ok(Fetched::Unchanged);
                }
                let table = RotationTable::from_json(&json).map_err(|reason| Error::Corrupt {
                    path: "scripted".into(),
                    reason,
                })?;
                Ok(Fetched::Changed(version, table))
            }
        }
    }
}

fn id(s: &str) -> KeyId {
    KeyId::parse(s).unwrap()
}

#[tokio::test]
async fn any_source_plugs_in_and_failures_keep_the_old_state() {
    let source = Arc::new(Scripted::default());
    let first = RotationTable::new();
    first.register_guest("g1").unwrap();
    source.set(Ok(first.to_json()));
    let table = Arc::new(RotationTable::new());
    let w = RotationWatcher::start(
        Arc::clone(&table),
        Arc::clone(&source),
        WatchOptions::default(),
    )
    .unwrap();
    assert_eq!(
        table.check(&id("k3/guest:g1/1")),
        Ok(()),
        "initial load applied"
    );
    assert_eq!(w.stats().applied, 0, "the initial load is not a reload");

    let revoked = first.snapshot();
    revoked.revoke("g1").unwrap();
    source.set(Ok(revoked.to_json()));
    assert!(w.check_now().unwrap());
    assert_eq!(table.check(&id("k3/guest:g1/1")), Err(KeyError::Revoked));
    assert!(!w.check_now().unwrap(), "same version: unchanged");

    // A source that fails, or answers with garbage: nothing changes, each look is counted.
    source.set(Err("store unreachable".into()));
    assert!(w.check_now().is_err());
    source.set(Ok(first.to_json().replace("rotation-v1", "rotation-v9")));
    assert!(w.check_now().is_err());
    let s = w.stats();
    assert_eq!((s.applied, s.failed, s.failing), (1, 2, true));
    assert_eq!(table.check(&id("k3/guest:g1/1")), Err(KeyError::Revoked));

    // Back to a good state.
    source.set(Ok(first.to_json()));
    assert!(w.check_now().unwrap());
    assert!(!w.stats().failing);
    assert_eq!(table.check(&id("k3/guest:g1/1")), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_looks_at_once_and_control_rotation_moves_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = RotationTable::new();
    t.add_service("conductor").unwrap();
    let master = MasterSecret::generate().unwrap();
    RotationFile::new(d)
        .create(&t, || master.save_new(&d.join("master.key")))
        .unwrap();
    let keys = ControlPlaneKeys::from_dir(d, "conductor").unwrap();
    // An interval far longer than the test: only wake() can make it look.
    let w = RotationWatcher::start_for_keys(
        &keys,
        RotationFile::new(d),
        WatchOptions::interval(Duration::from_secs(3600)),
    )
    .unwrap();
    assert_eq!(keys.signing_key_id(), id("sig/control:conductor/1"));

    RotationTable::update(d, |t| {
        t.rotate_control();
        t.rotate_broadcast();
        Ok(())
    })
    .unwrap();
    w.wake();
    let t0 = Instant::now();
    while w.stats().applied == 0 {
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", w.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(keys.signing_key_id(), id("sig/control:conductor/2"));
    assert_eq!(
        keys.seal_key_for(&Peer::ControlPlane),
        Some(id("k1/control/2"))
    );
    assert_eq!(keys.seal_key_for(&Peer::Guests), Some(id("kb/guests/2")));
}

#[tokio::test]
async fn a_persisted_issue_survives_the_next_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = RotationTable::new();
    t.add_service("conductor").unwrap();
    let master = MasterSecret::generate().unwrap();
    RotationFile::new(d)
        .create(&t, || master.save_new(&d.join("master.key")))
        .unwrap();
    let keys = ControlPlaneKeys::from_dir(d, "conductor").unwrap();
    let w = RotationWatcher::start_for_keys(&keys, RotationFile::new(d), WatchOptions::default())
        .unwrap();
    // In memory, a change the next reload would undo is refused: no revocation or
    // registration can be silently lost that way.
    assert!(keys.rotation().is_mirrored());
    let err = keys.issue_guest_bundle("g9").unwrap_err();
    assert!(matches!(err, Error::Mirrored { .. }), "{err}");
    let err = keys.rotation().revoke("g9").unwrap_err();
    assert!(matches!(err, Error::Mirrored { .. }), "{err}");
    assert!(!keys.rotation().snapshot().is_mirrored());
    keys.issue_guest_bundle_persisted(&RotationFile::new(d), "g9")
        .unwrap();
    RotationTable::update(d, |t| t.revoke("other")).unwrap();
    assert!(w.check_now().unwrap());
    assert_eq!(
        keys.rotation().guest_epoch("g9"),
        Some(1),
        "still registered"
    );
    // A revoked guest gets no bundle, and nothing is written for it.
    RotationTable::update(d, |t| t.revoke("g9")).unwrap();
    let err = keys
        .issue_guest_bundle_persisted(&RotationFile::new(d), "g9")
        .unwrap_err();
    assert!(matches!(err, Error::Key(KeyError::Revoked)), "{err}");
}
