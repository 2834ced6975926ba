//! The RPC server: typed handlers by method name and namespace, authorization in code,
//! interface versions, bounded concurrent dispatch, tower layers around dispatch, and
//! graceful shutdown.

mod answer;
mod caller;
mod dispatch;
mod error;
mod heartbeat;
mod method;
mod registry;
mod run;
mod state;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::Layer;
use tower::layer::util::{Identity, Stack};

pub use caller::{Access, Caller};
pub use dispatch::{Dispatch, IncomingRequest};
pub use error::HandlerError;
pub use method::Method;
pub use run::ServerHandle;
pub use state::State;

use crate::context::Context;
use crate::descriptor::{MethodArgs, MethodRef, MethodSig, Sealed};
use crate::error::Error;
use crate::node::IntoTransport;
use crate::payload::Encoded;
use crate::principal::Principal;
use crate::security::Security;
use crate::transport::{ListenSpec, Transport};
use crate::version::Version;
use dispatch::Registry;
use method::{ArgsCheck, CallerCheck, Endpoint};
use registry::{Key, endpoint_mut, served_versions};

/// The error type server layers may return (a [`HandlerError`] is passed through as is).
pub(crate) use tower::BoxError;

/// Entry point: [`Server::builder`].
#[derive(Debug)]
pub struct Server {
    _private: (),
}

impl Server {
    /// Default bound on requests handled at once.
    pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

    /// A builder for a server consuming from `transport` (any [`Transport`], or an `Arc`
    /// of one), secured by `security`. [`Node`](crate::Node) builds a node's client and
    /// server on one `Security`.
    pub fn builder(transport: impl IntoTransport, security: Arc<Security>) -> ServerBuilder {
        ServerBuilder {
            transport: transport.into_transport(),
            security,
            topic: None,
            server_name: None,
            shared: true,
            fanout: true,
            max_concurrency: Server::DEFAULT_MAX_CONCURRENCY,
            versions: HashMap::new(),
            access: Access::default(),
            endpoints: Vec::new(),
            args_checks: Vec::new(),
            caller_checks: Vec::new(),
            access_overrides: Vec::new(),
            broker_user: None,
            layer: Identity::new(),
            state: (),
        }
    }
}

type LateArgsCheck = (Key, Box<dyn Any + Send + Sync>);

/// The registry key of `method` (a descriptor's namespace, else the default namespace).
fn key_of(method: &impl Sealed) -> Key {
    let namespace = method.pinned().and_then(|(ns, _)| ns);
    (
        namespace.map(str::to_owned),
        method.method_name().to_owned(),
    )
}

/// Configures a server (lapin-style builder); `L` is the stack of tower layers around
/// dispatch, `St` the shared state handed to handlers (`()` for none, [`State`] after
/// [`ServerBuilder::with_state`]).
pub struct ServerBuilder<L = Identity, St = ()> {
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
    topic: Option<String>,
    server_name: Option<String>,
    shared: bool,
    fanout: bool,
    max_concurrency: usize,
    versions: HashMap<Option<String>, Version>,
    access: Access,
    endpoints: Vec<Box<dyn Endpoint>>,
    args_checks: Vec<LateArgsCheck>,
    caller_checks: Vec<(Key, CallerCheck)>,
    access_overrides: Vec<(Key, Access)>,
    broker_user: Option<crate::layer::BrokerUserCheck>,
    layer: L,
    state: St,
}

impl<L, St> fmt::Debug for ServerBuilder<L, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("topic", &self.topic)
            .field("server_name", &self.server_name)
            .field("shared", &self.shared)
            .field("fanout", &self.fanout)
            .field("max_concurrency", &self.max_concurrency)
            .field("methods", &self.endpoints.len())
            .finish_non_exhaustive()
    }
}

impl<L> ServerBuilder<L, ()> {
    /// Registers a typed handler for `method`: a descriptor (which fixes the argument and
    /// reply types, the namespace and the version) or a name in the default namespace.
    ///
    /// ```
    /// # fn demo(b: sealrpc_core::ServerBuilder) -> sealrpc_core::ServerBuilder {
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Add { a: i64, b: i64 }
    /// sealrpc_core::rpc!(struct AddRpc = "add"(Add) -> i64);
    /// b.handler(AddRpc, |_ctx, a| async move { Ok(a.a + a.b) })
    /// # }
    /// ```
    pub fn handler<M, A, F, Fut, R>(self, method: M, handler: F) -> Self
    where
        M: MethodSig<A, R>,
        A: DeserializeOwned + Send + 'static,
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
        R: Serialize + Send + 'static,
    {
        self.method(Method::new(method, handler))
    }

