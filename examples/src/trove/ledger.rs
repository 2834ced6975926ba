//! What ran: how many times each handler executed on each node, how many requests the
//! authorization in code refused, and the conductor's view of each instance's status. The
//! attack table reads it to prove that nothing executed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Execution counts and instance statuses, shared by every node of a cluster.
#[derive(Debug, Default)]
pub struct Ledger {
    executed: Mutex<BTreeMap<String, u64>>,
    denied: Mutex<BTreeMap<String, u64>>,
    status: Mutex<BTreeMap<String, String>>,
    calls: AtomicU64,
    failures: AtomicU64,
    heartbeats_sent: AtomicU64,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: String) {
    *map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default() += 1;
}

impl Ledger {
    /// An RPC (call or cast) was made by the demo's traffic; `ok` says whether it succeeded.
    pub fn rpc(&self, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A guest's heartbeat cast was accepted by the transport.
    pub fn heartbeat_sent(&self) {
        self.heartbeats_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Heartbeat casts the guests' traffic has sent so far.
    pub fn heartbeats_sent(&self) -> u64 {
        self.heartbeats_sent.load(Ordering::Relaxed)
    }

    /// RPCs made by the demo's traffic.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Failed RPCs of the demo's traffic.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// A handler ran: `node` (e.g. `guest:7f3a0c2e`) executed `method`.
    pub fn executed(&self, node: &str, method: &str) {
        bump(&self.executed, format!("{node} {method}"));
    }

    /// The authorization in code refused `method` on `node`.
    pub fn denied(&self, node: &str, method: &str) {
        bump(&self.denied, format!("{node} {method}"));
    }

    /// Total handler executions (every node, every method).
    pub fn total_executed(&self) -> u64 {
        self.executed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Executions of `method` on `node`.
    pub fn count(&self, node: &str, method: &str) -> u64 {
        self.executed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&format!("{node} {method}"))
            .copied()
            .unwrap_or(0)
    }

    /// Executions of `method` on every node.
    pub fn count_method(&self, method: &str) -> u64 {
        self.executed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(k, _)| k.rsplit(' ').next() == Some(method))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Waits (at most `limit`) until no handler has run for `quiet`: legitimate work a row
    /// set off (a provisioning's trailing status casts) must not land in the next row's
    /// window, where any execution counts as the attack's.
    pub async fn settle(&self, quiet: std::time::Duration, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut last = self.total_executed();
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(quiet).await;
            let now = self.total_executed();
            if now == last {
                return;
            }
            last = now;
        }
    }

    /// Refusals by the authorization in code, every node and method.
    pub fn total_denied(&self) -> u64 {
        self.denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// The conductor records `instance_id`'s status.
    pub fn set_status(&self, instance_id: &str, status: &str) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(instance_id.to_owned(), status.to_owned());
    }

    /// The status the conductor holds for `instance_id`.
    pub fn status(&self, instance_id: &str) -> Option<String> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance_id)
            .cloned()
    }
}
