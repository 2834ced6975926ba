//! The RPC client: `call` (request/reply), `cast` (one-way), fanout casts, per-call
//! overrides through [`Prepared`], version caps, and a tower [`Service`](tower::Service)
//! ([`ClientService`]) so users can stack tower layers around calls.

mod call;
mod pending;
mod prepared;
mod reply;
mod request;
mod service;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tower::Layer;

pub use prepared::Prepared;
pub use request::{CallRequest, CallResponse};
pub use service::ClientService;

use crate::context::Context;
use crate::descriptor::{MethodArgs, MethodSig};
use crate::error::Error;
use crate::layer::{CallSender, Seal, SealLayer, TransportSender};
use crate::node::IntoTransport;
use crate::security::Security;
use crate::target::Target;
use crate::transport::Transport;
use crate::version::Version;
use pending::Pending;

/// Configures a [`Client`] (lapin-style builder).
#[derive(Debug)]
pub struct ClientBuilder {
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
    options: ClientOptions,
}

/// The client's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientOptions {
    pub(crate) default_timeout: Duration,
    pub(crate) version_cap: Option<Version>,
    pub(crate) max_in_flight: usize,
    pub(crate) fail_when_full: bool,
    pub(crate) call_monitor_timeout: Option<Duration>,
    pub(crate) offload_replies_from: usize,
}

impl ClientBuilder {
    /// Default time a call waits for its reply.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default bound on calls awaiting a reply at once.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
    /// Default size (bytes, as received) from which a reply may be admitted in a task of
    /// its own: see [`Self::offload_replies_from`].
    pub const DEFAULT_OFFLOAD_REPLIES_FROM: usize = 16 * 1024;
    /// Most replies admitted in tasks of their own at once; more are admitted in the reply
    /// loop, as small ones are.
    pub const MAX_OFFLOADED_REPLIES: usize = 4;

    /// How long a call waits for its reply unless overridden (default 30 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.options.default_timeout = timeout;
        self
    }

    /// The highest version this client may send (same major, minor up to the cap), e.g.
    /// pinned during a rolling upgrade. Default: no cap.
    pub fn version_cap(mut self, cap: Version) -> Self {
        self.options.version_cap = Some(cap);
        self
    }

    /// Most calls awaiting a reply at once (default 1024, at least 1). Beyond it a call
    /// waits for a slot, within its own timeout, unless [`Self::fail_when_full`] is set.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.options.max_in_flight = max.max(1);
        self
    }

    /// When the in-flight table is full, fail at once with a retriable
    /// `Transport(Unavailable)` error instead of waiting.
    pub fn fail_when_full(mut self, fail: bool) -> Self {
        self.options.fail_when_full = fail;
        self
    }

    /// Monitors every call unless overridden (oslo's `call_monitor_timeout`; default: not
    /// monitored). See [`CallRequest::call_monitor_timeout`].
    pub fn call_monitor_timeout(mut self, timeout: Duration) -> Self {
        self.options.call_monitor_timeout = Some(timeout);
        self
    }

    /// Replies of at least `bytes` (as received; default 16 KiB) are admitted (signature,
    /// digest, open) in a task of their own while other calls are in flight, so that a
    /// multi-threaded runtime spreads them over its workers. Smaller replies, and the reply
    /// to the only call in flight, are admitted in the reply loop: a task hop costs about
    /// as much as admitting a small reply. `usize::MAX` admits every reply in the loop.
    pub fn offload_replies_from(mut self, bytes: usize) -> Self {
        self.options.offload_replies_from = bytes;
        self
    }

    /// Opens the reply inbox and starts the reply loop.
    pub async fn build(self) -> Result<Client, Error> {
        let inbox = self.transport.reply_inbox().await?;
        let pending = Arc::new(Pending::default());
        let route = inbox.route.clone();
        let offload = reply::Offload {
            min_bytes: self.options.offload_replies_from,
            max_tasks: ClientBuilder::MAX_OFFLOADED_REPLIES,
        };
        let task = tokio::spawn(reply::reply_loop(
            inbox,
            Arc::clone(&self.security),
            Arc::clone(&pending),
            offload,
        ));
        let seal = SealLayer::new(Arc::clone(&self.security));
        let sender = seal.layer(TransportSender::new(Arc::clone(&self.transport)));
        let call_sender = seal.layer(CallSender::new(Arc::clone(&self.transport)));
        Ok(Client {
            inner: Arc::new(Inner {
                sender,
                call_sender,
                security: self.security,
                route,
                pending,
                permits: Arc::new(Semaphore::new(self.options.max_in_flight)),
                options: self.options,
                _reply_task: AbortOnDrop(task),
            }),
        })
    }
}

