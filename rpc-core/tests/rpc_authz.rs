//! Authorization in code (per method, on the proven caller and the arguments), server-wide
//! access defaults, and who may answer a call. Uses toy signing/sealing hooks so that
//! principals are really proven by the security pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sealrpc_core::security::RejectReason;
use sealrpc_core::{
    Access, Caller, Context, Error, ErrorCode, HandlerError, Method, Server, Target,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Status {
    instance_id: String,
    status: String,
}

/// The conductor: `update_status` may be called by the control plane or by the guest the
/// status is about; `ping` by anyone authenticated; `admin` by the control plane only.
async fn conductor(
    t: &Arc<dyn sealrpc_core::transport::Transport>,
    count: &Count,
) -> sealrpc_core::ServerHandle {
    let (c1, c2) = (count.clone(), count.clone());
    Server::builder(Arc::clone(t), secure("control:conductor"))
        .topic("conductor")
        .default_access(Access::Authenticated)
        .method(
            Method::new("update_status", move |ctx: Context, s: Status| {
                c1.hit();
                async move {
                    let by = ctx.principal().map(|p| p.to_string()).unwrap_or_default();
                    Ok::<_, HandlerError>(format!("{} is {} (by {by})", s.instance_id, s.status))
                }
            })
            .authorize(|caller: &Caller, s: &Status| {
                caller.is_control_plane() || caller.is_guest(&s.instance_id)
            }),
        )
        .handler("admin", move |_ctx: Context, (): ()| {
            c2.hit();
            async move { Ok::<_, HandlerError>(()) }
        })
        .authorize_caller("admin", Caller::is_control_plane)
        .handler("ping", |_ctx: Context, (): ()| async move {
            Ok::<_, HandlerError>("pong")
        })
        .start()
        .await
        .unwrap()
}

fn status(id: &str) -> Status {
    Status {
        instance_id: id.into(),
        status: "ACTIVE".into(),
    }
}

#[tokio::test]
async fn guest_may_update_only_itself() {
    let t = transport();
    let count = Count::default();
    let _s = conductor(&t, &count).await;
    let guest = client(&t, secure("guest:g1")).await;
    let target = Target::new("conductor");

    let ok: String = guest
        .call(&Context::new(), &target, "update_status", &status("g1"))
        .await
        .unwrap();
    assert_eq!(ok, "g1 is ACTIVE (by guest:g1)");
    assert_eq!(count.get(), 1);

    let err = guest
        .call::<_, String>(&Context::new(), &target, "update_status", &status("g2"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(count.get(), 1, "a forbidden call must not run its handler");

    let err = guest
        .call::<_, ()>(&Context::new(), &target, "admin", &())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(count.get(), 1);

    let pong: String = guest
        .call(&Context::new(), &target, "ping", &())
        .await
        .unwrap();
    assert_eq!(pong, "pong");
}

#[tokio::test]
async fn control_plane_may_update_any_guest() {
    let t = transport();
    let count = Count::default();
    let _s = conductor(&t, &count).await;
    let api = client(&t, secure("control:api")).await;
    let target = Target::new("conductor");
    let ok: String = api
        .call(&Context::new(), &target, "update_status", &status("g7"))
        .await
        .unwrap();
    assert_eq!(ok, "g7 is ACTIVE (by control:api)");
    api.call::<_, ()>(&Context::new(), &target, "admin", &())
        .await
        .unwrap();
    assert_eq!(count.get(), 2);
}

#[tokio::test]
async fn require_authenticated_refuses_unauthenticated_callers() {
    let t = transport();
    let count = Count::default();
    let _s = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .default_access(Access::Authenticated)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .call::<_, i64>(
            &Context::new(),
            &Target::new("calc"),
            "add",
            &Add { a: 1, b: 2 },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(count.get(), 0);
}

#[tokio::test]
async fn authorize_on_arguments_with_the_plain_builder() {
    let t = transport();
    let count = Count::default();
    let _s = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .authorize("add", |_caller: &Caller, a: &Add| a.a >= 0 && a.b >= 0)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let sum: i64 = client
        .call(
            &Context::new(),
            &Target::new("calc"),
            "add",
            &Add { a: 1, b: 2 },
        )
        .await
        .unwrap();
    assert_eq!(sum, 3);
    let err = client
        .call::<_, i64>(
            &Context::new(),
            &Target::new("calc"),
            "add",
            &Add { a: -1, b: 2 },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(count.get(), 1);
}

#[tokio::test]
async fn authorize_with_the_wrong_type_or_method_fails_at_start() {
    let t = transport();
    let count = Count::default();
    let err = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .authorize("add", |_caller: &Caller, _e: &Echo| true)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let err = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .authorize_caller("nope", |_caller: &Caller| true)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let err = Server::builder(Arc::clone(&t), insecure("control:x"))
        .handler("a", |_ctx: Context, (): ()| async move {
            Ok::<_, HandlerError>(())
        })
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "no topic: {err:?}");
}

#[tokio::test]
async fn guest_target_is_sealed_for_and_answered_by_that_guest_only() {
    let t = transport();
    let count = Count::default();
    // The real guest g1.
    let c = count.clone();
    let _g1 = Server::builder(Arc::clone(&t), secure("guest:g1"))
        .topic("guestagent")
        .server_name("g1")
        .shared(false)
        .handler("whoami", move |ctx: Context, (): ()| {
            c.hit();
            async move { Ok::<_, HandlerError>(ctx.principal().map(|p| p.to_string())) }
        })
        .start()
        .await
        .unwrap();
    // An impostor, guest g2, listening under the name g3.
    let _impostor = Server::builder(Arc::clone(&t), secure("guest:g2"))
        .topic("guestagent")
        .server_name("g3")
        .shared(false)
        .handler("whoami", |_ctx: Context, (): ()| async move {
            Ok::<_, HandlerError>(Some("impostor".to_owned()))
        })
        .start()
        .await
        .unwrap();
    let api = client(&t, secure("control:taskmanager")).await;
    let who: Option<String> = api
        .call(
            &Context::new(),
            &Target::guest("guestagent", "g1"),
            "whoami",
            &(),
        )
        .await
        .unwrap();
    assert_eq!(
        who.as_deref(),
        Some("control:taskmanager"),
        "the signer is the principal"
    );
    assert_eq!(count.get(), 1);

    // A message sealed for g3 reaches g2: it cannot open it, and its answer comes from a
    // principal that may not answer for g3, so the client drops it and times out.
    let err = api
        .prepare(Target::guest("guestagent", "g3"))
        .timeout(Duration::from_millis(300))
        .call::<_, Option<String>>(&Context::new(), "whoami", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(
        api.security()
            .counters()
            .rejected_for(RejectReason::UnexpectedReply)
            >= 1
    );
}
