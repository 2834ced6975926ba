//! The client as a tower service: [`CallRequest`] in, [`CallResponse`] out.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use super::request::{CallRequest, CallResponse};
use super::{Client, call};
use crate::error::Error;

/// A [`Client`] as a `tower::Service<CallRequest>`; clone it freely.
///
/// ```no_run
/// # async fn demo(client: sealrpc_core::Client) -> Result<(), tower::BoxError> {
/// use std::collections::BTreeMap;
/// use std::time::Duration;
/// use sealrpc_core::{CallRequest, Context, Target};
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// let mut svc = ServiceBuilder::new()
///     .timeout(Duration::from_secs(2))
///     .service(client.service());
/// let args: BTreeMap<&str, i64> = [("a", 1), ("b", 2)].into();
/// let req = CallRequest::new(&Context::new(), &Target::new("calc"), "add", &args)?;
/// let sum: i64 = svc.ready().await?.call(req).await?.decode()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClientService {
    client: Client,
}

impl ClientService {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }
}

impl tower::Service<CallRequest> for ClientService {
    type Response = CallResponse;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<CallResponse, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        // Back-pressure is applied per call by the in-flight table (bounded by the timeout).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: CallRequest) -> Self::Future {
        let inner = std::sync::Arc::clone(&self.client.inner);
        Box::pin(async move { call::call(&inner, req).await })
    }
}