/// Stops the reply loop when the last clone of the client goes away.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// Sends casts (their result is their confirm).
    pub(crate) sender: Seal<TransportSender>,
    /// Sends calls, leaving their confirm to race their reply.
    pub(crate) call_sender: Seal<CallSender>,
    pub(crate) security: Arc<Security>,
    pub(crate) route: String,
    pub(crate) pending: Arc<Pending>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) options: ClientOptions,
    _reply_task: AbortOnDrop,
}

/// An RPC client. Cheap to clone; clones share the reply inbox and the in-flight table.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl Client {
    /// A builder for a client sending over `transport` (any [`Transport`], or an
    /// `Arc` of one), secured by `security`. [`Node`](crate::Node) builds a node's client
    /// and server on one `Security`.
    pub fn builder(transport: impl IntoTransport, security: Arc<Security>) -> ClientBuilder {
        ClientBuilder {
            transport: transport.into_transport(),
            security,
            options: ClientOptions {
                default_timeout: ClientBuilder::DEFAULT_TIMEOUT,
                version_cap: None,
                max_in_flight: ClientBuilder::DEFAULT_MAX_IN_FLIGHT,
                fail_when_full: false,
                call_monitor_timeout: None,
                offload_replies_from: ClientBuilder::DEFAULT_OFFLOAD_REPLIES_FROM,
            },
        }
    }

    /// Calls `method` on `target` with `args` (a struct or map; `()` for none) and waits
    /// for the typed result. `method` is an [`Rpc`](crate::Rpc) descriptor, which fixes the
    /// argument and reply types (and pins the namespace and version), or a name.
    ///
    /// ```no_run
    /// # async fn demo(client: sealrpc_core::Client) -> Result<(), sealrpc_core::Error> {
    /// use sealrpc_core::{Context, Target, rpc};
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Add { a: i64, b: i64 }
    /// rpc!(struct AddRpc = "add"(Add) -> i64);
    ///
    /// let (ctx, calc) = (Context::new(), Target::new("calc"));
    /// let sum = client.call(&ctx, &calc, AddRpc, &Add { a: 1, b: 2 }).await?;
    /// // The dynamic form: the same call, the same bytes on the wire.
    /// let same: i64 = client.call(&ctx, &calc, "add", &Add { a: 1, b: 2 }).await?;
    /// # let _ = (sum, same); Ok(())
    /// # }
    /// ```
    pub async fn call<A, R>(
        &self,
        ctx: &Context,
        target: &Target,
        method: impl MethodSig<A, R>,
        args: &A,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let req = CallRequest::new(ctx, target, method, args)?;
        call::call(&self.inner, req).await?.decode()
    }

    /// Sends `method` one way: to one server of the target, or to every server of the topic
    /// when the target is a fanout target. Returns once the transport holds the message.
    /// `method` is a descriptor (its reply, if any, is not awaited) or a name.
    pub async fn cast<A>(
        &self,
        ctx: &Context,
        target: &Target,
        method: impl MethodArgs<A>,
        args: &A,
    ) -> Result<(), Error>
    where
        A: Serialize + ?Sized,
    {
        let req = CallRequest::new(ctx, target, method, args)?;
        call::cast(&self.inner, req).await
    }

    /// Per-call overrides (timeout, version, namespace, server, fanout) for `target`.
    pub fn prepare(&self, target: Target) -> Prepared {
        Prepared::new(self.clone(), target)
    }

    /// True when the version cap allows sending `version`.
    pub fn can_send_version(&self, version: Version) -> bool {
        self.inner
            .options
            .version_cap
            .is_none_or(|cap| cap.can_serve(version))
    }

    /// The client as a tower service of [`CallRequest`]s, for stacking layers.
    pub fn service(&self) -> ClientService {
        ClientService::new(self.clone())
    }

    /// The transport route replies come back to.
    pub fn reply_route(&self) -> &str {
        &self.inner.route
    }

    /// The security runtime (counters, policy).
    pub fn security(&self) -> &Arc<Security> {
        &self.inner.security
    }

    /// Calls awaiting a reply now.
    pub fn in_flight(&self) -> usize {
        self.inner.pending.len()
    }
}
