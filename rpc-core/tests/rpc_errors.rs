//! Errors and versions on the memory transport: NoSuchMethod, UnsupportedVersion with the
//! supported version, version caps and prepared overrides, Remote errors with data, and
//! bad arguments refused before the handler runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sealrpc_core::{Context, Error, ErrorCode, HandlerError, Method, Server, Target, Version};

#[tokio::test]
async fn unknown_method_is_no_such_method() {
    let t = transport();
    let count = Count::default();
    let _s = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .call::<_, i64>(
            &Context::new(),
            &Target::new("calc"),
            "mul",
            &Add { a: 1, b: 1 },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchMethod { method } if method == "mul"),
        "{err:?}"
    );
    // The method exists only in the default namespace.
    let err = client
        .call::<_, i64>(
            &Context::new(),
            &Target::new("calc").namespace("other"),
            "add",
            &Add { a: 1, b: 1 },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchMethod { .. }), "{err:?}");
}

#[tokio::test]
async fn newer_version_is_unsupported_with_the_supported_one() {
    let t = transport();
    let count = Count::default();
    let _s = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .namespace_version(None, Version::new(1, 3))
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let ok: i64 = client
        .call(
            &Context::new(),
            &Target::new("calc").version(Version::new(1, 2)),
            "add",
            &Add { a: 1, b: 2 },
        )
        .await
        .unwrap();
    assert_eq!(ok, 3);
    let err = client
        .call::<_, i64>(
            &Context::new(),
            &Target::new("calc").version(Version::new(1, 5)),
            "add",
            &Add { a: 1, b: 2 },
        )
        .await
        .unwrap_err();
    match err {
        Error::UnsupportedVersion {
            requested,
            supported,
        } => {
            assert_eq!(requested, Version::new(1, 5));
            assert_eq!(supported, Version::new(1, 3));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count.get(), 1, "the unsupported call must not run");
}

#[tokio::test]
async fn version_cap_and_prepared_overrides() {
    let t = transport();
    let ns_count = Count::default();
    let c = ns_count.clone();
    let _s = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("calc")
        .server_name("host-9")
        .namespace_version(Some("math"), Version::new(2, 1))
        .method(
            Method::new("add", move |_ctx: Context, a: Add| {
                c.hit();
                async move { Ok::<_, HandlerError>(a.a + a.b) }
            })
            .namespace("math"),
        )
        .start()
        .await
        .unwrap();
    let client = sealrpc_core::Client::builder(Arc::clone(&t), insecure("control:api"))
        .version_cap(Version::new(2, 0))
        .default_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    assert!(client.can_send_version(Version::new(2, 0)));
    assert!(!client.can_send_version(Version::new(2, 1)));
    assert!(!client.can_send_version(Version::new(1, 0)));

    let prepared = client
        .prepare(Target::new("calc"))
        .namespace("math")
        .version(Version::new(2, 0))
        .server("host-9")
        .timeout(Duration::from_secs(2));
    let sum: i64 = prepared
        .call(&Context::new(), "add", &Add { a: 5, b: 5 })
        .await
        .unwrap();
    assert_eq!(sum, 10);
    let err = prepared
        .clone()
        .version(Version::new(2, 1))
        .call::<_, i64>(&Context::new(), "add", &Add { a: 5, b: 5 })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionCap { .. }), "{err:?}");
    assert_eq!(ns_count.get(), 1);
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Detail {
    volume: String,
}

#[tokio::test]
async fn handler_error_is_remote_with_data() {
    let t = transport();
    let _s = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("calc")
        .handler("fail", |_ctx: Context, (): ()| async move {
            Err::<(), _>(
                HandlerError::new("VolumeFull", "volume is full").with_data(&Detail {
                    volume: "vol-1".into(),
                }),
            )
        })
        .handler("reject", |_ctx: Context, (): ()| async move {
            Err::<(), _>(HandlerError::bad_request("bad size"))
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .call::<_, ()>(&Context::new(), &Target::new("calc"), "fail", &())
        .await
        .unwrap_err();
    match err {
        Error::Remote { code, msg, data } => {
            assert_eq!(code, "VolumeFull");
            assert_eq!(msg, "volume is full");
            let d: Detail = rmp_serde::from_slice(&data.unwrap()).unwrap();
            assert_eq!(d.volume, "vol-1");
        }
        other => panic!("{other:?}"),
    }
    let err = client
        .call::<_, ()>(&Context::new(), &Target::new("calc"), "reject", &())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { code: ErrorCode::BadRequest, msg } if msg == "bad size"),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_args_are_bad_request_and_not_executed() {
    let t = transport();
    let count = Count::default();
    let _s = basic_server(&t, insecure("control:conductor"), "calc", &count)
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .call::<_, i64>(
            &Context::new(),
            &Target::new("calc"),
            "add",
            &Echo { text: "x".into() },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: ErrorCode::BadRequest,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(count.get(), 0);
}
