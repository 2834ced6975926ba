//! Guest bundles: contents, JSON round trip, file mode, redaction, refusals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::Arc;

use sealrpc_core::wire::{KeyId, Role};
use sealrpc_signers::{ControlPlaneKeys, Error, GuestBundle, MasterSecret, RotationTable};

const G: &str = "7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab";

fn issue() -> GuestBundle {
    let master = Arc::new(MasterSecret::generate().unwrap());
    let table = Arc::new(RotationTable::new());
    table.add_service("api").unwrap();
    let cp = ControlPlaneKeys::new(master, table, "conductor").unwrap();
    cp.issue_guest_bundle(G).unwrap()
}

#[test]
fn bundle_holds_exactly_the_guests_keys() {
    let b = issue();
    assert_eq!(b.principal().as_str(), format!("guest:{G}"));
    assert_eq!(b.epoch(), 1);
    let secret: Vec<String> = b.secret_keys().keys().map(|k| k.to_string()).collect();
    assert_eq!(
        secret,
        vec![
            format!("k2/guest:{G}/1"),
            format!("k3/guest:{G}/1"),
            "kb/guests/1".to_owned(),
            format!("sig/guest:{G}/1"),
        ]
    );
    let public: Vec<String> = b.public_keys().keys().map(|k| k.to_string()).collect();
    assert_eq!(
        public,
        vec![
            "sig/control:api/1",
            "sig/control:api/2",
            "sig/control:conductor/1",
            "sig/control:conductor/2"
        ]
    );
    assert!(b.signing_seed().is_some());
}

#[test]
fn bundle_json_round_trip_and_unknown_fields() {
    let b = issue();
    let text = b.to_json();
    let back = GuestBundle::from_json(&text).unwrap();
    assert_eq!(back, b);

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["added_by_a_newer_tool"] = serde_json::json!([1, 2, 3]);
    assert_eq!(GuestBundle::from_json(&v.to_string()).unwrap(), b);

    let mut wrong = v.clone();
    wrong["format"] = "something-else".into();
    assert!(GuestBundle::from_json(&wrong.to_string()).is_err());

    // A bundle may not carry k1 or another guest's keys.
    let mut k1 = v.clone();
    k1["secret_keys"]["k1/control/1"] = "00".repeat(32).into();
    assert!(GuestBundle::from_json(&k1.to_string()).is_err());
    let mut other = v.clone();
    other["public_keys"]["sig/guest:someone/1"] = "00".repeat(32).into();
    assert!(GuestBundle::from_json(&other.to_string()).is_err());

    // A bad value is reported without quoting it.
    let mut bad = v.clone();
    let id = format!("k2/guest:{G}/1");
    bad["secret_keys"][&id] = "0123456789abcdefXYZ".into();
    let err = GuestBundle::from_json(&bad.to_string()).unwrap_err();
    assert!(!err.contains("0123456789abcdef"), "{err}");
}

#[test]
fn bundle_debug_has_no_secret() {
    let b = issue();
    let dbg = format!("{b:?}");
    for k in b.secret_keys().values() {
        assert!(!dbg.contains(k.to_hex().as_str()));
    }
    assert!(dbg.contains("k2/guest:"));
}

#[test]
fn bundle_file_mode_and_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    let b = issue();
    b.save_new(&path).unwrap();
    assert_eq!(GuestBundle::load(&path).unwrap(), b);
    assert!(matches!(
        b.save_new(&path),
        Err(Error::AlreadyExists { .. })
    ));
    b.save_replace(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            GuestBundle::load(&path),
            Err(Error::InsecurePermissions { .. })
        ));
    }
}

#[test]
fn bundle_refuses_foreign_keys() {
    let mut b = issue();
    let k1 = KeyId::parse("k1/control/1").unwrap();
    assert!(
        b.insert_secret(k1, sealrpc_signers::SecretKey::from_bytes([0; 32]))
            .is_err()
    );
    let foreign = KeyId::new(Role::K2, sealrpc_core::Principal::guest("x").unwrap(), 1);
    assert!(
        b.insert_secret(foreign, sealrpc_signers::SecretKey::from_bytes([0; 32]))
            .is_err()
    );
}
