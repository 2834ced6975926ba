//! The reply loop's offload: which replies are admitted in tasks of their own, that they are
//! admitted concurrently, and that closing the inbox waits for them. The admission step is
//! a probe that records how many admissions are under way at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::{Barrier, Notify, mpsc};

use super::{Offload, admit_replies};
use crate::client::pending::{Pending, PendingGuard, Waiting};
use crate::layer::Inbound;
use crate::security::Peer;
use crate::transport::Delivery;
use crate::wire::MessageId;

const OFFLOAD: Offload = Offload {
    min_bytes: 16 * 1024,
    max_tasks: 4,
};

/// What an admission waits for before it finishes.
#[derive(Clone)]
enum Gate {
    /// Nothing: it finishes after letting other tasks run a few times.
    Open,
    /// Every `n` admissions wait for each other.
    Barrier(Arc<Barrier>),
    /// A release from the test.
    Release(Arc<Notify>),
}

/// Stands in for the admission service: counts admissions under way and done.
#[derive(Clone)]
struct Probe {
    gate: Gate,
    active: Arc<AtomicUsize>,
    most_active: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

impl Probe {
    fn new(gate: Gate) -> Self {
        Self {
            gate,
            active: Arc::default(),
            most_active: Arc::default(),
            done: Arc::default(),
        }
    }
}

impl tower::Service<Inbound> for Probe {
    type Response = ();
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _reply: Inbound) -> Self::Future {
        let probe = self.clone();
        Box::pin(async move {
            let now = probe.active.fetch_add(1, Ordering::SeqCst) + 1;
            probe.most_active.fetch_max(now, Ordering::SeqCst);
            match &probe.gate {
                Gate::Open => {
                    for _ in 0..8 {
                        tokio::task::yield_now().await;
                    }
                }
                Gate::Barrier(b) => {
                    b.wait().await;
                }
                Gate::Release(n) => n.notified().await,
            }
            probe.active.fetch_sub(1, Ordering::SeqCst);
            probe.done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// `calls` calls in flight (their guards keep them registered).
fn in_flight(pending: &Arc<Pending>, calls: usize) -> Vec<(PendingGuard, Waiting)> {
    (0..calls)
        .map(|_| {
            pending
                .register(MessageId::random(), Peer::ControlPlane, false)
                .unwrap()
        })
        .collect()
}

fn replies(sizes: &[usize]) -> mpsc::Receiver<Delivery> {
    let (tx, rx) = mpsc::channel(sizes.len().max(1));
    for &size in sizes {
        tx.try_send(Delivery::new(Bytes::from(vec![0u8; size])))
            .unwrap();
    }
    rx
}

#[tokio::test]
async fn large_replies_are_admitted_concurrently_while_other_calls_are_in_flight() {
    let pending = Arc::new(Pending::default());
    let _calls = in_flight(&pending, 3);
    // Each admission waits for another one to be under way: admitted one at a time, the
    // first would wait forever (the timeout only turns that into a failure).
    let probe = Probe::new(Gate::Barrier(Arc::new(Barrier::new(2))));
    let mut inbox = replies(&[64 * 1024, 64 * 1024, 20 * 1024, 16 * 1024]);
    let admitted = admit_replies(&mut inbox, probe.clone(), &pending, OFFLOAD);
    tokio::time::timeout(std::time::Duration::from_secs(30), admitted)
        .await
        .expect("the large replies were not admitted concurrently");
    assert_eq!(probe.done.load(Ordering::SeqCst), 4);
    assert!(probe.most_active.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn small_replies_and_a_lone_call_stay_in_the_loop() {
    // Small replies, with other calls in flight.
    let pending = Arc::new(Pending::default());
    let calls = in_flight(&pending, 3);
    let probe = Probe::new(Gate::Open);
    let mut inbox = replies(&[100, 16 * 1024 - 1, 1024, 8 * 1024]);
    admit_replies(&mut inbox, probe.clone(), &pending, OFFLOAD).await;
    assert_eq!(probe.done.load(Ordering::SeqCst), 4);
    assert_eq!(probe.most_active.load(Ordering::SeqCst), 1);

    // Large replies to the only call in flight.
    drop(calls);
    let _call = in_flight(&pending, 1);
    let probe = Probe::new(Gate::Open);
    let mut inbox = replies(&[64 * 1024, 64 * 1024, 1024 * 1024]);
    admit_replies(&mut inbox, probe.clone(), &pending, OFFLOAD).await;
    assert_eq!(probe.done.load(Ordering::SeqCst), 3);
    assert_eq!(probe.most_active.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn admissions_in_tasks_are_bounded() {
    let pending = Arc::new(Pending::default());
    let _calls = in_flight(&pending, 8);
    let release = Arc::new(Notify::new());
    let probe = Probe::new(Gate::Release(Arc::clone(&release)));
    let (tx, mut inbox) = mpsc::channel(16);
    let loop_probe = probe.clone();
    let pending_loop = Arc::clone(&pending);
    let admitting = tokio::spawn(async move {
        admit_replies(&mut inbox, loop_probe, &pending_loop, OFFLOAD).await;
    });
    // One more than the tasks allowed: the last one is admitted in the loop, which then
    // waits for it like the tasks do.
    for _ in 0..=OFFLOAD.max_tasks {
        tx.send(Delivery::new(Bytes::from(vec![0u8; 32 * 1024])))
            .await
            .unwrap();
    }
    while probe.active.load(Ordering::SeqCst) < OFFLOAD.max_tasks + 1 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        probe.most_active.load(Ordering::SeqCst),
        OFFLOAD.max_tasks + 1
    );
    drop(tx);
    while probe.done.load(Ordering::SeqCst) < OFFLOAD.max_tasks + 1 {
        release.notify_waiters();
        tokio::task::yield_now().await;
    }
    admitting.await.unwrap();
}

#[tokio::test]
async fn closing_the_inbox_waits_for_the_replies_admitted_in_tasks() {
    let pending = Arc::new(Pending::default());
    let _calls = in_flight(&pending, 2);
    let release = Arc::new(Notify::new());
    let probe = Probe::new(Gate::Release(Arc::clone(&release)));
    // The inbox is closed already: one large reply is all that is left in it.
    let mut inbox = replies(&[64 * 1024]);
    let loop_probe = probe.clone();
    let admitting = tokio::spawn(async move {
        admit_replies(&mut inbox, loop_probe, &pending, OFFLOAD).await;
    });
    while probe.active.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    assert!(
        !admitting.is_finished(),
        "the loop ended before the reply admitted in a task"
    );
    release.notify_one();
    admitting.await.unwrap();
    assert_eq!(probe.done.load(Ordering::SeqCst), 1);
}
