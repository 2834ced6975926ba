//! The load driver shared by the load and rotation suites: a cluster of conductor servers,
//! guest agents and API clients on any transport, and workers that call (and cast) until
//! their count or the time limit is reached, recording every outcome.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealrpc_core::security::Security;
use sealrpc_core::transport::Transport;
use sealrpc_core::{Client, Context, Error, ServerHandle, Target};

use crate::cluster::{self, ConductorState, ControlKeys, Guest, Seq};

/// The shape of a run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Guest agents (each also a client of the conductor).
    pub guests: usize,
    /// Control-plane (API) clients calling guests and the conductor.
    pub cp_clients: usize,
    /// Conductor servers competing on the conductor topic.
    pub conductors: usize,
    /// Calls per worker (each guest and each API client is a worker).
    pub calls_per_worker: u64,
    /// Concurrent calls per worker.
    pub concurrency: usize,
    /// Workers stop starting calls after this long.
    pub time_limit: Duration,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Guests also cast `record` to the conductor after each call.
    pub casts: bool,
}

/// What one operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// API -> guest `ping`.
    ApiToGuest,
    /// API -> conductor `ping`.
    ApiToConductor,
    /// Guest -> conductor `report`.
    GuestToConductor,
    /// Guest -> conductor `record` cast.
    GuestCast,
}

/// One operation's outcome.
#[derive(Debug)]
pub struct Outcome {
    /// What it was.
    pub kind: OpKind,
    /// The guest involved (callee or caller).
    pub guest: Option<String>,
    /// The sequence number sent.
    pub seq: u64,
    /// When it started.
    pub started: Instant,
    /// How long it took.
    pub latency: Duration,
    /// Its error, if it failed.
    pub error: Option<Error>,
}

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Control-plane keys and rotation table.
    pub control: ControlKeys,
    /// The conductor topic.
    pub cond_topic: String,
    /// The guest agents' topic.
    pub guest_topic: String,
    /// The conductor node's security (shared by its servers).
    pub cond_security: Arc<Security>,
    /// The API node's security (shared by its clients).
    pub api_security: Arc<Security>,
    /// What the conductors saw.
    pub state: Arc<ConductorState>,
    /// The conductor servers.
    pub conductors: Vec<ServerHandle>,
    /// The guests.
    pub guests: Vec<Guest>,
    /// The API clients.
    pub api_clients: Vec<Client>,
    /// Operations completed so far (for triggering mid-load events).
    pub progress: Arc<AtomicU64>,
    /// Guests taken out of service (e.g. revoked): their own workers make at most
    /// [`RETIRED_OPS`] more calls, then stop.
    pub retired: Arc<Mutex<HashSet<String>>>,
}

/// Calls a retired guest's worker still makes (each must be refused).
pub const RETIRED_OPS: usize = 3;

impl Cluster {
    /// Starts everything: conductors and API clients on `control_transport`, guest `i` on
    /// `guest_transports[i % len]`.
    pub async fn start(
        spec: &LoadSpec,
        control_transport: &Arc<dyn Transport>,
        guest_transports: &[Arc<dyn Transport>],
    ) -> Self {
        let control = ControlKeys::new();
        let cond_topic = cluster::uniq("cond");
        let guest_topic = cluster::uniq("agent");
        let cond_security = control.conductor.security().build();
        let api_security = control.api.security().build();
        let state = Arc::new(ConductorState::default());
        let mut conductors = Vec::new();
        for _ in 0..spec.conductors.max(1) {
            conductors.push(
                cluster::conductor(control_transport, &cond_security, &cond_topic, &state).await,
            );
        }
        let mut guests = Vec::new();
        for (i, id) in cluster::guest_ids(spec.guests).iter().enumerate() {
            let t = &guest_transports[i % guest_transports.len()];
            guests.push(cluster::guest(t, &control, &guest_topic, id, 64).await);
        }
        let mut api_clients = Vec::new();
        for _ in 0..spec.cp_clients {
            api_clients.push(
                Client::builder(Arc::clone(control_transport), Arc::clone(&api_security))
                    .default_timeout(spec.timeout)
                    .build()
                    .await
                    .expect("api client"),
            );
        }
        Self {
            control,
            cond_topic,
            guest_topic,
            cond_security,
            api_security,
            state,
            conductors,
            guests,
            api_clients,
            progress: Arc::new(AtomicU64::new(0)),
            retired: Arc::default(),
        }
    }

    /// Runs every worker to its count or the time limit; returns every outcome.
    pub async fn drive(&self, spec: &LoadSpec) -> Vec<Outcome> {
        let deadline = Instant::now() + spec.time_limit;
        let mut tasks = tokio::task::JoinSet::new();
        let ids: Arc<Vec<String>> = Arc::new(self.guests.iter().map(|g| g.id.clone()).collect());
        for (w, client) in self.api_clients.iter().enumerate() {
            for lane in 0..spec.concurrency.max(1) {
                let job = Job {
                    client: client.clone(),
                    spec: spec.clone(),
                    deadline,
                    progress: Arc::clone(&self.progress),
                    retired: Arc::clone(&self.retired),
                    lane,
                };
                let (ids, gt, ct) = (
                    Arc::clone(&ids),
                    self.guest_topic.clone(),
                    self.cond_topic.clone(),
                );
                tasks.spawn(async move { job.api(w, &ids, &gt, &ct).await });
            }
        }
        for g in &self.guests {
            for lane in 0..spec.concurrency.max(1) {
                let job = Job {
                    client: g.client.clone(),
                    spec: spec.clone(),
                    deadline,
                    progress: Arc::clone(&self.progress),
                    retired: Arc::clone(&self.retired),
                    lane,
                };
                let (id, ct) = (g.id.clone(), self.cond_topic.clone());
                tasks.spawn(async move { job.guest(&id, &ct).await });
            }
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.expect("worker task"));
        }
        all
    }

    /// Calls in flight on every client (0 once every call has finished).
    pub fn in_flight(&self) -> usize {
        self.api_clients
            .iter()
            .map(Client::in_flight)
            .sum::<usize>()
            + self
                .guests
                .iter()
                .map(|g| g.client.in_flight())
                .sum::<usize>()
    }

    /// Stops every server (draining).
    pub async fn shutdown(mut self) {
        for s in self.conductors.drain(..) {
            s.shutdown().await;
        }
        for g in &mut self.guests {
            if let Some(s) = g.server.take() {
                s.shutdown().await;
            }
        }
    }
}

