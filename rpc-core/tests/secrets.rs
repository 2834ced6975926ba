//! `Secret<T>`: redaction, zeroize-on-drop wrapper semantics, the carries-secret marker,
//! refusal over unsealed channels, and delivery over sealed ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use sealrpc_core::payload::encode_value;
use sealrpc_core::{Context, Error, HandlerError, Secret, Server, Target};
use serde::{Deserialize, Serialize};

const PASSWORD: &str = "hunter2-very-secret";

#[derive(Debug, Serialize, Deserialize)]
struct CreateUser {
    name: String,
    password: Secret<String>,
}

fn create_user() -> CreateUser {
    CreateUser {
        name: "alice".into(),
        password: Secret::new(PASSWORD.into()),
    }
}

#[test]
fn debug_and_display_are_redacted() {
    let s = Secret::new(PASSWORD.to_owned());
    assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
    assert_eq!(format!("{s}"), "Secret([REDACTED])");
    assert_eq!(s.expose(), PASSWORD);
    let args = create_user();
    let dbg = format!("{args:?} {args:#?}");
    assert!(!dbg.contains(PASSWORD), "{dbg}");
    assert!(dbg.contains("alice"));
}

#[test]
fn message_types_never_show_plaintext_bytes_in_debug() {
    use sealrpc_core::Version;
    use sealrpc_core::bytes::Bytes;
    use sealrpc_core::payload::encode_args;
    use sealrpc_core::wire::{ReplyBody, RequestBody};
    let args = encode_args(&create_user()).unwrap();
    assert!(args.carries_secret());
    let plain = RequestBody::encode(
        "create_user",
        Version::new(1, 0),
        None,
        args.bytes(),
        b"\x80",
    );
    let request = RequestBody::decode(&Bytes::from(plain.clone())).unwrap();
    let reply = ReplyBody::Ok(Bytes::copy_from_slice(args.bytes()));
    let mut out = heartbeat_request();
    out.message.body = request.clone().into();
    out.message.carries_secret = true;
    let dbg = format!("{request:?} {reply:?} {out:?} {:?}", out.message);
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(
        dbg.contains("create_user") && dbg.contains("body_len"),
        "{dbg}"
    );
}

#[test]
fn context_secret_entries_are_redacted_and_kept_apart() {
    let mut ctx = Context::new();
    ctx.insert_secret("db_password", &Secret::new(PASSWORD.to_owned()))
        .unwrap();
    ctx.insert("tenant", "acme").unwrap();
    // A plain insert of a value holding a Secret is stored as a secret entry too.
    ctx.insert("token", &Secret::new(PASSWORD.to_owned()))
        .unwrap();
    let dbg = format!("{ctx:?}");
    assert!(!dbg.contains(PASSWORD), "{dbg}");
    assert!(
        dbg.contains("db_password") && dbg.contains("[REDACTED]"),
        "{dbg}"
    );
    assert!(ctx.carries_secret());
    assert_eq!(
        ctx.secret_names().collect::<Vec<_>>(),
        ["db_password", "token"]
    );
    assert_eq!(ctx.entry_names().collect::<Vec<_>>(), ["tenant"]);
    let got: Secret<String> = ctx.secret("db_password").unwrap().unwrap();
    assert_eq!(got.expose(), PASSWORD);
    assert!(
        ctx.get::<String>("db_password").unwrap().is_none(),
        "secrets are not plain entries"
    );
    assert!(ctx.remove("db_password") && ctx.remove("token"));
    assert!(!ctx.carries_secret());
}

#[test]
fn serializes_as_the_inner_value_and_raises_the_marker() {
    let secret = Secret::new(PASSWORD.to_owned());
    let enc = encode_value(&secret, "secret").unwrap();
    assert!(enc.carries_secret());
    assert_eq!(enc.bytes(), rmp_serde::to_vec_named(PASSWORD).unwrap());
    assert!(
        encode_value(&create_user(), "args")
            .unwrap()
            .carries_secret()
    );
    let plain = encode_value(&Add { a: 1, b: 2 }, "args").unwrap();
    assert!(
        !plain.carries_secret(),
        "the marker is reset between encodings"
    );
    let back: CreateUser =
        rmp_serde::from_slice(&rmp_serde::to_vec_named(&create_user()).unwrap()).unwrap();
    assert_eq!(back.password.expose(), PASSWORD);
}

