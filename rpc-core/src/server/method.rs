//! [`Method`]: one typed endpoint (handler, namespace, access and authorization in code),
//! and its type-erased form used by the dispatcher.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::caller::{Access, Caller};
use super::error::HandlerError;
use crate::context::Context;
use crate::descriptor::MethodSig;
use crate::error::ErrorCode;
use crate::payload::{Encoded, encode_value, redact};
use crate::version::Version;
use crate::wire::body::EMPTY_MAP;

/// A check on the caller alone (runs before the arguments are decoded).
pub(crate) type CallerCheck = Arc<dyn Fn(&Caller) -> bool + Send + Sync>;
/// A check on the caller and the decoded arguments.
pub(crate) type ArgsCheck<A> = Arc<dyn Fn(&Caller, &A) -> bool + Send + Sync>;
type HandlerFn<A> =
    Arc<dyn Fn(Context, A) -> BoxFuture<'static, Result<Encoded, HandlerError>> + Send + Sync>;

/// A typed method: its name, namespace, who may call it, and its handler.
///
/// Built from an [`Rpc`](crate::Rpc) descriptor, it takes the descriptor's name, namespace
/// and version, and its handler and checks its argument and reply types:
///
/// ```
/// use sealrpc_core::{Access, Method, rpc};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Status { instance_id: String }
/// rpc!(struct GetStatus = "get_status"(Status) -> String, namespace = "db");
/// let m = Method::new(GetStatus, |_ctx, s| async move { Ok(s.instance_id) })
///     .access(Access::AllowAny)
///     .authorize(|caller, s| caller.is_guest(&s.instance_id));
/// ```
///
/// Or by name:
///
/// ```
/// use sealrpc_core::{Caller, Context, HandlerError, Method};
/// #[derive(serde::Deserialize)]
/// struct Resize { instance_id: String, gb: u32 }
/// let m = Method::new("resize", |_ctx: Context, a: Resize| async move {
///     Ok::<_, HandlerError>(a.gb)
/// })
/// .namespace("db")
/// // Policy in code: a guest may resize only itself; the control plane anything.
/// .authorize(|caller: &Caller, a: &Resize| caller.is_control_plane() || caller.is_guest(&a.instance_id));
/// ```
pub struct Method<A> {
    name: String,
    namespace: Option<String>,
    access: Option<Access>,
    caller_checks: Vec<CallerCheck>,
    arg_checks: Vec<ArgsCheck<A>>,
    handler: HandlerFn<A>,
    /// The version a descriptor needs its namespace to serve.
    required: Option<Version>,
}

impl<A: DeserializeOwned + Send + 'static> Method<A> {
    /// A method `method` (a descriptor, or a name in the default namespace) handled by
    /// `handler` (an async fn of the context and the decoded arguments).
    pub fn new<M, F, Fut, R>(method: M, handler: F) -> Self
    where
        M: MethodSig<A, R>,
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
        R: Serialize + Send + 'static,
    {
        let handler: HandlerFn<A> = Arc::new(move |ctx, args| {
            let fut = handler(ctx, args);
            Box::pin(async move {
                let result = fut.await?;
                encode_value(&result, "result").map_err(|e| {
                    tracing::warn!(error = %e, "cannot encode a handler's result");
                    HandlerError::remote("the result could not be encoded")
                })
            })
        });
        let pinned = method.pinned();
        Self {
            name: method.method_name().to_owned(),
            namespace: pinned.and_then(|(ns, _)| ns).map(str::to_owned),
            access: None,
            caller_checks: Vec::new(),
            arg_checks: Vec::new(),
            handler,
            required: pinned.map(|(_, version)| version),
        }
    }

    /// Puts the method in `namespace` (default: the default namespace, or the descriptor's).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Overrides the server's default [`Access`] for this method.
    pub fn access(mut self, access: Access) -> Self {
        self.access = Some(access);
        self
    }

    /// Adds a check on the caller and the decoded arguments; all checks must pass, or the
    /// call is answered `Forbidden` and the handler does not run.
    pub fn authorize(
        mut self,
        check: impl Fn(&Caller, &A) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.arg_checks.push(Arc::new(check));
        self
    }

    /// Adds a check on the caller alone (runs before the arguments are decoded).
    pub fn authorize_caller(
        mut self,
        check: impl Fn(&Caller) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.caller_checks.push(Arc::new(check));
        self
    }
}

impl<A> std::fmt::Debug for Method<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("access", &self.access)
            .field(
                "checks",
                &(self.caller_checks.len() + self.arg_checks.len()),
            )
            .finish()
    }
}

/// A method with its argument type erased.
pub(crate) trait Endpoint: Send + Sync {
    fn name(&self) -> &str;
    fn namespace(&self) -> Option<&str>;
    fn access(&self) -> Option<Access>;
    /// Overrides the server's default access for this method.
    fn set_access(&mut self, access: Access);
    /// The version a descriptor needs the method's namespace to serve.
    fn required_version(&self) -> Option<Version>;
    /// The first caller check that refuses `caller` (its 1-based position), if any.
    fn refusing_caller_check(&self, caller: &Caller) -> Option<usize>;
    fn add_caller_check(&mut self, check: CallerCheck);
    /// Adds an `ArgsCheck<A>` passed as `Any`; false when `A` is not this method's type.
    fn add_args_check(&mut self, check: &(dyn Any + Send + Sync)) -> bool;
    /// Decodes the arguments, runs the argument checks, and starts the handler.
    fn invoke(
        &self,
        ctx: Context,
        caller: &Caller,
        args: &[u8],
    ) -> Result<BoxFuture<'static, Result<Encoded, HandlerError>>, HandlerError>;
}

impl<A: DeserializeOwned + Send + 'static> Endpoint for Method<A> {
    fn name(&self) -> &str {
        &self.name
    }

    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn access(&self) -> Option<Access> {
        self.access
    }

    fn set_access(&mut self, access: Access) {
        self.access = Some(access);
    }

    fn required_version(&self) -> Option<Version> {
        self.required
    }

    fn refusing_caller_check(&self, caller: &Caller) -> Option<usize> {
        self.caller_checks
            .iter()
            .position(|c| !c(caller))
            .map(|i| i + 1)
    }

    fn add_caller_check(&mut self, check: CallerCheck) {
        self.caller_checks.push(check);
    }

    fn add_args_check(&mut self, check: &(dyn Any + Send + Sync)) -> bool {
        match check.downcast_ref::<ArgsCheck<A>>() {
            Some(c) => {
                self.arg_checks.push(Arc::clone(c));
                true
            }
            None => false,
        }
    }

    fn invoke(
        &self,
        ctx: Context,
        caller: &Caller,
        args: &[u8],
    ) -> Result<BoxFuture<'static, Result<Encoded, HandlerError>>, HandlerError> {
        // `()` (or `Option<T>`) arguments arrive as the empty map `{}`: read it as nil too.
        let decoded = rmp_serde::from_slice::<A>(args).or_else(|e| match args {
            EMPTY_MAP => rmp_serde::from_slice::<A>(&[0xc0]).map_err(|_| e),
            _ => Err(e),
        });
        let args: A = decoded.map_err(|e| {
            HandlerError::from_code(
                ErrorCode::BadRequest,
                format!(
                    "cannot decode the arguments of {}: {}",
                    self.name,
                    redact(&e)
                ),
            )
        })?;
        if let Some(i) = self.arg_checks.iter().position(|c| !c(caller, &args)) {
            let rule = format!("authorize check #{}", i + 1);
            return Err(HandlerError::forbidden_by(&self.name, &rule, caller));
        }
        Ok((self.handler)(ctx, args))
    }
}
