//! Trove-shaped traffic: the API asks the task manager to create one instance per guest
//! (a cast carrying a `Secret` password), the task manager calls each guest (`prepare`,
//! `create_database`, `create_user`), the guests report to the conductor (`heartbeat`,
//! `update_status`) and send a usage notification to the conductor's pool, then the task manager fans `refresh_config` out to every guest.

use std::time::{Duration, Instant};

use sealrpc_core::{Context, Secret, Target};

use super::api::{CreateInstance, RefreshConfig, method};
use super::cluster::Cluster;
use super::usage::USAGE;
use super::{BoxError, Out, wait_until};

/// What the traffic phase did.
#[derive(Debug)]
pub struct TrafficReport {
    /// Instances created.
    pub instances: usize,
    /// Instances that reached ACTIVE.
    pub active: usize,
    /// RPCs made so far (calls and casts of the demo's traffic).
    pub calls: u64,
    /// Failed RPCs so far.
    pub failures: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// The database passwords issued (so that tests can prove they never leak).
    pub passwords: Vec<Secret<String>>,
}

fn new_password() -> Secret<String> {
    let mut b = [0u8; 12];
    sealrpc_core::rand::fill(&mut b);
    Secret::new(format!(
        "pw-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

/// Runs the traffic phase, printing progress to `out`.
pub async fn run(cluster: &Cluster, out: Out<'_>) -> Result<TrafficReport, BoxError> {
    let started = Instant::now();
    let topics = &cluster.net.topics;
    let ledger = &cluster.ledger;
    let n = cluster.guests.len();
    let mut passwords = Vec::with_capacity(n);
    let tm = Target::new(topics.taskmanager.clone());
    for g in &cluster.guests {
        let password = new_password();
        let args = CreateInstance {
            instance_id: g.id.clone(),
            datastore: "mysql".into(),
            database: "orders".into(),
            user: "app".into(),
            password: password.clone(),
        };
        passwords.push(password);
        let ctx = Context::new();
        let r = cluster
            .api
            .client
            .cast(&ctx, &tm, method::CREATE_INSTANCE, &args)
            .await;
        ledger.rpc(r.is_ok());
        r?;
    }
    let _ = writeln!(
        out,
        "  api -> taskmanager: {n} x create_instance (cast, sealed K1, password as Secret)"
    );

    let mut rx = cluster.provisioned.lock().await;
    let mut done = 0;
    while done < n {
        let p = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .map_err(|_| "provisioning timed out")?
            .ok_or("task manager stopped")?;
        done += 1;
        let what = match &p.result {
            Ok(calls) => format!("{calls} calls ok (prepare, create_database, create_user)"),
            Err(e) => format!("FAILED: {e}"),
        };
        let _ = writeln!(out, "  [{done}/{n}] instance {} : {what}", p.instance_id);
        let _ = out.flush();
    }
    drop(rx);

    let all_active = || {
        cluster
            .guests
            .iter()
            .all(|g| ledger.status(&g.id).as_deref() == Some("ACTIVE"))
    };
    wait_until(Duration::from_secs(20), all_active).await;
    let active = cluster
        .guests
        .iter()
        .filter(|g| ledger.status(&g.id).as_deref() == Some("ACTIVE"))
        .count();
    let _ = writeln!(
        out,
        "  guests -> conductor: heartbeat + update_status (casts, K3 + guest signature): \
         {active}/{n} instances ACTIVE"
    );

    let reports = ledger.count_method(USAGE);
    for g in &cluster.guests {
        super::usage::emit(g, topics, 20).await?;
    }
    let want = reports + n as u64;
    wait_until(Duration::from_secs(20), || {
        ledger.count_method(USAGE) >= want
    })
    .await;
    let _ = writeln!(
        out,
        "  guests -> conductor pool: trove.instance.usage (notification, K3 + guest signature): \
         {}/{n} counted",
        ledger.count_method(USAGE) - reports
    );

    let before = ledger.count_method(method::REFRESH_CONFIG);
    let fanout = Target::new(topics.guestagent.clone()).fanout(true);
    let r = cluster
        .taskmanager
        .client
        .cast(
            &Context::new(),
            &fanout,
            method::REFRESH_CONFIG,
            &RefreshConfig { revision: 2 },
        )
        .await;
    ledger.rpc(r.is_ok());
    r?;
    let want = before + n as u64;
    wait_until(Duration::from_secs(20), || {
        ledger.count_method(method::REFRESH_CONFIG) >= want
    })
    .await;
    let refreshed = ledger.count_method(method::REFRESH_CONFIG) - before;
    let _ = writeln!(
        out,
        "  taskmanager -> all guests: refresh_config (fanout, KB + control-plane signature): \
         {refreshed}/{n} guests"
    );
    Ok(TrafficReport {
        instances: n,
        active,
        calls: ledger.calls(),
        failures: ledger.failures(),
        elapsed: started.elapsed(),
        passwords,
    })
}
