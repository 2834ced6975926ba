//! tower integration: layers around the client service and around server dispatch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use common::*;
use sealrpc_core::IncomingRequest;
use sealrpc_core::{CallRequest, Context, Error, HandlerError, Server, Target};
use tower::{Service, ServiceBuilder, ServiceExt};

#[tokio::test]
async fn client_service_under_a_tower_timeout() {
    let t = transport();
    let count = Count::default();
    let _s = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .handler("slow", |_ctx: Context, (): ()| async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, HandlerError>(())
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let mut svc = ServiceBuilder::new()
        .timeout(Duration::from_millis(100))
        .service(client.service());

    let req = CallRequest::new(
        &Context::new(),
        &Target::new("calc"),
        "add",
        &Add { a: 20, b: 22 },
    )
    .unwrap();
    let resp = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(resp.decode::<i64>().unwrap(), 42);

    let req = CallRequest::new(&Context::new(), &Target::new("calc"), "slow", &()).unwrap();
    let err = svc.ready().await.unwrap().call(req).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    // The cancelled call left nothing behind in the in-flight table.
    assert_eq!(client.in_flight(), 0);

    // Errors of the call itself pass through the layer intact.
    let req = CallRequest::new(&Context::new(), &Target::new("calc"), "nope", &()).unwrap();
    let err = svc.ready().await.unwrap().call(req).await.unwrap_err();
    let err = err.downcast::<Error>().unwrap();
    assert!(matches!(*err, Error::NoSuchMethod { .. }), "{err:?}");
}

/// A metrics layer: counts requests per outcome (never looks at argument values).
#[derive(Clone)]
struct Metrics<S> {
    inner: S,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl<S> Service<IncomingRequest> for Metrics<S>
where
    S: Service<IncomingRequest> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: IncomingRequest) -> Self::Future {
        let fut = self.inner.call(req);
        let (ok, failed) = (Arc::clone(&self.ok), Arc::clone(&self.failed));
        Box::pin(async move {
            let r = fut.await;
            if r.is_ok() {
                ok.fetch_add(1, Ordering::SeqCst)
            } else {
                failed.fetch_add(1, Ordering::SeqCst)
            };
            r
        })
    }
}

#[tokio::test]
async fn server_layers_wrap_dispatch() {
    let t = transport();
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (ok2, failed2) = (Arc::clone(&ok), Arc::clone(&failed));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (Arc::clone(&running), Arc::clone(&peak));
    let _s = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("calc")
        .max_concurrency(16)
        .layer(tower::layer::layer_fn(move |inner| Metrics {
            inner,
            ok: Arc::clone(&ok2),
            failed: Arc::clone(&failed2),
        }))
        .layer(tower::limit::ConcurrencyLimitLayer::new(2))
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
            500,
        )))
        .handler("work", move |_ctx: Context, (): ()| {
            let (r, p) = (Arc::clone(&r), Arc::clone(&p));
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(())
            }
        })
        .handler("hang", |_ctx: Context, (): ()| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, HandlerError>(())
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let calls = (0..8).map(|_| {
        let client = client.clone();
        async move {
            client
                .call::<_, ()>(&Context::new(), &Target::new("calc"), "work", &())
                .await
        }
    });
    for r in futures_util::future::join_all(calls).await {
        r.unwrap();
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "the concurrency limit layer bounds dispatch"
    );
    assert_eq!(ok.load(Ordering::SeqCst), 8);

    // The timeout layer's error becomes an error reply.
    let err = client
        .call::<_, ()>(&Context::new(), &Target::new("calc"), "hang", &())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Remote { code, .. } if code == "Remote"),
        "{err:?}"
    );
    assert_eq!(failed.load(Ordering::SeqCst), 1);
}
