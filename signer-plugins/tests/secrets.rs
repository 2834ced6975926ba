//! Secrets: redacted Debug, constant-time equality, master secret files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use sealrpc_signers::{Error, MasterSecret, SecretKey};

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn debug_never_shows_bytes() {
    let m = MasterSecret::from_hex(HEX).unwrap();
    let k = SecretKey::from_bytes([0xab; 32]);
    assert_eq!(format!("{m:?}"), "MasterSecret([REDACTED])");
    assert_eq!(format!("{k:?}"), "SecretKey([REDACTED])");
    assert!(!format!("{k:#?}").contains("ab"));
    assert!(!format!("{m:?}").contains("0102"));
}

#[test]
fn equality_and_parsing() {
    let a = SecretKey::from_bytes([1; 32]);
    assert_eq!(a, SecretKey::from_bytes([1; 32]));
    assert_ne!(a, SecretKey::from_bytes([2; 32]));
    assert_eq!(
        MasterSecret::from_hex(HEX).unwrap(),
        MasterSecret::from_hex(HEX).unwrap()
    );
    assert!(MasterSecret::from_hex("00").is_err());
    assert!(MasterSecret::from_hex(&"zz".repeat(32)).is_err());
    assert!(SecretKey::from_slice(&[0; 31]).is_none());
    let g1 = MasterSecret::generate().unwrap();
    let g2 = MasterSecret::generate().unwrap();
    assert_ne!(g1, g2);
}

#[test]
fn master_file_round_trip_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let m = MasterSecret::from_hex(HEX).unwrap();
    m.save_new(&path).unwrap();
    assert_eq!(MasterSecret::load(&path).unwrap(), m);

    // Refuses to overwrite.
    let err = MasterSecret::generate()
        .unwrap()
        .save_new(&path)
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(MasterSecret::load(&path).unwrap(), m);

    // Missing.
    let err = MasterSecret::load(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    // Corrupt, and the message does not echo the content.
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "deadbeef-not-a-key\n").unwrap();
    restrict(&bad);
    let err = MasterSecret::load(&bad).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(!err.to_string().contains("deadbeef"));
}

#[cfg(unix)]
fn restrict(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn restrict(_: &std::path::Path) {}

#[cfg(unix)]
#[test]
fn master_file_is_0600_and_open_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    MasterSecret::generate().unwrap().save_new(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for open in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
        let err = MasterSecret::load(&path).unwrap_err();
        assert!(
            matches!(err, Error::InsecurePermissions { .. }),
            "{open:o}: {err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }
}
