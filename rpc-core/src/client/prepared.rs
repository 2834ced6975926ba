//! [`Prepared`]: a target with per-call overrides, in the style of oslo's `prepare()`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CallRequest, Client, call};
use crate::context::Context;
use crate::descriptor::{MethodArgs, MethodSig};
use crate::error::Error;
use crate::target::Target;
use crate::version::Version;

/// A client bound to a target, with overrides. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Prepared {
    client: Client,
    target: Target,
    timeout: Option<Duration>,
    call_monitor_timeout: Option<Duration>,
}

impl Prepared {
    pub(crate) fn new(client: Client, target: Target) -> Self {
        Self {
            client,
            target,
            timeout: None,
            call_monitor_timeout: None,
        }
    }

    /// Overrides the client's default timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Monitors the calls (oslo's `call_monitor_timeout`): see
    /// [`CallRequest::call_monitor_timeout`].
    pub fn call_monitor_timeout(mut self, timeout: Duration) -> Self {
        self.call_monitor_timeout = Some(timeout);
        self
    }

    /// Overrides the version requested (of calls by name: a descriptor pins its own).
    pub fn version(mut self, version: Version) -> Self {
        self.target.version = version;
        self
    }

    /// Overrides the namespace (of calls by name: a descriptor pins its own).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.target = self.target.namespace(namespace);
        self
    }

    /// Addresses one named server.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.target = self.target.server(server);
        self
    }

    /// Sends to every server of the topic (casts only).
    pub fn fanout(mut self, fanout: bool) -> Self {
        self.target.fanout = fanout;
        self
    }

    /// The target with its overrides.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// True when the client's version cap allows `version`.
    pub fn can_send_version(&self, version: Version) -> bool {
        self.client.can_send_version(version)
    }

    fn request<A: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        method: impl MethodArgs<A>,
        args: &A,
    ) -> Result<CallRequest, Error> {
        let mut req = CallRequest::new(ctx, &self.target, method, args)?;
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        if let Some(m) = self.call_monitor_timeout {
            req = req.call_monitor_timeout(m);
        }
        Ok(req)
    }

    /// Calls `method` (a descriptor or a name) with the overrides.
    pub async fn call<A, R>(
        &self,
        ctx: &Context,
        method: impl MethodSig<A, R>,
        args: &A,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let req = self.request(ctx, method, args)?;
        call::call(&self.client.inner, req).await?.decode()
    }

    /// Casts `method` (a descriptor or a name) with the overrides.
    pub async fn cast<A>(
        &self,
        ctx: &Context,
        method: impl MethodArgs<A>,
        args: &A,
    ) -> Result<(), Error>
    where
        A: Serialize + ?Sized,
    {
        let req = self.request(ctx, method, args)?;
        call::cast(&self.client.inner, req).await
    }
}
