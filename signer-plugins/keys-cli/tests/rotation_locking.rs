//! The locked writer of the rotation state, with the real `sealrpc-keys` binary: library
//! writers on threads and CLI processes at the same time lose no update; a held lock makes
//! the CLI fail (exit 1, nothing written) after a bounded wait, like the library.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use sealrpc_signers::{
    ControlPlaneKeys, Error, LOCK_FILE, MasterSecret, RotationFile, RotationTable,
};

const WRITERS: usize = 16;

fn init(d: &Path) {
    let t = RotationTable::new();
    t.add_service("conductor").unwrap();
    let master = MasterSecret::generate().unwrap();
    RotationFile::new(d)
        .create(&t, || master.save_new(&d.join("master.key")))
        .unwrap();
}

#[test]
fn threads_and_processes_of_every_kind_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    init(&d);
    let old: Vec<String> = (0..3 * WRITERS).map(|i| format!("old{i}")).collect();
    RotationTable::update(&d, |t| {
        for id in &old {
            t.register_guest(id)?;
        }
        for id in &old[2 * WRITERS..] {
            t.revoke(id)?;
        }
        Ok(())
    })
    .unwrap();
    let keys = ControlPlaneKeys::from_dir(&d, "conductor").unwrap();

    // Processes: WRITERS revokes of old[WRITERS..] by the CLI.
    let cli: Vec<_> = old[WRITERS..2 * WRITERS]
        .iter()
        .map(|id| {
            Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
                .args(["revoke", id, "--dir", d.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    // Threads: rotate old[..WRITERS], register and issue new guests (through the library's
    // persisted issuance), add services, rotate control, rotate broadcast, lift the
    // revocations of old[2 * WRITERS..], all released at once.
    let barrier = Arc::new(Barrier::new(6 * WRITERS));
    let mut threads = Vec::new();
    for (i, rotated) in old[..WRITERS].iter().enumerate() {
        let jobs: [Box<dyn FnOnce() + Send>; 6] = [
            {
                let (d, id) = (d.clone(), rotated.clone());
                Box::new(move || {
                    RotationTable::update(&d, |t| t.rotate_guest(&id)).unwrap();
                })
            },
            {
                let (d, keys) = (d.clone(), keys.clone());
                Box::new(move || {
                    let b = keys
                        .issue_guest_bundle_persisted(&RotationFile::new(&d), &format!("new{i}"))
                        .unwrap();
                    assert_eq!(b.epoch(), 1);
                })
            },
            {
                let d = d.clone();
                Box::new(move || {
                    RotationTable::update(&d, |t| t.add_service(&format!("svc{i}"))).unwrap();
                })
            },
            {
                let d = d.clone();
                Box::new(move || {
                    RotationTable::update(&d, |t| Ok(t.rotate_control())).unwrap();
                })
            },
            {
                let d = d.clone();
                Box::new(move || {
                    RotationTable::update(&d, |t| Ok(t.rotate_broadcast())).unwrap();
                })
            },
            {
                let (d, id) = (d.clone(), old[2 * WRITERS + i].clone());
                Box::new(move || {
                    assert!(RotationTable::update(&d, |t| Ok(t.unrevoke(&id))).unwrap());
                })
            },
        ];
        for job in jobs {
            let barrier = Arc::clone(&barrier);
            threads.push(std::thread::spawn(move || {
                barrier.wait();
                job();
            }));
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    for c in cli {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    let t = RotationFile::new(&d).load().unwrap();
    for i in 0..WRITERS {
        assert_eq!(t.guest_epoch(&old[i]), Some(2), "{} rotated", old[i]);
        assert!(
            t.is_revoked(&old[WRITERS + i]),
            "{} revoked",
            old[WRITERS + i]
        );
        assert_eq!(t.guest_epoch(&format!("new{i}")), Some(1), "new{i} issued");
        assert!(t.services().contains(&format!("svc{i}")), "svc{i} recorded");
        assert!(!t.is_revoked(&old[2 * WRITERS + i]), "unrevoked");
    }
    assert_eq!(t.guests().len(), 4 * WRITERS);
    assert_eq!(t.revoked().len(), WRITERS);
    assert_eq!(t.control_epoch(), 1 + WRITERS as u64);
    assert_eq!(t.broadcast_epoch(), 1 + WRITERS as u64);
    assert_eq!(t.services().len(), WRITERS + 1);
}

#[test]
fn a_held_lock_is_a_typed_error_after_a_bounded_wait_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let before = std::fs::read(d.join("rotation.json")).unwrap();

    // Another holder (any process or thread) keeps the lock.
    let holder = std::fs::File::open(d.join(LOCK_FILE)).unwrap();
    holder.lock().unwrap();
    let file = RotationFile::new(d).lock_timeout(Duration::from_millis(200));
    let err = file.update(|t| t.revoke("g1")).unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    assert!(err.to_string().contains(LOCK_FILE), "{err}");

    // The CLI gives up too, with exit code 1 and the same explanation.
    let o = Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
        .args(["revoke", "g1", "--dir", d.to_str().unwrap()])
        .args(["--lock-timeout-secs", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("lock"));
    assert_eq!(std::fs::read(d.join("rotation.json")).unwrap(), before);

    // Released: the same update goes through.
    holder.unlock().unwrap();
    file.update(|t| t.revoke("g1")).unwrap();
    assert!(file.load().unwrap().is_revoked("g1"));
}