struct Job {
    client: Client,
    spec: LoadSpec,
    deadline: Instant,
    progress: Arc<AtomicU64>,
    retired: Arc<Mutex<HashSet<String>>>,
    lane: usize,
}

impl Job {
    /// This lane's sequence numbers: `lane, lane + c, lane + 2c, ...` below the count.
    fn seqs(&self) -> impl Iterator<Item = u64> + use<> {
        let c = self.spec.concurrency.max(1) as u64;
        (self.lane as u64..self.spec.calls_per_worker).step_by(c as usize)
    }

    fn done(&self, out: &mut Vec<Outcome>, o: Outcome) {
        self.progress.fetch_add(1, Ordering::Relaxed);
        out.push(o);
    }

    async fn api(
        &self,
        w: usize,
        ids: &[String],
        guest_topic: &str,
        cond_topic: &str,
    ) -> Vec<Outcome> {
        let mut out = Vec::new();
        let ctx = Context::new();
        let from = format!("api{w}");
        for seq in self.seqs() {
            if Instant::now() >= self.deadline {
                break;
            }
            let started = Instant::now();
            let args = Seq {
                from: from.clone(),
                seq,
            };
            let (kind, guest, target) = if ids.is_empty() || seq % 4 == 3 {
                (OpKind::ApiToConductor, None, Target::new(cond_topic))
            } else {
                let id = &ids[(w + seq as usize) % ids.len()];
                (
                    OpKind::ApiToGuest,
                    Some(id.clone()),
                    Target::guest(guest_topic, id.as_str()),
                )
            };
            let r = self
                .client
                .prepare(target)
                .timeout(self.spec.timeout)
                .call::<_, u64>(&ctx, "ping", &args)
                .await;
            let error = check(r, seq);
            self.done(
                &mut out,
                Outcome {
                    kind,
                    guest,
                    seq,
                    started,
                    latency: started.elapsed(),
                    error,
                },
            );
        }
        out
    }

    async fn guest(&self, id: &str, cond_topic: &str) -> Vec<Outcome> {
        let mut out = Vec::new();
        let ctx = Context::new();
        let target = Target::new(cond_topic);
        let mut after_retired = 0;
        for seq in self.seqs() {
            if Instant::now() >= self.deadline {
                break;
            }
            if self.retired.lock().expect("lock").contains(id) {
                if after_retired == RETIRED_OPS {
                    break;
                }
                after_retired += 1;
            }
            let args = Seq {
                from: id.to_owned(),
                seq,
            };
            let started = Instant::now();
            let r = self
                .client
                .prepare(target.clone())
                .timeout(self.spec.timeout)
                .call::<_, u64>(&ctx, "report", &args)
                .await;
            let error = check(r, seq);
            self.done(
                &mut out,
                Outcome {
                    kind: OpKind::GuestToConductor,
                    guest: Some(id.to_owned()),
                    seq,
                    started,
                    latency: started.elapsed(),
                    error,
                },
            );
            if self.spec.casts {
                let started = Instant::now();
                let r = self.client.cast(&ctx, &target, "record", &args).await;
                self.done(
                    &mut out,
                    Outcome {
                        kind: OpKind::GuestCast,
                        guest: Some(id.to_owned()),
                        seq,
                        started,
                        latency: started.elapsed(),
                        error: r.err(),
                    },
                );
            }
        }
        out
    }
}

/// A call's error, treating a wrong echo as a failure too.
fn check(r: Result<u64, Error>, seq: u64) -> Option<Error> {
    match r {
        Ok(v) if v == seq => None,
        Ok(v) => Some(Error::Invalid(format!("echo {v} for {seq}"))),
        Err(e) => Some(e),
    }
}

/// Prints a one-line report of `outcomes` (calls only) and returns (calls ok, failed).
pub fn report(label: &str, outcomes: &[Outcome], elapsed: Duration) -> (usize, usize) {
    let lat = crate::metrics::Latencies::default();
    let mut failed = 0;
    let mut calls = 0;
    let mut casts = 0;
    for o in outcomes {
        if o.kind == OpKind::GuestCast {
            casts += 1;
            continue;
        }
        calls += 1;
        match &o.error {
            None => lat.record(o.latency),
            Some(_) => failed += 1,
        }
    }
    println!(
        "[{label}] calls={calls} failed={failed} casts={casts} in {:.2}s: {:.0} calls/s, {}",
        elapsed.as_secs_f64(),
        crate::metrics::throughput(calls, elapsed),
        lat.summary()
    );
    (calls - failed, failed)
}
