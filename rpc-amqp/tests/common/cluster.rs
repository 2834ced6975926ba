//! Control of the local three-node RabbitMQ cluster (`rpc-amqp/scripts/rabbitmq-cluster.sh`)
//! for the cluster tests: start it (idempotent; a test that needs it fails loudly when it
//! cannot start, it never skips), kill, stop and restart nodes, find a quorum queue's
//! leader. Shared by `rpc-amqp/tests/cluster.rs` and `tests/tests/cluster_faults.rs`
//! (included by path). Node `n` (1-3) listens on AMQP port `5680 + n`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

/// The script, from either crate's manifest dir (`rpc-amqp/` or `tests/`).
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rpc-amqp/scripts/rabbitmq-cluster.sh"
);

/// The AMQP port of node `n`.
pub fn port(n: usize) -> u16 {
    5680 + u16::try_from(n).expect("node number")
}

/// The node (1-3) listening on `port`.
pub fn node_of_port(port: u16) -> usize {
    usize::from(port - 5680)
}

/// Runs the script with `args`; panics with its output if it fails.
pub fn script(args: &[&str]) -> String {
    let out = Command::new(SCRIPT)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "rabbitmq-cluster.sh {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Starts the cluster if it is not up (idempotent), or panics: the cluster tests need it.
pub fn ensure() {
    let out = Command::new(SCRIPT)
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
    assert!(
        out.status.success(),
        "the three-node RabbitMQ cluster could not start (these tests need it; run `{SCRIPT} \
         start` as root to see why):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The nodes' URLs, c1 first: `SEALRPC_CLUSTER_URLS` (comma-separated) if set, else the
/// script's defaults.
pub fn urls() -> Vec<String> {
    let list = std::env::var("SEALRPC_CLUSTER_URLS")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| {
            (1..=3)
                .map(|n| format!("amqp://guest:guest@127.0.0.1:{}/%2f", port(n)))
                .collect::<Vec<_>>()
                .join(",")
        });
    list.split(',').map(|s| s.trim().to_owned()).collect()
}

/// The URLs rotated so that node `first` comes first (a client that should start there).
pub fn urls_from(first: usize) -> Vec<String> {
    let mut u = urls();
    let n = u.len();
    u.rotate_left((first - 1) % n);
    u
}

/// `kill -9` of node `n`'s beam.smp.
pub fn kill(n: usize) {
    script(&["kill", &n.to_string()]);
}

/// `rabbitmqctl stop_app` on node `n`.
pub fn stop_app(n: usize) {
    script(&["stop-app", &n.to_string()]);
}

/// `rabbitmqctl start_app` on node `n` (waits until it accepts connections).
pub fn start_app(n: usize) {
    script(&["start-app", &n.to_string()]);
}

/// Starts node `n` again after [`kill`] (waits until it runs).
pub fn restart(n: usize) {
    script(&["restart", &n.to_string()]);
}

/// The node (1-3) leading quorum queue `queue`, polled for up to `bound`.
pub fn leader(queue: &str, bound: Duration) -> usize {
    let deadline = std::time::Instant::now() + bound;
    loop {
        let out = Command::new(SCRIPT)
            .args(["leader", queue])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Ok(n) = text.trim().parse::<usize>()
            && out.status.success()
        {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no leader for {queue}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Puts every node back (restart killed ones, start stopped apps), even after a panic.
pub struct Heal;

impl Drop for Heal {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("start").output();
    }
}

/// Deletes every queue and exchange whose name starts with the prefix (the cluster tests'
/// durable quorum queues outlive their consumers), even after a panic.
pub struct Purge(pub String);

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).args(["purge", &self.0]).output();
    }
}

/// SIGSTOP of node `n`'s beam.smp: it stops answering, its sockets stay open.
pub fn freeze(n: usize) {
    script(&["freeze", &n.to_string()]);
}

/// SIGCONT of node `n` when dropped (also after a panic), then waits for the cluster.
pub struct Thaw(pub usize);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT)
            .args(["thaw", &self.0.to_string()])
            .output();
        let _ = Command::new(SCRIPT).arg("start").output();
    }
}
