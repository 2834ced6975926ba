//! Tracing output at TRACE level never carries a secret (nor argument values).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use sealrpc_core::{Context, HandlerError, Secret, Server, Target};
use serde::{Deserialize, Serialize};

const PASSWORD: &str = "s3cr3t-tr4c1ng-v4lue";

#[derive(Debug, Serialize, Deserialize)]
struct Login {
    user: String,
    password: Secret<String>,
}

// A current-thread runtime: every spawned task runs on this thread, under the scoped subscriber.
#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_the_logs() {
    let out = common::Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = transport();
    let _s = Server::builder(Arc::clone(&t), secure("control:conductor"))
        .topic("auth")
        .handler("login", |ctx: Context, l: Login| async move {
            tracing::info!(user = %l.user, password = ?l.password, ctx = ?ctx, "handler saw");
            if l.user == "bad" {
                return Err(HandlerError::new("LoginFailed", "wrong credentials"));
            }
            Ok::<_, HandlerError>(l.password)
        })
        .start()
        .await
        .unwrap();
    let client = client(&t, secure("control:api")).await;
    let mut ctx = Context::new();
    ctx.insert_secret("token", &Secret::new(PASSWORD.to_owned()))
        .unwrap();
    let login = |user: &str| Login {
        user: user.into(),
        password: Secret::new(PASSWORD.into()),
    };
    let back: Secret<String> = client
        .call(&ctx, &Target::new("auth"), "login", &login("alice"))
        .await
        .unwrap();
    assert_eq!(back.expose(), PASSWORD);
    let err = client
        .call::<_, Secret<String>>(&ctx, &Target::new("auth"), "login", &login("bad"))
        .await
        .unwrap_err();
    tracing::error!(error = %err, debug = ?err, "call failed");

    // And over an insecure channel, the refusal is logged without the value.
    let plain = client_insecure(&t).await;
    let err = plain
        .call::<_, ()>(&ctx, &Target::new("auth"), "login", &login("alice"))
        .await
        .unwrap_err();
    tracing::error!(error = %err, debug = ?err, "call failed");

    let text = out.text();
    if std::env::var_os("SHOW_TRACE").is_some() {
        eprintln!("{text}");
    }
    assert!(
        text.contains("rpc.call") && text.contains("login"),
        "tracing was captured: {text}"
    );
    assert!(text.contains("rpc.serve"), "{text}");
    assert!(
        !text.contains(PASSWORD),
        "a secret leaked into the logs:\n{text}"
    );
}

async fn client_insecure(t: &Arc<dyn sealrpc_core::transport::Transport>) -> sealrpc_core::Client {
    client(t, insecure("control:other")).await
}
