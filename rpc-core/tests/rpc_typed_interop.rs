//! Typed descriptors next to the string form: interop both ways, the same bytes on the
//! wire, pinned namespace and version (and what a server serves for them), the one mismatch
//! left to `start`, and `Node` with transports passed as they come.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::transport::Transport;
use sealrpc_core::transport::{
    Address, ListenSpec, Outgoing, ReplyInbox, Subscription, TransportError,
};
use sealrpc_core::wire::{EnvelopeRef, Limits, RequestBody};
use sealrpc_core::{
    Caller, Client, Context, Error, ErrorCode, HandlerError, MemoryTransport, Node, Principal,
    Server, Target, Version, rpc,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Status {
    instance_id: String,
}

rpc! {
    /// `add` in the default namespace, version 1.0.
    struct AddRpc = "add"(Add) -> i64;
    /// Same name as a string-registered method of other arguments.
    struct UpdateStatus = "update_status"(Status) -> ();
    /// In a namespace, added in 1.2.
    struct Resize = "resize"(Add) -> i64, namespace = "db", version = 1.2;
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

#[tokio::test]
async fn typed_and_string_forms_interoperate() {
    let t = transport();
    // A server registered by name, a client calling by descriptor...
    let _by_name = Server::builder(Arc::clone(&t), insecure("control:calc"))
        .topic("by-name")
        .handler("add", |_ctx: Context, a: Add| async move {
            Ok::<_, HandlerError>(a.a + a.b)
        })
        .handler("resize", |_ctx: Context, a: Add| async move {
            Ok::<_, HandlerError>(a.a * a.b)
        })
        .authorize("add", |_c: &Caller, a: &Add| a.a >= 0)
        .namespace_version(None, Version::new(1, 0))
        .start()
        .await
        .unwrap();
    // ...and the other way round.
    let _typed = Server::builder(Arc::clone(&t), insecure("control:calc"))
        .topic("typed")
        .handler(AddRpc, |_ctx, a| async move { Ok(a.a + a.b) })
        .start()
        .await
        .unwrap();
    let c = client(&t, insecure("control:api")).await;
    let ctx = Context::new();
    let sum = c
        .call(&ctx, &Target::new("by-name"), AddRpc, &Add { a: 4, b: 5 })
        .await
        .unwrap();
    assert_eq!(sum, 9);
    let err = c
        .call(&ctx, &Target::new("by-name"), AddRpc, &Add { a: -1, b: 5 })
        .await
        .unwrap_err();
    assert!(forbidden(&err), "{err:?}");
    let sum: i64 = c
        .call(&ctx, &Target::new("typed"), "add", &Add { a: 4, b: 5 })
        .await
        .unwrap();
    assert_eq!(sum, 9);
    // A descriptor pins its namespace: `resize` by name lives in the default namespace.
    let err = c
        .call(&ctx, &Target::new("by-name"), Resize, &Add { a: 2, b: 3 })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchMethod { .. }), "{err:?}");
}

/// A transport that keeps every request it sends (not the replies).
#[derive(Debug, Default)]
struct Recording {
    inner: MemoryTransport,
    requests: Mutex<Vec<bytes::Bytes>>,
}

#[async_trait]
impl Transport for Recording {
    async fn send(&self, msg: Outgoing) -> Result<(), TransportError> {
        if !matches!(msg.to, Address::Reply(_)) {
            self.requests.lock().unwrap().push(msg.payload.clone());
        }
        self.inner.send(msg).await
    }
    async fn listen(&self, spec: &ListenSpec) -> Result<Subscription, TransportError> {
        self.inner.listen(spec).await
    }
    async fn reply_inbox(&self) -> Result<ReplyInbox, TransportError> {
        self.inner.reply_inbox().await
    }
}

fn body_of(envelope: &[u8]) -> RequestBody {
    let env = EnvelopeRef::decode(envelope, &Limits::default()).unwrap();
    RequestBody::decode(&bytes::Bytes::copy_from_slice(env.body)).unwrap()
}

