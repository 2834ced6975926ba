//! Timeouts, deadlines (an expired request is never executed), late replies, in-flight
//! bounds and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use common::*;
use futures_util::future::BoxFuture;
use sealrpc_core::IncomingRequest;
use sealrpc_core::security::RejectReason;
use sealrpc_core::{Client, Context, Error, HandlerError, Server, ServerBuilder, Target};
use tokio::sync::Semaphore;

/// A server with `block` (waits for a permit of `gate`) and `work` (counts).
fn gated_server(
    t: &Arc<dyn sealrpc_core::transport::Transport>,
    gate: &Arc<Semaphore>,
    started: &Count,
    worked: &Count,
) -> ServerBuilder {
    let (gate, started, worked) = (Arc::clone(gate), started.clone(), worked.clone());
    Server::builder(Arc::clone(t), insecure("control:conductor"))
        .topic("jobs")
        .handler("block", move |_ctx: Context, (): ()| {
            let (gate, started) = (Arc::clone(&gate), started.clone());
            async move {
                started.hit();
                let _p = gate
                    .acquire()
                    .await
                    .map_err(|_| HandlerError::remote("closed"))?;
                Ok::<_, HandlerError>("done")
            }
        })
        .handler("work", move |_ctx: Context, (): ()| {
            worked.hit();
            async move { Ok::<_, HandlerError>("worked") }
        })
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn call_times_out_and_late_reply_is_dropped_and_counted() {
    let t = transport();
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let _s = gated_server(&t, &gate, &started, &worked)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .prepare(Target::new("jobs"))
        .timeout(Duration::from_millis(100))
        .call::<_, String>(&Context::new(), "block", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(err.is_retriable());
    assert_eq!(client.in_flight(), 0);
    gate.add_permits(1);
    let sec = Arc::clone(client.security());
    eventually("late reply counted", || {
        sec.counters().rejected_for(RejectReason::UnexpectedReply) == 1
    })
    .await;
}

#[tokio::test]
async fn queued_call_that_expires_is_never_executed() {
    let t = transport();
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let _s = gated_server(&t, &gate, &started, &worked)
        .max_concurrency(1)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    // Occupy the server's only slot.
    let blocker = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<_, String>(&Context::new(), &Target::new("jobs"), "block", &())
                .await
        })
    };
    eventually("blocker started", || started.get() == 1).await;
    // This call waits in the queue past its deadline.
    let err = client
        .prepare(Target::new("jobs"))
        .timeout(Duration::from_millis(100))
        .call::<_, String>(&Context::new(), "work", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    gate.add_permits(1);
    assert_eq!(blocker.await.unwrap().unwrap(), "done");
    // The server takes the expired call, refuses it, and answers (late) with `Expired`.
    let sec = Arc::clone(client.security());
    eventually("expired error reply reached the client", || {
        sec.counters().rejected_for(RejectReason::UnexpectedReply) == 1
    })
    .await;
    assert_eq!(worked.get(), 0, "an expired request must not run");
}

/// A server layer that delays every request before dispatch (as a busy queue would).
#[derive(Clone)]
struct Delay<S>(S, Duration);

impl<S> tower::Service<IncomingRequest> for Delay<S>
where
    S: tower::Service<IncomingRequest> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: IncomingRequest) -> Self::Future {
        let mut inner = self.0.clone();
        let delay = self.1;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            inner.call(req).await
        })
    }
}

