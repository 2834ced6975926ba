//! Dispatch as a tower service: [`IncomingRequest`] (an admitted request) in, the encoded
//! result out. Checks, in order: deadline, method lookup, version, access and caller
//! checks, argument decoding, argument checks; then the handler runs.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures_util::future::{self, BoxFuture};

use super::caller::{Access, Caller};
use super::error::HandlerError;
use super::method::Endpoint;
use crate::context::Context;
use crate::error::ErrorCode;
use crate::payload::Encoded;
use crate::version::Version;
use crate::wire::{Kind, MessageId};

/// An admitted request on its way to a handler; what server-side tower layers see.
pub struct IncomingRequest {
    /// The request context (principal and deadline filled by this server).
    pub ctx: Context,
    /// Who is calling, as proven.
    pub caller: Caller,
    /// The method.
    pub method: String,
    /// The namespace (`None`: the default namespace).
    pub namespace: Option<String>,
    /// The version requested.
    pub version: Version,
    /// The encoded arguments map.
    pub args: Bytes,
    /// Call, cast or fanout.
    pub kind: Kind,
    /// The message id.
    pub id: MessageId,
}

impl fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the argument values.
        f.debug_struct("IncomingRequest")
            .field("request_id", &self.ctx.request_id())
            .field("caller", &self.caller.principal())
            .field("method", &self.method)
            .field("namespace", &self.namespace)
            .field("version", &self.version)
            .field("args_len", &self.args.len())
            .field("kind", &self.kind)
            .field("id", &self.id)
            .finish()
    }
}

type Key = (Option<String>, String);

/// The server's methods, versions and default access, as the builder assembles them.
pub(crate) struct Registry {
    pub(crate) endpoints: HashMap<Key, Box<dyn Endpoint>>,
    pub(crate) versions: HashMap<Option<String>, Version>,
    pub(crate) access: Access,
}

/// The version a namespace serves unless told otherwise.
const DEFAULT_VERSION: Version = Version::new(1, 0);

/// One namespace's version and methods.
struct Namespace {
    version: Version,
    methods: HashMap<String, Box<dyn Endpoint>>,
}

impl Default for Namespace {
    fn default() -> Self {
        Self {
            version: DEFAULT_VERSION,
            methods: HashMap::new(),
        }
    }
}

/// The registry arranged for lookups by the request's own (borrowed) names: finding a
/// method builds no key.
struct Methods {
    default: Namespace,
    named: HashMap<String, Namespace>,
    access: Access,
    count: usize,
}

impl Methods {
    fn new(registry: Registry) -> Self {
        let Registry {
            endpoints,
            versions,
            access,
        } = registry;
        let count = endpoints.len();
        let mut namespaces: HashMap<Option<String>, Namespace> = HashMap::new();
        for (name, version) in versions {
            namespaces.entry(name).or_default().version = version;
        }
        for ((name, method), endpoint) in endpoints {
            (namespaces.entry(name).or_default().methods).insert(method, endpoint);
        }
        let default = namespaces.remove(&None).unwrap_or_default();
        let named = namespaces
            .into_iter()
            .filter_map(|(name, ns)| Some((name?, ns)))
            .collect();
        Self {
            default,
            named,
            access,
            count,
        }
    }

    fn namespace(&self, name: Option<&str>) -> Option<&Namespace> {
        match name {
            None => Some(&self.default),
            Some(name) => self.named.get(name),
        }
    }
}

/// The innermost server service: runs the checks and the handler.
#[derive(Clone)]
pub struct Dispatch {
    methods: Arc<Methods>,
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatch")
            .field("methods", &self.methods.count)
            .finish()
    }
}

impl Dispatch {
    pub(crate) fn new(registry: Registry) -> Self {
        crate::observe::register_methods(registry.endpoints.keys().map(|(_, m)| m.as_str()));
        Self {
            methods: Arc::new(Methods::new(registry)),
        }
    }

    /// The version served in `namespace` (default 1.0).
    pub fn version_of(&self, namespace: Option<&str>) -> Version {
        self.methods
            .namespace(namespace)
            .map_or(DEFAULT_VERSION, |ns| ns.version)
    }

    fn start(
        &self,
        req: IncomingRequest,
    ) -> Result<BoxFuture<'static, Result<Encoded, HandlerError>>, HandlerError> {
        // Checked again here, right before running: the request may have waited in a queue
        // or in a layer since it was admitted.
        if req.ctx.is_expired() {
            return Err(HandlerError::from_code(
                ErrorCode::Expired,
                "deadline passed",
            ));
        }
        let namespace = self.methods.namespace(req.namespace.as_deref());
        let Some(endpoint) = namespace.and_then(|ns| ns.methods.get(&req.method)) else {
            return Err(HandlerError::from_code(
                ErrorCode::NoSuchMethod,
                format!("no such method {:?}", req.method),
            ));
        };
        let supported = namespace.map_or(DEFAULT_VERSION, |ns| ns.version);
        if !supported.can_serve(req.version) {
            let data = [
                ("requested", req.version.to_string()),
                ("supported", supported.to_string()),
            ];
            let data: std::collections::BTreeMap<_, _> = data.into_iter().collect();
            return Err(HandlerError::from_code(
                ErrorCode::UnsupportedVersion,
                format!(
                    "version {} not supported (server supports {supported})",
                    req.version
                ),
            )
            .with_data(&data));
        }
        let access = endpoint.access().unwrap_or(self.methods.access);
        let refused_by = if !access.allows(&req.caller) {
            Some(format!("access {access:?}"))
        } else {
            endpoint
                .refusing_caller_check(&req.caller)
                .map(|i| format!("authorize_caller check #{i}"))
        };
        if let Some(rule) = refused_by {
            let e = HandlerError::forbidden_by(&req.method, &rule, &req.caller);
            tracing::info!(caller = ?req.caller.principal(), method = %req.method, %rule, "forbidden");
            return Err(e);
        }
        endpoint
            .invoke(req.ctx, &req.caller, &req.args)
            .inspect_err(|e| {
                if e.code() == ErrorCode::Forbidden.as_str() {
                    tracing::info!(caller = ?req.caller.principal(), method = %req.method, reason = e.msg(), "forbidden");
                }
            })
    }
}

impl tower::Service<IncomingRequest> for Dispatch {
    type Response = Encoded;
    type Error = HandlerError;
    type Future = BoxFuture<'static, Result<Encoded, HandlerError>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), HandlerError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: IncomingRequest) -> Self::Future {
        match self.start(req) {
            Ok(fut) => fut,
            Err(e) => Box::pin(future::ready(Err(e))),
        }
    }
}