#[tokio::test]
async fn typed_and_string_calls_put_the_same_body_on_the_wire() {
    let rec = Arc::new(Recording::default());
    let t: Arc<dyn Transport> = rec.clone();
    let _s = Server::builder(Arc::clone(&t), insecure("control:calc"))
        .topic("calc")
        .handler(Resize, |_ctx, a| async move { Ok(a.a * a.b) })
        .start()
        .await
        .unwrap();
    let c = client(&t, insecure("control:api")).await;
    let ctx = Context::new();
    let args = Add { a: 6, b: 7 };
    let typed = c
        .call(&ctx, &Target::new("calc"), Resize, &args)
        .await
        .unwrap();
    let by_name = Target::new("calc")
        .namespace("db")
        .version(Version::new(1, 2));
    let named: i64 = c.call(&ctx, &by_name, "resize", &args).await.unwrap();
    // A descriptor pins its namespace and version over a prepared target's overrides.
    let overridden = c
        .prepare(Target::new("calc"))
        .namespace("elsewhere")
        .version(Version::new(3, 0))
        .call(&ctx, Resize, &args)
        .await
        .unwrap();
    assert_eq!((typed, named, overridden), (42, 42, 42));

    let sent = rec.requests.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    let (a, b) = (body_of(&sent[0]), body_of(&sent[1]));
    assert_eq!(a.method, "resize");
    assert_eq!(a.namespace.as_deref(), Some("db"));
    assert_eq!(a.version, Version::new(1, 2));
    // Unsealed (policy Off), so the envelope's body is the encoded body itself.
    let raw = |e: &[u8]| {
        EnvelopeRef::decode(e, &Limits::default())
            .unwrap()
            .body
            .to_vec()
    };
    assert_eq!(raw(&sent[0]), raw(&sent[1]), "{a:?} vs {b:?}");
    assert_eq!(raw(&sent[0]), raw(&sent[2]));
}

#[tokio::test]
async fn descriptors_raise_the_served_version_and_are_checked_against_it() {
    let t = transport();
    // `Resize` needs db 1.2: a server registering it serves db 1.2 unless told otherwise.
    let s = Server::builder(Arc::clone(&t), insecure("control:calc"))
        .topic("calc")
        .handler(Resize, |_ctx, a| async move { Ok(a.a * a.b) })
        .start()
        .await
        .unwrap();
    let c = client(&t, insecure("control:api")).await;
    let older = Target::new("calc")
        .namespace("db")
        .version(Version::new(1, 1));
    let r: i64 = c
        .call(&Context::new(), &older, "resize", &Add { a: 1, b: 2 })
        .await
        .unwrap();
    assert_eq!(r, 2);
    s.shutdown().await;

    // A server told to serve db 1.1 cannot register a method of db 1.2.
    let err = Server::builder(Arc::clone(&t), insecure("control:calc"))
        .topic("calc")
        .namespace_version(Some("db"), Version::new(1, 1))
        .handler(Resize, |_ctx, a| async move { Ok(a.a * a.b) })
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("1.2")),
        "{err:?}"
    );

    // A client capped below the descriptor's version refuses before sending.
    let capped = Client::builder(Arc::clone(&t), insecure("control:api"))
        .version_cap(Version::new(1, 1))
        .build()
        .await
        .unwrap();
    let err = capped
        .call(
            &Context::new(),
            &Target::new("calc"),
            Resize,
            &Add { a: 1, b: 1 },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionCap { .. }), "{err:?}");
}

#[tokio::test]
async fn a_name_mixed_with_a_descriptor_of_other_arguments_is_refused_at_start() {
    // The one mismatch left to `start`: a handler registered by name, checked through a
    // descriptor of the same name whose arguments differ.
    let err = Server::builder(transport(), insecure("control:calc"))
        .topic("calc")
        .handler("update_status", |_ctx: Context, a: Add| async move {
            Ok::<_, HandlerError>(a.a)
        })
        .authorize(UpdateStatus, |_c, s| s.instance_id.is_empty())
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("argument type")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_node_builds_its_client_and_server_on_one_security() {
    let me = Principal::parse("control:conductor").unwrap();
    // Any transport, by value: no `Arc<dyn Transport>`.
    let node = Node::new(MemoryTransport::new(), SecurityConfig::insecure(me));
    let server = node
        .server()
        .topic("calc")
        .handler(AddRpc, |_ctx, a| async move { Ok(a.a + a.b) })
        .start()
        .await
        .unwrap();
    let c = node.client().build().await.unwrap();
    assert!(Arc::ptr_eq(c.security(), node.security()));
    let sum = c
        .call(
            &Context::new(),
            &Target::new("calc"),
            AddRpc,
            &Add { a: 1, b: 2 },
        )
        .await
        .unwrap();
    assert_eq!(sum, 3);
    server.shutdown().await;

    // The plain builders take a transport by value or as an `Arc` of the concrete type.
    let bus = MemoryTransport::new();
    let _s = Server::builder(bus.clone(), insecure("control:calc"))
        .topic("calc2")
        .handler(AddRpc, |_ctx, a| async move { Ok(a.a + a.b) })
        .start()
        .await
        .unwrap();
    let c = Client::builder(Arc::new(bus), insecure("control:api"))
        .build()
        .await
        .unwrap();
    let sum = c
        .call(
            &Context::new(),
            &Target::new("calc2"),
            AddRpc,
            &Add { a: 2, b: 2 },
        )
        .await
        .unwrap();
    assert_eq!(sum, 4);
}