    /// Hands `state` to every handler registered from now on, as their first argument
    /// (a clone per request: use an `Arc` or another cheap handle), like axum's `State`.
    ///
    /// ```
    /// # fn demo(b: sealrpc_core::ServerBuilder) {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// #[derive(Default)]
    /// struct App { hits: AtomicU64 }
    /// sealrpc_core::rpc!(struct Hit = "hit"(()) -> u64);
    /// let b = b
    ///     .with_state(Arc::new(App::default()))
    ///     .handler(Hit, |app, _ctx, ()| async move { Ok(app.hits.fetch_add(1, Ordering::Relaxed)) });
    /// # }
    /// ```
    pub fn with_state<S>(self, state: S) -> ServerBuilder<L, State<S>>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.rebuild(|layer| layer, |()| State(state))
    }
}

impl<L, St> ServerBuilder<L, St> {
    /// The builder with its layer and state replaced (each changes the builder's type).
    fn rebuild<L2, T>(
        self,
        layer: impl FnOnce(L) -> L2,
        state: impl FnOnce(St) -> T,
    ) -> ServerBuilder<L2, T> {
        ServerBuilder {
            transport: self.transport,
            security: self.security,
            topic: self.topic,
            server_name: self.server_name,
            shared: self.shared,
            fanout: self.fanout,
            max_concurrency: self.max_concurrency,
            versions: self.versions,
            access: self.access,
            endpoints: self.endpoints,
            args_checks: self.args_checks,
            caller_checks: self.caller_checks,
            access_overrides: self.access_overrides,
            broker_user: self.broker_user,
            layer: layer(self.layer),
            state: state(self.state),
        }
    }

    /// The topic served (required).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// This server's name, for `topic.server` addressing (default: a random name). A guest
    /// agent uses its instance id.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Consume the shared topic queue, competing with the topic's other servers (default
    /// true; a guest agent serves only its own `topic.server` and the fanout).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Receive the topic's fanout (default true).
    pub fn fanout(mut self, fanout: bool) -> Self {
        self.fanout = fanout;
        self
    }

    /// Everything the server consumes at once: topic, server name, [`shared`](Self::shared)
    /// and [`fanout`](Self::fanout). A guest agent passes its credentials' spec
    /// (`GuestCredentials::listen`) or [`ListenSpec::guest_agent`]:
    ///
    /// ```
    /// # fn demo(b: sealrpc_core::ServerBuilder) -> sealrpc_core::ServerBuilder {
    /// use sealrpc_core::transport::ListenSpec;
    /// b.listen(ListenSpec::guest_agent("guestagent", "7f3a"))
    /// # }
    /// ```
    pub fn listen(mut self, spec: ListenSpec) -> Self {
        self.topic = Some(spec.topic);
        self.server_name = Some(spec.server);
        self.shared = spec.shared;
        self.fanout = spec.fanout;
        self
    }

    /// Most requests handled at once (default 64, at least 1).
    pub fn max_concurrency(mut self, max: usize) -> Self {
        self.max_concurrency = max.clamp(1, 1 << 20);
        self
    }

    /// The interface version served in `namespace` (`None`: the default namespace); every
    /// minor up to it is served. Default 1.0.
    pub fn namespace_version(mut self, namespace: Option<&str>, version: Version) -> Self {
        self.versions.insert(namespace.map(str::to_owned), version);
        self
    }

    /// Who may call methods that do not say otherwise (default [`Access::AllowAny`]).
    pub fn default_access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Binds the transport's broker-validated publisher (AMQP `user-id`) to the
    /// authenticated principal: a message whose publisher `check(principal, user)` refuses is
    /// rejected ([`RejectReason::BrokerUserMismatch`](crate::security::RejectReason)), as
    /// defense in depth beside the signature. Deliveries without a broker user (the memory
    /// transport) or without a proven principal are not checked.
    pub fn bind_broker_user(
        mut self,
        check: impl Fn(&Principal, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.broker_user = Some(Arc::new(check));
        self
    }

    /// Registers a [`Method`] (namespace, access and checks included).
    pub fn method<A: DeserializeOwned + Send + 'static>(mut self, method: Method<A>) -> Self {
        self.endpoints.push(Box::new(method));
        self
    }

