//! The locked writer of the rotation state (library side): a failed change writes nothing;
//! the lock and state files are private. The CLI-process cases are in
//! signer-plugins/keys-cli/tests/rotation_locking.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;

use sealrpc_signers::{Error, LOCK_FILE, MasterSecret, RotationFile, RotationTable};

fn init(d: &Path) {
    let t = RotationTable::new();
    t.add_service("conductor").unwrap();
    let master = MasterSecret::generate().unwrap();
    RotationFile::new(d)
        .create(&t, || master.save_new(&d.join("master.key")))
        .unwrap();
}

#[test]
fn a_failed_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let before = std::fs::read(d.join("rotation.json")).unwrap();
    let err = RotationTable::update(d, |t| {
        t.revoke("g1")?;
        t.rotate_guest("never-issued")
    })
    .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert_eq!(std::fs::read(d.join("rotation.json")).unwrap(), before);
}

#[cfg(unix)]
#[test]
fn lock_and_state_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    RotationTable::update(d, |t| t.revoke("g1")).unwrap();
    for f in [LOCK_FILE, "rotation.json"] {
        let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}
