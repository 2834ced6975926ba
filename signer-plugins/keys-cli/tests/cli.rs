//! The `sealrpc-keys` binary, run in a temporary directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::process::{Command, Output};

fn keys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn init_twice_refuses_and_keeps_the_master() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("keys");
    let o = keys(&["init", "--dir", s(&d), "--service", "conductor"]);
    assert!(o.status.success(), "{}", text(&o));
    let master = std::fs::read(d.join("master.key")).unwrap();
    let o = keys(&["init", "--dir", s(&d)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("refusing to overwrite"), "{}", text(&o));
    assert_eq!(std::fs::read(d.join("master.key")).unwrap(), master);
}

#[cfg(unix)]
#[test]
fn world_readable_master_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        keys(&["init", "--dir", s(d), "--service", "conductor"])
            .status
            .success()
    );
    let mode = std::fs::metadata(d.join("master.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::set_permissions(d.join("master.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = keys(&["show", "--dir", s(d)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("too open"), "{}", text(&o));
}

#[test]
fn missing_and_corrupt_key_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = keys(&["show", "--dir", s(d)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no such file"), "{}", text(&o));

    assert!(
        keys(&["init", "--dir", s(d), "--service", "conductor"])
            .status
            .success()
    );
    std::fs::write(d.join("master.key"), "not hex at all\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("master.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    let o = keys(&["show", "--dir", s(d)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("corrupt"), "{}", text(&o));
}

#[test]
fn issue_rotate_revoke_show_never_print_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        keys(&[
            "init",
            "--dir",
            s(d),
            "--service",
            "conductor",
            "--service",
            "api"
        ])
        .status
        .success()
    );
    let bundle = d.join("guest-a.json");
    let o = keys(&["issue-guest", "abc", "--dir", s(d), "--out", s(&bundle)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = keys(&["issue-guest", "abc", "--dir", s(d), "--out", s(&bundle)]);
    assert!(!o.status.success(), "refuses to overwrite a bundle");
    assert!(
        keys(&["rotate", "--dir", s(d), "--guest", "abc"])
            .status
            .success()
    );
    assert!(
        keys(&["rotate", "--dir", s(d), "--control"])
            .status
            .success()
    );
    assert!(
        !keys(&["rotate", "--dir", s(d)]).status.success(),
        "rotate needs a target"
    );
    assert!(keys(&["revoke", "zzz", "--dir", s(d)]).status.success());

    let o = keys(&["show", "--dir", s(d)]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["control"]["epoch"]["epoch"], 2);
    assert_eq!(v["guests"][0]["instance_id"], "abc");
    assert_eq!(v["guests"][0]["epoch"]["epoch"], 2);
    assert_eq!(v["revoked"][0], "zzz");
    assert!(v["control"]["signing_keys"]["sig/control:api/2"].is_string());

    // No secret appears: not the master, not any key of the bundle.
    let master = std::fs::read_to_string(d.join("master.key")).unwrap();
    assert!(!out.contains(master.trim()));
    let b = sealrpc_signers::GuestBundle::load(&bundle).unwrap();
    for k in b.secret_keys().values() {
        assert!(!out.contains(k.to_hex().as_str()));
    }
}

#[test]
fn inspect_decodes_and_runs_the_pipeline() {
    use sealrpc_core::Version;
    use sealrpc_core::security::{Outbound, Peer};
    use sealrpc_core::wire::{Header, Kind, MessageId, RequestBody};
    use sealrpc_signers::{GuestBundle, GuestKeys};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        keys(&["init", "--dir", s(d), "--service", "conductor"])
            .status
            .success()
    );
    let bundle = d.join("g.json");
    assert!(
        keys(&["issue-guest", "g1", "--dir", s(d), "--out", s(&bundle)])
            .status
            .success()
    );
    let guest = GuestKeys::from_bundle(&GuestBundle::load(&bundle).unwrap()).unwrap();
    let sec = guest.security().build();
    let env = sec
        .seal_and_sign(Outbound {
            header: Header {
                id: MessageId::random(),
                kind: Kind::Cast,
                ts: sealrpc_core::security::now_ms(),
                ttl: None,
                src: String::new(),
                dst: "conductor".into(),
                corr: None,
                reply: None,
                seal: None,
            },
            body: RequestBody {
                method: "hello".into(),
                version: Version::new(1, 2),
                namespace: None,
                args: sealrpc_core::bytes::Bytes::from_static(&[0x81, 0xa1, 0x78, 0x01]),
                ctx: sealrpc_core::bytes::Bytes::from_static(&[0x80]),
                monitor: None,
            }
            .into(),
            peer: Peer::ControlPlane,
            carries_secret: false,
        })
        .unwrap();
    let file = d.join("env.bin");
    std::fs::write(&file, &env).unwrap();

    let o = keys(&["inspect", s(&file)]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["envelope"]["header"]["src"], "guest:g1");
    assert!(v["envelope"]["body"]["$sealed"].is_number());

    let o = keys(&[
        "inspect",
        s(&file),
        "--keys",
        s(d),
        "--as",
        "control:conductor",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"]["verdict"], "accept");
    assert_eq!(v["result"]["principal"], "guest:g1");
    assert_eq!(v["result"]["body"]["method"], "hello");
    assert_eq!(v["result"]["body"]["args"]["x"], 1);

    // Hex text works too; a tampered envelope is rejected with exit code 3.
    let mut bad = env.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    std::fs::write(&file, hex::encode(&bad)).unwrap();
    let o = keys(&[
        "inspect",
        s(&file),
        "--keys",
        s(d),
        "--as",
        "control:conductor",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"]["verdict"], "reject");
}