#[test]
fn constant_time_equality() {
    let a = Secret::new(b"abc".to_vec());
    assert!(a.ct_eq(&Secret::new(b"abc".to_vec())));
    assert!(!a.ct_eq(&Secret::new(b"abd".to_vec())));
    assert!(!a.ct_eq(&Secret::new(b"ab".to_vec())));
}

#[tokio::test]
async fn secret_over_an_unsealed_channel_is_refused() {
    let t = transport();
    let count = Count::default();
    let c = count.clone();
    let _s = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("users")
        .handler("create", move |_ctx: Context, _u: CreateUser| {
            c.hit();
            async move { Ok::<_, HandlerError>(()) }
        })
        .handler("noop", |_ctx: Context, (): ()| async move {
            Ok::<_, HandlerError>(())
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let target = Target::new("users");

    let err = client
        .call::<_, ()>(&Context::new(), &target, "create", &create_user())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SecretOverUnsealedChannel), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));

    let err = client
        .cast(&Context::new(), &target, "create", &create_user())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SecretOverUnsealedChannel), "{err:?}");

    let mut ctx = Context::new();
    ctx.insert_secret("db_password", &Secret::new(PASSWORD.to_owned()))
        .unwrap();
    let err = client
        .call::<_, ()>(&ctx, &target, "noop", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SecretOverUnsealedChannel), "{err:?}");
    assert_eq!(count.get(), 0);
    assert_eq!(client.in_flight(), 0);
}

#[tokio::test]
async fn secret_result_over_an_unsealed_channel_becomes_an_error() {
    let t = transport();
    let _s = Server::builder(Arc::clone(&t), insecure("control:conductor"))
        .topic("users")
        .handler("leak", |_ctx: Context, (): ()| async move {
            Ok::<_, HandlerError>(Secret::new(PASSWORD.to_owned()))
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, insecure("control:api")).await;
    let err = client
        .call::<_, Secret<String>>(&Context::new(), &Target::new("users"), "leak", &())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Remote { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));
}

#[tokio::test]
async fn secrets_travel_sealed() {
    let t = transport();
    let _s = Server::builder(Arc::clone(&t), secure("control:conductor"))
        .topic("users")
        .handler("create", |ctx: Context, u: CreateUser| async move {
            let ctx_secret: Secret<String> = ctx
                .secret("db_password")
                .map_err(HandlerError::from)?
                .ok_or_else(|| HandlerError::bad_request("no db password"))?;
            let same = u.password.expose() == ctx_secret.expose();
            Ok::<_, HandlerError>((same, Secret::new(format!("{}!", u.password.expose()))))
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, secure("control:api")).await;
    let mut ctx = Context::new();
    ctx.insert_secret("db_password", &Secret::new(PASSWORD.to_owned()))
        .unwrap();
    let (same, echoed): (bool, Secret<String>) = client
        .call(&ctx, &Target::new("users"), "create", &create_user())
        .await
        .unwrap();
    assert!(same);
    assert_eq!(echoed.expose(), &format!("{PASSWORD}!"));
}

#[derive(Debug, Serialize)]
struct WrongType {
    a: Secret<String>,
    b: i64,
}

#[tokio::test]
async fn decode_errors_never_echo_values() {
    let t = transport();
    let count = Count::default();
    let _s = basic_server(&t, secure("control:conductor"), "calc", &count)
        .start()
        .await
        .unwrap();
    let client = client(&t, secure("control:api")).await;
    let args = WrongType {
        a: Secret::new(PASSWORD.to_owned()),
        b: 1,
    };
    let err = client
        .call::<_, i64>(&Context::new(), &Target::new("calc"), "add", &args)
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("BadRequest"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert_eq!(count.get(), 0);
}
