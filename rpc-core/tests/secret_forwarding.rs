//! A secret the API puts in the context reaches the task manager, and never a guest through
//! any way the library offers to build the task manager's outgoing context (the received
//! context as it is, a clone, a child, a grandchild, a prepared call, a cast, a fanout, the
//! tower service), unless the task manager forwards that entry by name.
//!
//! In memory, end to end: api -> taskmanager -> guest, signed and sealed (toy primitives).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sealrpc_core::transport::Transport;
use sealrpc_core::{
    Access, CallRequest, Client, Context, HandlerError, Secret, Server, ServerHandle, Target,
};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

const GUEST: &str = "g1";
const DB_PASSWORD: &str = "db-pw-7c1e9f";
const ADMIN_TOKEN: &str = "admin-token-0b4d2a";

/// The ways the task manager builds the context of its call to the guest.
const WAYS: [&str; 8] = [
    "as_is",
    "clone",
    "child",
    "grandchild",
    "prepared",
    "cast",
    "fanout",
    "tower",
];

/// What a guest handler saw in the context it received.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Seen {
    way: String,
    secret_names: Vec<String>,
    db_password: Option<String>,
    tenant: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Way {
    way: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn seen(way: String, ctx: &Context) -> Seen {
    Seen {
        way,
        secret_names: ctx.secret_names().map(str::to_owned).collect(),
        db_password: ctx
            .secret::<String>("db_password")
            .ok()
            .flatten()
            .map(|s| s.expose().clone()),
        tenant: ctx.get::<String>("tenant").ok().flatten(),
    }
}

async fn guest(t: &Arc<dyn Transport>, log: &Log) -> ServerHandle {
    let (l1, l2) = (log.clone(), log.clone());
    Server::builder(Arc::clone(t), secure(&format!("guest:{GUEST}")))
        .topic("guestagent")
        .server_name(GUEST)
        .shared(false)
        .fanout(true)
        .default_access(Access::ControlPlane)
        .handler("inspect", move |ctx: Context, w: Way| {
            let s = seen(w.way, &ctx);
            l1.lock().unwrap().push(s.clone());
            async move { Ok::<_, HandlerError>(s) }
        })
        .handler("inspect_cast", move |ctx: Context, w: Way| {
            l2.lock().unwrap().push(seen(w.way, &ctx));
            async move { Ok::<_, HandlerError>(()) }
        })
        .start()
        .await
        .unwrap()
}

/// The task manager: records what it received, then calls the guest the way it is told.
async fn taskmanager(t: &Arc<dyn Transport>, tm_client: Client, log: &Log) -> ServerHandle {
    let log = log.clone();
    Server::builder(Arc::clone(t), secure("control:taskmanager"))
        .topic("taskmanager")
        .default_access(Access::ControlPlane)
        .handler("provision", move |ctx: Context, w: Way| {
            let (client, log) = (tm_client.clone(), log.clone());
            async move {
                log.lock()
                    .unwrap()
                    .push(seen(format!("tm:{}", w.way), &ctx));
                call_guest(&client, &ctx, &w.way)
                    .await
                    .map_err(HandlerError::from)?;
                Ok::<_, HandlerError>(())
            }
        })
        .start()
        .await
        .unwrap()
}

async fn call_guest(client: &Client, ctx: &Context, way: &str) -> Result<(), sealrpc_core::Error> {
    let target = Target::guest("guestagent", GUEST);
    let args = Way { way: way.into() };
    match way {
        "as_is" => {
            client
                .call::<_, Seen>(ctx, &target, "inspect", &args)
                .await?
        }
        "clone" => {
            client
                .call::<_, Seen>(&ctx.clone(), &target, "inspect", &args)
                .await?
        }
        "child" => {
            client
                .call::<_, Seen>(&ctx.child(), &target, "inspect", &args)
                .await?
        }
        "grandchild" => {
            client
                .call::<_, Seen>(&ctx.child().child(), &target, "inspect", &args)
                .await?
        }
        "prepared" => {
            client
                .prepare(target)
                .timeout(Duration::from_secs(5))
                .call::<_, Seen>(ctx, "inspect", &args)
                .await?
        }
        "cast" => return client.cast(ctx, &target, "inspect_cast", &args).await,
        "fanout" => {
            let all = Target::new("guestagent").fanout(true);
            return client.cast(&ctx.child(), &all, "inspect_cast", &args).await;
        }
        "tower" => {
            let req = CallRequest::new(ctx, &target, "inspect", &args)?;
            client.service().oneshot(req).await?.decode::<Seen>()?
        }
        "by_name" => {
            let out = ctx.child().forward_secret(ctx, "db_password");
            client
                .call::<_, Seen>(&out, &target, "inspect", &args)
                .await?
        }
        other => panic!("unknown way {other}"),
    };
    Ok(())
}

struct Cluster {
    api: Client,
    log: Log,
    _servers: Vec<ServerHandle>,
}

async fn cluster() -> Cluster {
    let t = transport();
    let log = Log::default();
    let g = guest(&t, &log).await;
    let tm_client = client(&t, secure("control:taskmanager")).await;
    let tm = taskmanager(&t, tm_client, &log).await;
    Cluster {
        api: client(&t, secure("control:api")).await,
        log,
        _servers: vec![g, tm],
    }
}

/// The API's context: a plain tenant and two secrets for the task manager.
fn api_context() -> Context {
    let mut ctx = Context::new().with("tenant", "acme").unwrap();
    ctx.insert_secret("db_password", &Secret::new(DB_PASSWORD.to_owned()))
        .unwrap();
    ctx.insert_secret("admin_token", &Secret::new(ADMIN_TOKEN.to_owned()))
        .unwrap();
    ctx
}

async fn provision(c: &Cluster, way: &str) -> Vec<Seen> {
    c.api
        .call::<_, ()>(
            &api_context(),
            &Target::new("taskmanager"),
            "provision",
            &Way { way: way.into() },
        )
        .await
        .unwrap();
    // A cast is delivered after the call returns: wait for the guest's record (bounded).
    for _ in 0..200 {
        let log = c.log.lock().unwrap().clone();
        if log.iter().any(|s| s.way == way) {
            return log;
        }
        drop(log);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the guest never saw the {way} call");
}

#[tokio::test]
async fn a_secret_set_at_the_api_never_reaches_a_guest_through_any_helper() {
    let c = cluster().await;
    for way in WAYS {
        let log = provision(&c, way).await;
        let tm = log.iter().find(|s| s.way == format!("tm:{way}")).unwrap();
        // The task manager, the intended recipient, got both secrets.
        assert_eq!(tm.secret_names, ["admin_token", "db_password"], "{way}");
        assert_eq!(tm.db_password.as_deref(), Some(DB_PASSWORD), "{way}");
        let at_guest = log.iter().find(|s| s.way == way).unwrap();
        assert!(
            at_guest.secret_names.is_empty(),
            "{way}: the guest received secret entries {:?}",
            at_guest.secret_names
        );
        assert_eq!(at_guest.db_password, None, "{way}");
        // Plain entries do cross (as with oslo's context).
        assert_eq!(at_guest.tenant.as_deref(), Some("acme"), "{way}");
    }
}

#[tokio::test]
async fn a_secret_forwarded_by_name_arrives_sealed_and_alone() {
    let c = cluster().await;
    let log = provision(&c, "by_name").await;
    let at_guest = log.iter().find(|s| s.way == "by_name").unwrap();
    assert_eq!(at_guest.secret_names, ["db_password"]);
    assert_eq!(at_guest.db_password.as_deref(), Some(DB_PASSWORD));
}

#[tokio::test]
async fn a_secret_forwarded_by_name_is_refused_over_an_unsealed_channel() {
    let t = transport();
    let _g = Server::builder(Arc::clone(&t), insecure(&format!("guest:{GUEST}")))
        .topic("guestagent")
        .server_name(GUEST)
        .shared(false)
        .handler("inspect", |_ctx: Context, _w: Way| async move {
            Ok::<_, HandlerError>(())
        })
        .start()
        .await
        .unwrap();
    let tm = client(&t, insecure("control:taskmanager")).await;
    // What the task manager received from the API (decoded from the wire).
    let incoming = Context::decode(api_context().encode().bytes());
    let target = Target::guest("guestagent", GUEST);
    let args = Way { way: "x".into() };
    // Received secrets are not sent on: the unsealed call goes through, without them.
    tm.call::<_, ()>(&incoming, &target, "inspect", &args)
        .await
        .unwrap();
    // Forwarded by name, the secret requires a seal.
    let out = incoming.child().forward_secret(&incoming, "db_password");
    let err = tm
        .call::<_, ()>(&out, &target, "inspect", &args)
        .await
        .unwrap_err();
    assert!(
        matches!(err, sealrpc_core::Error::SecretOverUnsealedChannel),
        "{err:?}"
    );
}