    /// Adds an authorization check to `method` on the caller and the decoded arguments;
    /// all checks must pass, or the call is answered `Forbidden` and the handler does not
    /// run. With a descriptor the check's argument type is the descriptor's, as the
    /// handler's is: a mismatch does not compile. With a name (default namespace), `A` must
    /// be the handler's argument type, which `start` checks.
    pub fn authorize<M, A, F>(mut self, method: M, check: F) -> Self
    where
        M: MethodArgs<A>,
        A: Send + 'static,
        F: Fn(&Caller, &A) -> bool + Send + Sync + 'static,
    {
        let check: ArgsCheck<A> = Arc::new(check);
        self.args_checks.push((key_of(&method), Box::new(check)));
        self
    }

    /// Adds an authorization check on the caller alone to `method` (a descriptor, or a
    /// name in the default namespace).
    pub fn authorize_caller<F>(mut self, method: impl MethodRef, check: F) -> Self
    where
        F: Fn(&Caller) -> bool + Send + Sync + 'static,
    {
        self.caller_checks.push((key_of(&method), Arc::new(check)));
        self
    }

    /// Overrides the server's [`default_access`](Self::default_access) for `method` (a
    /// descriptor, or a name in the default namespace), as [`Method::access`] does.
    pub fn access(mut self, method: impl MethodRef, access: Access) -> Self {
        self.access_overrides.push((key_of(&method), access));
        self
    }

    /// Wraps dispatch in a tower layer (timeouts, concurrency limits, metrics...). The
    /// first layer added is the outermost, as with `tower::ServiceBuilder`.
    pub fn layer<N>(self, layer: N) -> ServerBuilder<Stack<N, L>, St> {
        self.rebuild(|inner| Stack::new(layer, inner), |state| state)
    }

    fn registry(&mut self) -> Result<Registry, Error> {
        let mut endpoints: HashMap<Key, Box<dyn Endpoint>> = HashMap::new();
        for e in self.endpoints.drain(..) {
            let key = (e.namespace().map(str::to_owned), e.name().to_owned());
            if endpoints.contains_key(&key) {
                return Err(Error::Invalid(format!(
                    "method {:?} registered twice in namespace {:?}",
                    key.1, key.0
                )));
            }
            endpoints.insert(key, e);
        }
        for (key, check) in self.args_checks.drain(..) {
            // Cannot fail for a descriptor registered as a descriptor: both sides take its
            // `Args`. It can for names, and for a name mixed with a descriptor.
            if !endpoint_mut(&mut endpoints, "authorize", &key)?.add_args_check(check.as_ref()) {
                return Err(Error::Invalid(format!(
                    "authorize: the argument type differs from the handler's for {:?}",
                    key.1
                )));
            }
        }
        for (key, check) in self.caller_checks.drain(..) {
            endpoint_mut(&mut endpoints, "authorize_caller", &key)?.add_caller_check(check);
        }
        for (key, access) in self.access_overrides.drain(..) {
            endpoint_mut(&mut endpoints, "access", &key)?.set_access(access);
        }
        let versions = served_versions(std::mem::take(&mut self.versions), &endpoints)?;
        Ok(Registry {
            endpoints,
            versions,
            access: self.access,
        })
    }

    /// Starts consuming: returns once the server listens.
    pub async fn start(mut self) -> Result<ServerHandle, Error>
    where
        L: Layer<Dispatch>,
        L::Service: tower::Service<IncomingRequest, Response = Encoded> + Clone + Send + 'static,
        <L::Service as tower::Service<IncomingRequest>>::Error: Into<BoxError> + Send,
        <L::Service as tower::Service<IncomingRequest>>::Future: Send + 'static,
    {
        let topic = self
            .topic
            .clone()
            .ok_or_else(|| Error::Invalid("a server needs a topic".into()))?;
        let server = self.server_name.clone().unwrap_or_else(|| {
            let id = crate::wire::MessageId::random().to_hex();
            format!("srv-{}", &id[..12])
        });
        let registry = self.registry()?;
        let spec = ListenSpec {
            topic,
            server,
            shared: self.shared,
            fanout: self.fanout,
        };
        let subscription = self.transport.listen(&spec).await?;
        let dispatch = self.layer.layer(Dispatch::new(registry));
        let setup = run::Setup {
            transport: self.transport,
            security: self.security,
            spec,
            broker_user: self.broker_user,
        };
        Ok(run::spawn(
            setup,
            dispatch,
            subscription,
            self.max_concurrency,
        ))
    }
}
