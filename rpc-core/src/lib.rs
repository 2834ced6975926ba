//! # sealrpc-core
//!
//! A transport-agnostic RPC layer (call, cast, fanout, targets, versions, deadlines,
//! context) whose every message can be signed and sealed through hooks that a consumer
//! registers (see [`security`]). The wire format is in [`wire`] and, normatively, in
//! `docs/wire-format.md`.
//!
//! Methods are declared once with [`rpc!`] (see [`Rpc`]): the client's call, the
//! server's handler and its `authorize` checks all take the descriptor, so their argument and
//! reply types cannot disagree. A [`Node`] builds a process's clients and servers on one
//! transport and one [`Security`](security::Security) runtime; handlers share application state through
//! [`ServerBuilder::with_state`].
//!
//! Notifications ([`notify`], oslo's `Notifier` and listener pools) travel signed and
//! sealed like RPC: [`Node::notifier`] and [`Node::notification_listener`]; a handler sees
//! the authenticated sender, and a guest publishes only as itself.
//!
//! ## Getting started
//!
//! A method declared once, a server with shared state, and a client, on the in-memory
//! transport (security Off for brevity):
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use sealrpc_core::{Context, MemoryTransport, Node, Principal, Target, rpc};
//! use sealrpc_core::security::SecurityConfig;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Resize { instance_id: String, gb: u32 }
//!
//! rpc!(struct ResizeVolume = "resize_volume"(Resize) -> u32);
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let bus = MemoryTransport::new();
//!     let node = |p| Principal::parse(p).map(|p| Node::new(bus.clone(), SecurityConfig::insecure(p)));
//!     let server = node("control:taskmanager").ok_or("bad principal")?
//!         .server()
//!         .topic("taskmanager")
//!         .with_state(Arc::new(AtomicU32::new(0)))
//!         .handler(ResizeVolume, |n: Arc<AtomicU32>, _ctx, r: Resize| async move {
//!             n.fetch_add(1, Ordering::Relaxed);
//!             Ok(r.gb)
//!         })
//!         .start()
//!         .await?;
//!     let client = node("control:api").ok_or("bad principal")?.client().build().await?;
//!     let args = Resize { instance_id: "7f3a".into(), gb: 20 };
//!     let gb = client.call(&Context::new(), &Target::new("taskmanager"), ResizeVolume, &args).await?;
//!     assert_eq!(gb, 20);
//!     server.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! With real keys and RabbitMQ — the `sealrpc-keys` tool, loading a key directory
//! (`ControlPlaneKeys::from_dir`, `MasterSecret::load`, `RotationTable::load`), delivering a
//! guest's bundle, broker credentials for your own topics, a guest agent's server
//! (`.listen(ListenSpec::guest_agent(..))`, `declare_exchanges: false`) and cleanup — follow
//! [`docs/getting-started.md`](https://github.com/sealrpc/sealrpc/blob/main/docs/getting-started.md)
//! (in the repository: `docs/getting-started.md`).
//!
//! ## Errors
//!
//! A refusal by the peer is [`Error::Rejected`]`{ code, msg }`; its `Display` carries the
//! peer's message, e.g. `rejected by peer: Forbidden: forbidden: update_status: authorize
//! check #1 refused caller guest:abc` or `rejected by peer: BadRequest: cannot decode the
//! arguments of update_status: missing field `instance_id``. Refusals by the security
//! pipeline are coarse on purpose (`Unauthenticated`, `Replay`, ...): the refusing node's
//! [`Security::counters`](security::Security::counters) (by [`security::RejectReason`], plus `forbidden` for
//! authorization refusals) and its log say why.
//!
//! ## Tracing
//!
//! Spans, at `DEBUG` level (target `sealrpc_core::...`); no field carries an argument
//! value or a secret:
//!
//! | span | where | fields |
//! |---|---|---|
//! | `rpc.call` | client, one per call (retries included) | `request_id` (the context's), `global_request_id`, `method`, `target` (the destination address), `msg_id` (the message id) |
//! | `rpc.cast` | client, one per cast or fanout | as `rpc.call` |
//! | `rpc.serve` | server, one per admitted request, around dispatch, the handler and sending the reply | `request_id`, `global_request_id`, `method`, `kind` (`call`, `cast`, `fanout`), `msg_id`, `caller` (the proven principal, or `None`) |
//!
//! `global_request_id` is the context's global request id, or its request id when it has
//! none (the chain's first call): a handler calling on with [`Context::child`] shows the same
//! value in every span of the chain.
//!
//! Events inside them: `reply received` / the call's error (client); `request failed` with
//! its `code`, `forbidden` with `method`, `caller` and the refusing `rule` (server). A
//! rejected received message is logged (rate-limited) at `WARN` with its typed reason.
//!
//! ## Metrics
//!
//! Calls, requests, latency, in-flight, rejections by reason, Permissive admissions, the
//! replay guard's size and reconnects are recorded through the `metrics` facade under
//! `sealrpc_*` names (see [`observe`] and `docs/observability.md`); install any recorder.
#![forbid(unsafe_code)]

pub use bytes;

mod client;
mod context;
mod descriptor;
mod error;
mod error_code;
pub mod layer;
mod node;
pub mod notify;
pub mod observe;
pub mod payload;
mod principal;
pub mod rand;
mod secret;
pub mod security;
mod server;
mod target;
pub mod transport;
mod version;
mod wiped;
pub mod wire;

pub use client::{CallRequest, CallResponse, Client, ClientBuilder, ClientService, Prepared};
pub use context::Context;
pub use descriptor::{MethodArgs, MethodRef, MethodSig, Rpc};
pub use error::{Error, ErrorCode};
pub use node::{IntoTransport, Node};
pub use principal::Principal;
pub use secret::Secret;
pub use server::{
    Access, Caller, Dispatch, HandlerError, IncomingRequest, Method, Server, ServerBuilder,
    ServerHandle, State,
};
pub use target::Target;
pub use transport::memory::MemoryTransport;
pub use version::Version;

/// What the [`rpc!`] macro expands to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::descriptor::{check, parse_version};
}
