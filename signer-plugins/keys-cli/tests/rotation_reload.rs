//! Live reload of the rotation state (defect 5 of issue 11): a conductor serving on the
//! in-memory transport with keys from a key directory, guests with their bundle files.
//! `sealrpc-keys revoke` (the real binary) takes effect in the running conductor within
//! the bound, with no restart; a corrupt or insecure state written meanwhile changes
//! nothing (it never fails open) and is counted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealrpc_core::security::Security;
use sealrpc_core::security::{KeyError, RejectReason};
use sealrpc_core::transport::Transport;
use sealrpc_core::{
    Client, Context, Error, HandlerError, MemoryTransport, Server, ServerHandle, Target,
};
use sealrpc_signers::{
    ControlPlaneKeys, GuestBundle, GuestKeys, ReloadStats, RotationFile, RotationWatcher,
    WatchOptions,
};

/// Longest the test waits for anything (generous: the machine is shared).
const PATIENCE: Duration = Duration::from_secs(20);
/// Per-call timeout: a refused guest gets no reply (it cannot be sealed to).
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// The arguments of `ping`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Ping {
    n: u64,
}

fn keys(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_sealrpc-keys"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

async fn serve_ping(
    transport: &Arc<dyn Transport>,
    security: &Arc<Security>,
    topic: &str,
    server: Option<&str>,
) -> ServerHandle {
    let b = Server::builder(Arc::clone(transport), Arc::clone(security)).topic(topic);
    let b = match server {
        Some(name) => b.server_name(name).shared(false),
        None => b,
    };
    b.fanout(false)
        .handler("ping", |_ctx: Context, a: Ping| async move {
            Ok::<_, HandlerError>(a.n)
        })
        .start()
        .await
        .unwrap()
}

struct GuestNode {
    client: Client,
    _agent: ServerHandle,
}

async fn guest(transport: &Arc<dyn Transport>, bundle: &Path, id: &str) -> GuestNode {
    let keys = GuestKeys::from_bundle(&GuestBundle::load(bundle).unwrap()).unwrap();
    let security = keys.security().build();
    let agent = serve_ping(transport, &security, "guestagent", Some(id)).await;
    let client = Client::builder(Arc::clone(transport), security)
        .build()
        .await
        .unwrap();
    GuestNode {
        client,
        _agent: agent,
    }
}

async fn ping_conductor(g: &GuestNode) -> Result<u64, Error> {
    g.client
        .prepare(Target::new("conductor"))
        .timeout(CALL_TIMEOUT)
        .call(&Context::new(), "ping", &Ping { n: 7 })
        .await
}

async fn ping_guest(api: &Client, id: &str) -> Result<u64, Error> {
    api.prepare(Target::guest("guestagent", id))
        .timeout(CALL_TIMEOUT)
        .call(&Context::new(), "ping", &Ping { n: 9 })
        .await
}

/// Waits (bounded) until `done` holds for the watcher's stats.
async fn until(watcher: &RotationWatcher, done: impl Fn(ReloadStats) -> bool) -> Duration {
    let t0 = Instant::now();
    while !done(watcher.stats()) {
        assert!(t0.elapsed() < PATIENCE, "stuck at {:?}", watcher.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_revocation_reaches_a_running_conductor_and_bad_state_never_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ds = d.to_str().unwrap();
    keys(&[
        "init",
        "--dir",
        ds,
        "--service",
        "conductor",
        "--service",
        "api",
    ]);
    let (good, bad) = ("good-7f3a", "bad-0b1c");
    for id in [good, bad] {
        let out = d.join(format!("{id}.json"));
        keys(&[
            "issue-guest",
            id,
            "--dir",
            ds,
            "--out",
            out.to_str().unwrap(),
        ]);
    }

    // The control plane: keys from the directory, the watcher at its default interval.
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let conductor_keys = ControlPlaneKeys::from_dir(d, "conductor").unwrap();
    let watcher = RotationWatcher::start_for_keys(
        &conductor_keys,
        RotationFile::new(d),
        WatchOptions::default(),
    )
    .unwrap();
    let cond_security = conductor_keys.security().build();
    let _conductor = serve_ping(&transport, &cond_security, "conductor", None).await;
    let api = Client::builder(
        Arc::clone(&transport),
        conductor_keys
            .for_service("api")
            .unwrap()
            .security()
            .build(),
    )
    .build()
    .await
    .unwrap();

    let g_good = guest(&transport, &d.join(format!("{good}.json")), good).await;
    let g_bad = guest(&transport, &d.join(format!("{bad}.json")), bad).await;
    assert_eq!(ping_conductor(&g_good).await.unwrap(), 7);
    assert_eq!(ping_conductor(&g_bad).await.unwrap(), 7);
    assert_eq!(ping_guest(&api, bad).await.unwrap(), 9);

    // 1. Revoke with the CLI; the conductor is not restarted.
    keys(&["revoke", bad, "--dir", ds]);
    let revoked_before = cond_security
        .counters()
        .rejected_for(RejectReason::RevokedKey);
    let latency = until(&watcher, |s| s.applied >= 1).await;
    println!("revocation applied after {latency:?} (bound: interval 1 s + one read)");
    // The guest's next call is refused by the conductor (it gets no reply: nothing can be
    // sealed to a revoked guest).
    let refused = ping_conductor(&g_bad).await;
    assert!(matches!(refused, Err(Error::Timeout(_))), "{refused:?}");
    assert_eq!(watcher.stats().applied, 1);
    assert!(
        cond_security
            .counters()
            .rejected_for(RejectReason::RevokedKey)
            > revoked_before,
        "refused as revoked_key: {:?}",
        cond_security.counters()
    );
    // The control plane no longer seals to it either; the other guest is untouched.
    assert!(
        matches!(
            ping_guest(&api, bad).await,
            Err(Error::Security(KeyError::Revoked))
        ),
        "a call to the revoked guest is refused at once"
    );
    assert_eq!(ping_conductor(&g_good).await.unwrap(), 7);

    // 2. A corrupt state (a half-written file, say) keeps the old one, counted.
    let state = d.join("rotation.json");
    let valid = std::fs::read(&state).unwrap();
    std::fs::write(&state, b"{\"format\": \"sealrpc-rotation-v1\", \"revok").unwrap();
    until(&watcher, |s| s.failed >= 1 && s.failing).await;
    assert_eq!(ping_conductor(&g_good).await.unwrap(), 7, "old state kept");
    assert!(ping_conductor(&g_bad).await.is_err(), "still revoked");

    // 3. An un-revocation in a file others may write is refused too (never fails open).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut unrevoked: serde_json::Value = serde_json::from_slice(&valid).unwrap();
        unrevoked["revoked"] = serde_json::json!([]);
        std::fs::write(&state, unrevoked.to_string()).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o666)).unwrap();
        let failed = watcher.stats().failed;
        until(&watcher, |s| s.failed > failed).await;
        assert!(ping_conductor(&g_bad).await.is_err(), "still revoked");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(&state, &valid).unwrap();
    until(&watcher, |s| !s.failing).await;
    assert_eq!(
        watcher.stats().applied,
        1,
        "the same state again is no change"
    );

    // 4. The CLI lifts the revocation: applied live as well.
    keys(&["unrevoke", bad, "--dir", ds]);
    until(&watcher, |s| s.applied >= 2).await;
    assert_eq!(ping_conductor(&g_bad).await.unwrap(), 7);
    assert_eq!(ping_guest(&api, bad).await.unwrap(), 9);
}

#[tokio::test]
async fn a_service_does_not_start_on_an_unreadable_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(&[
        "init",
        "--dir",
        d.to_str().unwrap(),
        "--service",
        "conductor",
    ]);
    let k = ControlPlaneKeys::from_dir(d, "conductor").unwrap();
    std::fs::write(d.join("rotation.json"), b"garbage").unwrap();
    let err = RotationWatcher::start_for_keys(&k, RotationFile::new(d), WatchOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn the_watcher_needs_a_runtime_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(&[
        "init",
        "--dir",
        d.to_str().unwrap(),
        "--service",
        "conductor",
    ]);
    let k = ControlPlaneKeys::from_dir(d, "conductor").unwrap();
    let err = RotationWatcher::start_for_keys(&k, RotationFile::new(d), WatchOptions::default())
        .unwrap_err();
    assert!(matches!(err, sealrpc_signers::Error::NoRuntime), "{err}");
}