#[tokio::test]
async fn deadline_is_checked_again_right_before_the_handler() {
    let t = transport();
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let delay = Duration::from_millis(300);
    let _s = gated_server(&t, &gate, &started, &worked)
        .layer(tower::layer::layer_fn(move |s| Delay(s, delay)))
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .prepare(Target::new("jobs"))
        .timeout(Duration::from_millis(100))
        .call::<_, String>(&Context::new(), "work", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let sec = Arc::clone(client.security());
    eventually("expired reply", || {
        sec.counters().rejected_for(RejectReason::UnexpectedReply) == 1
    })
    .await;
    assert_eq!(
        worked.get(),
        0,
        "admitted in time, expired in the layer: must not run"
    );
}

#[tokio::test]
async fn context_deadline_bounds_the_call() {
    let t = transport();
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let _s = gated_server(&t, &gate, &started, &worked)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let ctx = Context::new().with_timeout(Duration::from_millis(100));
    let err = client
        .call::<_, String>(&ctx, &Target::new("jobs"), "block", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    // Already past: fails without sending.
    let past = Context::new().with_deadline(std::time::SystemTime::now() - Duration::from_secs(1));
    let err = client
        .call::<_, String>(&past, &Target::new("jobs"), "work", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d.is_zero()), "{err:?}");
    assert_eq!(worked.get(), 0);
    gate.add_permits(1);
}

#[tokio::test]
async fn full_in_flight_table_fails_clearly_when_asked() {
    let t = transport();
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let _s = gated_server(&t, &gate, &started, &worked)
        .start()
        .await
        .unwrap();
    let client = Client::builder(Arc::clone(&t), insecure("control:api"))
        .max_in_flight(1)
        .fail_when_full(true)
        .build()
        .await
        .unwrap();
    let first = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<_, String>(&Context::new(), &Target::new("jobs"), "block", &())
                .await
        })
    };
    eventually("first call in flight", || started.get() == 1).await;
    let err = client
        .call::<_, String>(&Context::new(), &Target::new("jobs"), "work", &())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(_)) && err.is_retriable(),
        "{err:?}"
    );
    gate.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap(), "done");
    let again: String = client
        .call(&Context::new(), &Target::new("jobs"), "work", &())
        .await
        .unwrap();
    assert_eq!(again, "worked");
}

#[tokio::test]
async fn full_in_flight_table_makes_calls_wait_by_default() {
    let t = transport();
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let _s = gated_server(&t, &gate, &started, &worked)
        .start()
        .await
        .unwrap();
    let client = Client::builder(Arc::clone(&t), insecure("control:api"))
        .max_in_flight(1)
        .build()
        .await
        .unwrap();
    let first = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<_, String>(&Context::new(), &Target::new("jobs"), "block", &())
                .await
        })
    };
    eventually("first call in flight", || started.get() == 1).await;
    let second = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<_, String>(&Context::new(), &Target::new("jobs"), "work", &())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(worked.get(), 0, "the second call waits for a slot");
    gate.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap(), "done");
    assert_eq!(second.await.unwrap().unwrap(), "worked");
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls() {
    let t = transport();
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let server = gated_server(&t, &gate, &started, &worked)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let call = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<_, String>(&Context::new(), &Target::new("jobs"), "block", &())
                .await
        })
    };
    eventually("call in flight", || started.get() == 1).await;
    let shutdown = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the in-flight call"
    );
    // No longer consuming: new calls find no listener.
    let err = client
        .call::<_, String>(&Context::new(), &Target::new("jobs"), "work", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoListener(_)), "{err:?}");
    gate.add_permits(1);
    assert_eq!(call.await.unwrap().unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn call_to_a_server_that_stopped_reading_times_out() {
    // Queues of 1: once the server's only slot is stuck and its queue holds one message,
    // the next send waits for room. The call must still end at its timeout.
    let t: Arc<dyn sealrpc_core::transport::Transport> =
        Arc::new(sealrpc_core::MemoryTransport::with_capacity(1));
    let gate = Arc::new(Semaphore::new(0));
    let (started, worked) = (Count::default(), Count::default());
    let _s = gated_server(&t, &gate, &started, &worked)
        .max_concurrency(1)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let jobs = client
        .prepare(Target::new("jobs"))
        .timeout(Duration::from_millis(200));
    let mut calls = Vec::new();
    for _ in 0..4 {
        let jobs = jobs.clone();
        calls.push(tokio::spawn(async move {
            jobs.call::<_, String>(&Context::new(), "block", &()).await
        }));
    }
    for call in calls {
        let r = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("the call ends at its timeout, not when the queue has room")
            .unwrap();
        assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    }
    assert_eq!(client.in_flight(), 0);
    gate.add_permits(10);
}
