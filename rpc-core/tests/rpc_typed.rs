//! Typed descriptors (`rpc!`) end to end on the memory transport: call, cast, `authorize`
//! and `access` through the descriptor, and shared handler state. Interop with the string
//! form, versions and `Node` are in rpc_typed_interop.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sealrpc_core::transport::Transport;
use sealrpc_core::{Access, Caller, Context, Error, ErrorCode, HandlerError, Server, Target, rpc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Status {
    instance_id: String,
    status: String,
}

rpc! {
    /// `add` in the default namespace, version 1.0.
    struct AddRpc = "add"(Add) -> i64;
    /// `echo`, same.
    struct EchoRpc = "echo"(Echo) -> String;
    /// A status report, authorized on its arguments.
    struct UpdateStatus = "update_status"(Status) -> String;
    /// Control plane only, by a caller check.
    struct Admin = "admin"(()) -> ();
    /// A cast.
    struct Bump = "bump"(By) -> ();
}

#[derive(Debug, Serialize, Deserialize)]
struct By {
    by: usize,
}

fn status(id: &str) -> Status {
    Status {
        instance_id: id.into(),
        status: "ACTIVE".into(),
    }
}

fn forbidden(err: &Error) -> bool {
    matches!(
        err,
        Error::Rejected {
            code: ErrorCode::Forbidden,
            ..
        }
    )
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn typed_call_infers_args_and_reply() {
    let t = transport();
    let _s = Server::builder(Arc::clone(&t), insecure("control:calc"))
        .topic("calc")
        .handler(AddRpc, |_ctx, a| async move { Ok(a.a + a.b) })
        .handler(EchoRpc, |_ctx, e| async move { Ok(e.text) })
        .start()
        .await
        .unwrap();
    let c = client(&t, insecure("control:api")).await;
    let (ctx, calc) = (Context::new(), Target::new("calc"));
    let sum = c
        .call(&ctx, &calc, AddRpc, &Add { a: 2, b: 3 })
        .await
        .unwrap();
    assert_eq!(sum, 5);
    let text = Echo { text: "hi".into() };
    assert_eq!(c.call(&ctx, &calc, EchoRpc, &text).await.unwrap(), "hi");
    let prepared = c.prepare(calc).timeout(Duration::from_secs(5));
    let sum = prepared
        .call(&ctx, AddRpc, &Add { a: 1, b: 1 })
        .await
        .unwrap();
    assert_eq!(sum, 2);
}

#[tokio::test]
async fn typed_cast_reaches_a_stateful_handler() {
    let t = transport();
    let total = Arc::new(AtomicUsize::new(0));
    let _s = Server::builder(Arc::clone(&t), insecure("control:counter"))
        .topic("counter")
        .with_state(Arc::clone(&total))
        .handler(Bump, |total, _ctx, b| async move {
            total.fetch_add(b.by, Ordering::SeqCst);
            Ok(())
        })
        .start()
        .await
        .unwrap();
    let c = client(&t, insecure("control:api")).await;
    let target = Target::new("counter");
    for by in [1, 2, 3] {
        c.cast(&Context::new(), &target, Bump, &By { by })
            .await
            .unwrap();
    }
    c.prepare(target)
        .cast(&Context::new(), Bump, &By { by: 4 })
        .await
        .unwrap();
    wait_until("four casts", || total.load(Ordering::SeqCst) == 10).await;
}

/// What every handler of the stateful server below shares.
#[derive(Default)]
struct App {
    hits: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

#[tokio::test]
async fn state_is_one_instance_for_every_handler_and_request() {
    let t = transport();
    let app = Arc::new(App::default());
    let _s = Server::builder(Arc::clone(&t), insecure("control:app"))
        .topic("app")
        .with_state(Arc::clone(&app))
        .handler(AddRpc, |app, _ctx, a| async move {
            app.hits.fetch_add(1, Ordering::SeqCst);
            Ok(a.a + a.b)
        })
        .handler(EchoRpc, |app, _ctx, e| async move {
            app.hits.fetch_add(1, Ordering::SeqCst);
            app.seen.lock().unwrap().push(e.text.clone());
            Ok(e.text)
        })
        // The string form gets the state too.
        .handler("hits", |app: Arc<App>, _ctx: Context, (): ()| async move {
            Ok::<_, HandlerError>(app.hits.load(Ordering::SeqCst))
        })
        .start()
        .await
        .unwrap();
    let c = client(&t, insecure("control:api")).await;
    let target = Target::new("app");
    let calls = (0..8).map(|i| {
        let (c, target) = (c.clone(), target.clone());
        async move {
            let ctx = Context::new();
            c.call(&ctx, &target, AddRpc, &Add { a: i, b: 1 }).await?;
            let echo = Echo {
                text: format!("m{i}"),
            };
            c.call(&ctx, &target, EchoRpc, &echo).await
        }
    });
    for r in futures_util::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(app.hits.load(Ordering::SeqCst), 16);
    assert_eq!(app.seen.lock().unwrap().len(), 8);
    let hits: usize = c.call(&Context::new(), &target, "hits", &()).await.unwrap();
    assert_eq!(
        hits, 16,
        "the string-registered handler sees the same state"
    );
}

/// The conductor of rpc_authz.rs, registered through descriptors.
async fn typed_conductor(t: &Arc<dyn Transport>, ran: &Count) -> sealrpc_core::ServerHandle {
    Server::builder(Arc::clone(t), secure("control:conductor"))
        .topic("conductor")
        .default_access(Access::Authenticated)
        .with_state(ran.clone())
        .handler(UpdateStatus, |ran, ctx, s| async move {
            ran.hit();
            let by = ctx.principal().map(|p| p.to_string()).unwrap_or_default();
            Ok(format!("{} is {} (by {by})", s.instance_id, s.status))
        })
        // No annotations: the check's argument type is the descriptor's.
        .authorize(UpdateStatus, |caller, s| {
            caller.is_control_plane() || caller.is_guest(&s.instance_id)
        })
        .handler(Admin, |ran, _ctx, ()| async move {
            ran.hit();
            Ok(())
        })
        .authorize_caller(Admin, Caller::is_control_plane)
        .handler(EchoRpc, |_ran, _ctx, e| async move { Ok(e.text) })
        .access(EchoRpc, Access::ControlPlane)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn authorize_through_the_descriptor() {
    let t = transport();
    let ran = Count::default();
    let _s = typed_conductor(&t, &ran).await;
    let guest = client(&t, secure("guest:g1")).await;
    let target = Target::new("conductor");

    let ok = guest
        .call(&Context::new(), &target, UpdateStatus, &status("g1"))
        .await
        .unwrap();
    assert_eq!(ok, "g1 is ACTIVE (by guest:g1)");
    assert_eq!(ran.get(), 1);

    let err = guest
        .call(&Context::new(), &target, UpdateStatus, &status("g2"))
        .await
        .unwrap_err();
    assert!(forbidden(&err), "{err:?}");
    let err = guest
        .call(&Context::new(), &target, Admin, &())
        .await
        .unwrap_err();
    assert!(forbidden(&err), "{err:?}");
    let hi = Echo { text: "hi".into() };
    let err = guest
        .call(&Context::new(), &target, EchoRpc, &hi)
        .await
        .unwrap_err();
    assert!(forbidden(&err), "access override: {err:?}");
    assert_eq!(ran.get(), 1, "a forbidden call must not run its handler");

    let api = client(&t, secure("control:api")).await;
    let ok = api
        .call(&Context::new(), &target, UpdateStatus, &status("g2"))
        .await
        .unwrap();
    assert_eq!(ok, "g2 is ACTIVE (by control:api)");
    api.call(&Context::new(), &target, Admin, &())
        .await
        .unwrap();
    assert_eq!(
        api.call(&Context::new(), &target, EchoRpc, &hi)
            .await
            .unwrap(),
        "hi"
    );
    assert_eq!(ran.get(), 3);
}
