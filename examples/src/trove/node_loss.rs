//! The node-loss phase (`--node-loss`, RabbitMQ cluster of
//! `rpc-amqp/scripts/rabbitmq-cluster.sh` only): the task manager calls every guest
//! without pause while the node the control plane is connected to stops its app and comes
//! back. The traffic goes on: calls/s before, during and after, the time from the loss to
//! the first successful call started after it, and the same transport reconnected.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealrpc_core::{Context, Target};

use super::api::{GetStatus, GuestReply, method};
use super::cluster::Cluster;
use super::{BoxError, Out};

/// The cluster script, next to this crate.
pub const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rpc-amqp/scripts/rabbitmq-cluster.sh"
);

const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// What the phase measured.
#[derive(Debug, Default)]
pub struct NodeLossReport {
    /// The node stopped (1-3).
    pub node: usize,
    /// Successful calls.
    pub ok: usize,
    /// Calls that failed retriably (in flight at the loss).
    pub retriable: usize,
    /// Calls that failed otherwise (must be 0).
    pub failed: usize,
    /// From the loss to the end of the first successful call started after it.
    pub recovery: Option<Duration>,
    /// The control plane's connection generation afterwards (2 or more: it reconnected).
    pub generation: u64,
}

impl NodeLossReport {
    /// Nothing failed for good, and calls succeeded again after the loss.
    pub fn success(&self) -> bool {
        self.failed == 0 && self.recovery.is_some() && self.generation >= 2
    }
}

async fn script(args: &[&str]) -> Result<(), BoxError> {
    let out = tokio::process::Command::new(SCRIPT)
        .args(args)
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "{SCRIPT} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// (started, finished, ok, retriable)
type Outcome = (Instant, Instant, bool, bool);

/// Runs the phase; prints its figures to `out`.
pub async fn run(cluster: &Cluster, out: Out<'_>) -> Result<NodeLossReport, BoxError> {
    let port = cluster
        .net
        .control_port()
        .ok_or("--node-loss needs RabbitMQ (the cluster of rabbitmq-cluster.sh)")?;
    let node = usize::from(
        port.checked_sub(5680)
            .ok_or("not a rabbitmq-cluster.sh node")?,
    );
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut lanes = tokio::task::JoinSet::new();
    for g in &cluster.guests {
        let client = cluster.taskmanager.client.clone();
        let target = Target::guest(cluster.net.topics.guestagent.clone(), g.id.clone());
        let (id, outcomes, stop) = (g.id.clone(), outcomes.clone(), stop.clone());
        lanes.spawn(async move {
            let prepared = client.prepare(target).timeout(CALL_TIMEOUT);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let args = GetStatus {
                    instance_id: id.clone(),
                    payload: vec![0x5a; 64],
                };
                let started = Instant::now();
                let r = prepared
                    .call::<_, GuestReply>(&Context::new(), method::GET_STATUS, &args)
                    .await;
                let retriable = r.as_ref().err().is_some_and(|e| e.is_retriable());
                if let Err(e) = &r
                    && !retriable
                {
                    tracing::warn!(error = %e, code = %e.code(), "node loss: a call failed for good");
                }
                let entry = (started, Instant::now(), r.is_ok(), retriable);
                outcomes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(entry);
                if r.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    let begin = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lost = Instant::now();
    let stopped = script(&["stop-app", &node.to_string()]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back_started = Instant::now();
    let started = script(&["start-app", &node.to_string()]).await;
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while lanes.join_next().await.is_some() {}
    stopped?;
    started?;

    let all = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    let rate = |from: Instant, to: Instant| {
        let n = all
            .iter()
            .filter(|o| o.2 && o.1 >= from && o.1 < to)
            .count();
        n as f64 / (to - from).as_secs_f64().max(1e-3)
    };
    let report = NodeLossReport {
        node,
        ok: all.iter().filter(|o| o.2).count(),
        retriable: all.iter().filter(|o| !o.2 && o.3).count(),
        failed: all.iter().filter(|o| !o.2 && !o.3).count(),
        recovery: all
            .iter()
            .filter(|o| o.2 && o.0 >= lost)
            .map(|o| o.1 - lost)
            .min(),
        generation: cluster.net.control_generation(),
    };
    let _ = writeln!(
        out,
        "  stopped c{node}@localhost (the control plane's node) with stop_app, {:.1} s later start_app ({:.1} s)",
        (back_started - lost).as_secs_f64(),
        (back - back_started).as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  taskmanager -> {} guests get_status: {:.0} calls/s before, {:.0} while c{node} was down and coming back, {:.0} after",
        cluster.guests.len(),
        rate(begin, lost),
        rate(lost, back),
        rate(back, end)
    );
    let _ = writeln!(
        out,
        "  {} ok, {} retriable errors (calls in flight at the loss), {} other failures; first successful call {} after the loss; control connection generation {} (reconnected, nothing rebuilt)",
        report.ok,
        report.retriable,
        report.failed,
        report
            .recovery
            .map_or("never".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        report.generation
    );
    Ok(report)
}
