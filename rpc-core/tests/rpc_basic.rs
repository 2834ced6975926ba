//! Call, cast, fanout, competing consumers, NoListener and the context, on the memory
//! transport (errors and versions: `rpc_errors.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sealrpc_core::{Context, Error, HandlerError, Server, Target};
use tokio::sync::mpsc;

async fn wait_for(count: &Count, n: usize) {
    for _ in 0..200 {
        if count.get() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("count stayed at {} (wanted {n})", count.get());
}

#[tokio::test]
async fn call_returns_typed_result() {
    let t = transport();
    let count = Count::default();
    let server = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let sum: i64 = client
        .call(
            &Context::new(),
            &Target::new("calc"),
            "add",
            &Add { a: 2, b: 40 },
        )
        .await
        .unwrap();
    assert_eq!(sum, 42);
    assert_eq!(count.get(), 1);
    assert_eq!(client.in_flight(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn call_with_unit_args_and_named_server() {
    let t = transport();
    let _server = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("calc")
        .server_name("host-1")
        .handler("ping", |ctx: Context, (): ()| async move {
            Ok::<_, HandlerError>(ctx.request_id().to_owned())
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let ctx = Context::new().with_request_id("req-fixed");
    let target = Target::new("calc").server("host-1");
    let id: String = client.call(&ctx, &target, "ping", &()).await.unwrap();
    assert_eq!(id, "req-fixed");
}

#[tokio::test]
async fn args_must_be_a_map() {
    let t = transport();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .call::<_, ()>(&Context::new(), &Target::new("calc"), "add", &5u32)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err:?}");
}

#[tokio::test]
async fn cast_is_handled_once() {
    let t = transport();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _server = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("events")
        .handler("notify", move |_ctx: Context, e: Echo| {
            let tx = tx.clone();
            async move {
                tx.send(e.text).unwrap();
                Ok::<_, HandlerError>(())
            }
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let echo = Echo {
        text: "hello".into(),
    };
    client
        .cast(&Context::new(), &Target::new("events"), "notify", &echo)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("hello"));
}

#[tokio::test]
async fn fanout_reaches_every_server() {
    let t = transport();
    let (c1, c2) = (Count::default(), Count::default());
    let s1 = basic_server(&t, insecure("control:a"), "calc", &c1)
        .start()
        .await
        .unwrap();
    let s2 = basic_server(&t, insecure("control:b"), "calc", &c2)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let target = Target::new("calc")
        .fanout(true)
        .peer(sealrpc_core::security::Peer::ControlPlane);
    client
        .cast(&Context::new(), &target, "add", &Add { a: 1, b: 1 })
        .await
        .unwrap();
    wait_for(&c1, 1).await;
    wait_for(&c2, 1).await;
    // A fanout target cannot be called.
    let err = client
        .call::<_, i64>(&Context::new(), &target, "add", &Add { a: 1, b: 1 })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)));
    s1.shutdown().await;
    s2.shutdown().await;
}

#[tokio::test]
async fn competing_consumers_share_the_load() {
    let t = transport();
    let (c1, c2) = (Count::default(), Count::default());
    let slow = |c: Count| {
        move |_ctx: Context, a: Add| {
            c.hit();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, HandlerError>(a.a + a.b)
            }
        }
    };
    let _s1 = Server::builder(Arc::clone(&t), insecure("control:a"))
        .topic("calc")
        .handler("add", slow(c1.clone()))
        .start()
        .await
        .unwrap();
    let _s2 = Server::builder(Arc::clone(&t), insecure("control:b"))
        .topic("calc")
        .handler("add", slow(c2.clone()))
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let target = Target::new("calc");
    let calls = (0..20).map(|i| {
        let (client, target) = (client.clone(), target.clone());
        async move {
            client
                .call::<_, i64>(&Context::new(), &target, "add", &Add { a: i, b: 1 })
                .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), i as i64 + 1);
    }
    assert_eq!(c1.get() + c2.get(), 20);
    assert!(c1.get() > 0 && c2.get() > 0, "{} / {}", c1.get(), c2.get());
}

#[tokio::test]
async fn no_listener_fails_fast() {
    let t = transport();
    let client = client(&t, insecure("control:api")).await;
    let started = Instant::now();
    let err = client
        .call::<_, i64>(
            &Context::new(),
            &Target::new("nobody"),
            "add",
            &Add { a: 1, b: 1 },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoListener(_)), "{err:?}");
    // Far below the 30 s default timeout (not a performance assertion: it must not wait).
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(client.in_flight(), 0);
    let err = client
        .cast(
            &Context::new(),
            &Target::new("nobody"),
            "add",
            &Add { a: 1, b: 1 },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoListener(_)), "{err:?}");
}

#[tokio::test]
async fn context_travels_and_principal_is_the_receivers() {
    let t = transport();
    let _s = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("ctx")
        .handler("show", |ctx: Context, (): ()| async move {
            let tenant: Option<String> = ctx.get("tenant").map_err(HandlerError::from)?;
            Ok::<_, HandlerError>((
                ctx.request_id().to_owned(),
                ctx.global_request_id().map(str::to_owned),
                ctx.correlation_ids().to_vec(),
                tenant,
                ctx.principal().map(|p| p.to_string()),
                ctx.deadline().is_some(),
            ))
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let ctx = Context::new()
        .with_request_id("req-1")
        .with_global_request_id("greq-1")
        .with_correlation_id("c-1")
        .with("tenant", "acme")
        .unwrap();
    let got: (
        String,
        Option<String>,
        Vec<String>,
        Option<String>,
        Option<String>,
        bool,
    ) = client
        .call(&ctx, &Target::new("ctx"), "show", &())
        .await
        .unwrap();
    assert_eq!(got.0, "req-1");
    assert_eq!(got.1.as_deref(), Some("greq-1"));
    assert_eq!(got.2, vec!["c-1".to_owned()]);
    assert_eq!(got.3.as_deref(), Some("acme"));
    // Policy Off: nothing proven, so no principal, whatever the sender claimed.
    assert_eq!(got.4, None);
    assert!(got.5, "the call's ttl becomes the server-side deadline");
}
