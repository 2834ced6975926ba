//! Rotation table: epochs, grace window, revocation, key-id shapes, persistence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::{Duration, SystemTime};

use sealrpc_core::security::KeyError;
use sealrpc_core::wire::KeyId;
use sealrpc_signers::RotationTable;

const G: &str = "7f3a";

fn id(s: &str) -> KeyId {
    KeyId::parse(s).unwrap()
}

#[test]
fn fresh_table_accepts_initial_epochs_only() {
    let t = RotationTable::new();
    assert_eq!(t.grace(), Duration::from_secs(3600));
    assert_eq!(t.check(&id("k1/control/1")), Ok(()));
    assert_eq!(t.check(&id("sig/control:api/1")), Ok(()));
    assert_eq!(t.check(&id("kb/guests/1")), Ok(()));
    assert_eq!(t.check(&id("k1/control/2")), Err(KeyError::UnknownKey));
    assert_eq!(t.check(&id("k1/control/0")), Err(KeyError::Stale));
    // A guest never issued keys is unknown.
    assert_eq!(t.check(&id("k3/guest:7f3a/1")), Err(KeyError::UnknownKey));
    assert_eq!(t.register_guest(G).unwrap(), 1);
    assert_eq!(t.check(&id("k3/guest:7f3a/1")), Ok(()));
    assert_eq!(t.check(&id("sig/guest:7f3a/1")), Ok(()));
}

#[test]
fn role_must_fit_principal() {
    let t = RotationTable::new();
    t.register_guest(G).unwrap();
    for bad in [
        "k1/guest:7f3a/1",
        "k1/control:api/1",
        "k2/control/1",
        "k3/guests/1",
        "kb/control/1",
        "kb/guest:7f3a/1",
        "sig/control/1",
        "sig/guests/1",
    ] {
        assert_eq!(t.check(&id(bad)), Err(KeyError::UnknownKey), "{bad}");
    }
}

#[test]
fn previous_epoch_accepted_within_grace_only() {
    let t = RotationTable::new();
    t.set_guest_epoch(G, 4).unwrap();
    let t0 = SystemTime::now();
    assert_eq!(t.rotate_guest_at(G, t0).unwrap(), 5);
    let in_grace = t0 + Duration::from_secs(3599);
    let past_grace = t0 + Duration::from_secs(3601);
    assert_eq!(t.check_at(&id("k3/guest:7f3a/5"), past_grace), Ok(()));
    assert_eq!(t.check_at(&id("k3/guest:7f3a/4"), in_grace), Ok(()));
    assert_eq!(
        t.check_at(&id("k3/guest:7f3a/4"), past_grace),
        Err(KeyError::Stale)
    );
    assert_eq!(
        t.check_at(&id("k3/guest:7f3a/3"), in_grace),
        Err(KeyError::Stale)
    );
    assert_eq!(
        t.check_at(&id("k3/guest:7f3a/6"), in_grace),
        Err(KeyError::UnknownKey)
    );

    // Two rotations: only the one before the current survives, within its grace.
    assert_eq!(t.rotate_guest_at(G, in_grace).unwrap(), 6);
    assert_eq!(
        t.check_at(&id("k3/guest:7f3a/4"), in_grace),
        Err(KeyError::Stale)
    );
    assert_eq!(t.check_at(&id("k3/guest:7f3a/5"), in_grace), Ok(()));

    // Control plane and broadcast rotate independently.
    assert_eq!(t.rotate_control_at(t0), 2);
    assert_eq!(t.check_at(&id("sig/control:api/1"), in_grace), Ok(()));
    assert_eq!(
        t.check_at(&id("k1/control/1"), past_grace),
        Err(KeyError::Stale)
    );
    assert_eq!(t.check_at(&id("kb/guests/1"), past_grace), Ok(()));
    assert_eq!(t.rotate_broadcast_at(t0), 2);
    assert_eq!(
        t.check_at(&id("kb/guests/1"), past_grace),
        Err(KeyError::Stale)
    );

    // Zero grace: the previous epoch dies at once.
    t.set_grace(Duration::ZERO);
    assert_eq!(t.check_at(&id("kb/guests/1"), t0), Err(KeyError::Stale));
}

#[test]
fn revocation_covers_every_role_and_can_be_lifted() {
    let t = RotationTable::new();
    t.register_guest(G).unwrap();
    assert!(t.revoke(G).unwrap());
    assert!(!t.revoke(G).unwrap());
    for k in [
        "k2/guest:7f3a/1",
        "k3/guest:7f3a/1",
        "sig/guest:7f3a/1",
        "k3/guest:7f3a/9",
    ] {
        assert_eq!(t.check(&id(k)), Err(KeyError::Revoked), "{k}");
    }
    // Revoking a guest never issued keys works too.
    t.revoke("other").unwrap();
    assert_eq!(t.check(&id("k3/guest:other/1")), Err(KeyError::Revoked));
    assert!(t.unrevoke(G));
    assert_eq!(t.check(&id("k3/guest:7f3a/1")), Ok(()));
    assert!(t.revoke("bad/id").is_err());
    assert!(t.rotate_guest("never-issued").is_err());
}

#[test]
fn state_round_trips_through_json_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotation.json");
    let t = RotationTable::new();
    t.add_service("conductor").unwrap();
    t.set_guest_epoch(G, 3).unwrap();
    t.rotate_guest(G).unwrap();
    t.rotate_control();
    t.revoke("dead").unwrap();
    t.set_grace(Duration::from_secs(60));
    sealrpc_signers::RotationFile::new(dir.path())
        .create(&t, || Ok(()))
        .unwrap();

    let back = RotationTable::load(&path).unwrap();
    assert_eq!(back.to_json(), t.to_json());
    assert_eq!(back.guest_epoch(G), Some(4));
    assert_eq!(back.control_epoch(), 2);
    assert!(back.is_revoked("dead"));
    assert_eq!(back.services(), vec!["conductor".to_owned()]);
    assert_eq!(
        back.check(&id("k3/guest:7f3a/3")),
        Ok(()),
        "grace survives a reload"
    );

    // reload() updates a shared table in place.
    let shared = RotationTable::new();
    shared.reload(&path).unwrap();
    assert_eq!(shared.guest_epoch(G), Some(4));

    // Unknown fields are ignored; a wrong format or bad id is refused.
    let mut v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    v["future_field"] = serde_json::json!({"x": 1});
    assert!(RotationTable::from_json(&v.to_string()).is_ok());
    v["format"] = "sealrpc-rotation-v9".into();
    assert!(RotationTable::from_json(&v.to_string()).is_err());
    assert!(RotationTable::from_json("{").is_err());
}

#[cfg(unix)]
#[test]
fn state_file_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotation.json");
    sealrpc_signers::RotationFile::new(dir.path())
        .create(&RotationTable::new(), || Ok(()))
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = RotationTable::load(&path).unwrap_err();
    assert!(
        matches!(err, sealrpc_signers::Error::InsecurePermissions { .. }),
        "{err}"
    );
}

#[test]
fn table_is_shared_across_threads() {
    let t = std::sync::Arc::new(RotationTable::new());
    t.register_guest(G).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    t.rotate_guest(G).unwrap();
                    let _ = t.check(&id("k3/guest:7f3a/1"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(t.guest_epoch(G), Some(401));
}
