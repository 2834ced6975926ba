//! One call's request and response, as the client and its tower service see them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::descriptor::MethodArgs;
use crate::error::Error;
use crate::payload::{Encoded, decode_value, encode_args};
use crate::target::Target;

/// One call, encoded and ready to send (arguments and context are encoded up front, so a
/// request can be cloned and retried by tower layers cheaply).
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub(crate) target: Target,
    pub(crate) method: String,
    pub(crate) args: Encoded,
    pub(crate) ctx: Encoded,
    pub(crate) request_id: Arc<str>,
    /// The chain's id for tracing: the context's global request id, or its own request id
    /// when it has none (it is then the chain's first call, as [`Context::child`] assumes).
    pub(crate) global_request_id: Arc<str>,
    pub(crate) deadline: Option<SystemTime>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) call_monitor_timeout: Option<Duration>,
}

impl CallRequest {
    /// A call of `method` on `target` with `args` (a struct or map; `()` for none).
    /// `method` is a descriptor (its namespace and version replace the target's) or a name.
    pub fn new<A: Serialize + ?Sized>(
        ctx: &Context,
        target: &Target,
        method: impl MethodArgs<A>,
        args: &A,
    ) -> Result<Self, Error> {
        let mut target = target.clone();
        if let Some((namespace, version)) = method.pinned() {
            if target.namespace.as_deref() != namespace {
                target.namespace = namespace.map(Arc::from);
            }
            target.version = version;
        }
        Ok(Self {
            target,
            method: method.method_name().to_owned(),
            args: encode_args(args)?,
            ctx: ctx.encode(),
            request_id: Arc::clone(&ctx.request_id),
            global_request_id: Arc::clone(ctx.chain_id()),
            deadline: ctx.deadline(),
            timeout: None,
            call_monitor_timeout: None,
        })
    }

    /// Overrides the client's default timeout for this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Monitors this call (oslo's `call_monitor_timeout`): the server is asked to send a
    /// heartbeat about every `timeout / 2` while the call runs, and the call fails with the
    /// retriable [`Error::MonitorTimeout`] once `timeout` passes with neither a reply nor
    /// a heartbeat. The call's own timeout still bounds it. A server that does not know
    /// heartbeats sends none: set the call timeout as if unmonitored, or the call fails at
    /// its monitor timeout.
    pub fn call_monitor_timeout(mut self, timeout: Duration) -> Self {
        self.call_monitor_timeout = Some(timeout);
        self
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The context's request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// True when the arguments or the context hold a `Secret` (the call must be sealed).
    pub fn carries_secret(&self) -> bool {
        self.args.carries_secret() || self.ctx.carries_secret()
    }
}

/// A successful call's result, still encoded.
#[derive(Clone)]
pub struct CallResponse {
    result: Bytes,
}

impl std::fmt::Debug for CallResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The result may hold a Secret's value: its size only.
        f.debug_struct("CallResponse")
            .field("len", &self.result.len())
            .finish()
    }
}

impl CallResponse {
    pub(crate) fn new(result: Bytes) -> Self {
        Self { result }
    }

    /// Decodes the result as `R`.
    pub fn decode<R: DeserializeOwned>(&self) -> Result<R, Error> {
        Ok(decode_value(&self.result, "result")?)
    }

    /// The encoded (MessagePack) result.
    pub fn raw(&self) -> &Bytes {
        &self.result
    }
}
