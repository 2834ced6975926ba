//! Concurrent `sealrpc-keys` processes on one key directory: every update persists (defect
//! 4 of issue 11: unlocked read-modify-rename lost most of them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use sealrpc_signers::RotationTable;

/// Concurrent writers of each kind.
const WRITERS: usize = 16;

fn keys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
        .args(args)
        .output()
        .unwrap()
}

fn spawn(args: Vec<String>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_all(children: Vec<Child>) {
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "a concurrent writer failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn init(d: &Path) {
    let o = keys(&["init", "--dir", &s(d), "--service", "conductor"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn issue(d: &Path, id: &str) -> Vec<String> {
    let out = d.join(format!("guest-{id}.json"));
    ["issue-guest", id, "--dir", &s(d), "--out", &s(&out)]
        .map(str::to_owned)
        .to_vec()
}

fn state(d: &Path) -> RotationTable {
    RotationTable::load(&d.join("rotation.json")).unwrap()
}

#[test]
fn sixteen_concurrent_revokes_all_persist() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let ids: Vec<String> = (0..WRITERS).map(|i| format!("g{i}")).collect();
    wait_all(ids.iter().map(|id| spawn(issue(d, id))).collect());
    wait_all(
        ids.iter()
            .map(|id| spawn(["revoke", id, "--dir", &s(d)].map(str::to_owned).to_vec()))
            .collect(),
    );
    let t = state(d);
    assert_eq!(t.guests().len(), WRITERS, "every issue-guest persisted");
    let mut revoked = t.revoked();
    revoked.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(revoked, want, "every revoke persisted");
}

#[test]
fn mixed_concurrent_writers_equal_the_sequential_composition() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    // Guests that exist before the storm: a third get rotated, a third revoked, and a third
    // (revoked now) get their revocation lifted.
    let old: Vec<String> = (0..3 * WRITERS).map(|i| format!("old{i}")).collect();
    for id in &old {
        let a = issue(d, id);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        assert!(keys(&a).status.success());
    }
    for id in &old[2 * WRITERS..] {
        assert!(keys(&["revoke", id, "--dir", &s(d)]).status.success());
    }
    let dir_s = s(d);
    let mut jobs: Vec<Vec<String>> = Vec::new();
    for i in 0..WRITERS {
        jobs.push(issue(d, &format!("new{i}")));
        jobs.push(
            ["rotate", "--dir", &dir_s, "--guest", &old[i]]
                .map(str::to_owned)
                .to_vec(),
        );
        jobs.push(
            ["revoke", &old[WRITERS + i], "--dir", &dir_s]
                .map(str::to_owned)
                .to_vec(),
        );
        jobs.push(
            ["add-service", &format!("svc{i}"), "--dir", &dir_s]
                .map(str::to_owned)
                .to_vec(),
        );
        jobs.push(
            ["unrevoke", &old[2 * WRITERS + i], "--dir", &dir_s]
                .map(str::to_owned)
                .to_vec(),
        );
        jobs.push(
            ["rotate", "--dir", &dir_s, "--control"]
                .map(str::to_owned)
                .to_vec(),
        );
        jobs.push(
            ["rotate", "--dir", &dir_s, "--broadcast"]
                .map(str::to_owned)
                .to_vec(),
        );
    }
    wait_all(jobs.into_iter().map(spawn).collect());

    // Every operation commutes with the others, so any serial order gives this state.
    let t = state(d);
    for i in 0..WRITERS {
        assert_eq!(t.guest_epoch(&format!("new{i}")), Some(1), "new{i} issued");
        assert_eq!(t.guest_epoch(&old[i]), Some(2), "{} rotated", old[i]);
        assert!(
            t.is_revoked(&old[WRITERS + i]),
            "{} revoked",
            old[WRITERS + i]
        );
        assert!(!t.is_revoked(&old[i]));
        assert!(t.services().contains(&format!("svc{i}")), "svc{i} recorded");
        assert!(!t.is_revoked(&old[2 * WRITERS + i]), "unrevoked");
    }
    assert_eq!(t.guests().len(), 4 * WRITERS);
    assert_eq!(t.revoked().len(), WRITERS);
    assert_eq!(t.control_epoch(), 1 + WRITERS as u64);
    assert_eq!(t.broadcast_epoch(), 1 + WRITERS as u64);
    assert_eq!(t.services().len(), WRITERS + 1);
}
