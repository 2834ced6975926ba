//! A [`Transport`] as a `tower::Service<Outgoing>`: the innermost service of a send stack
//! ([`TransportSender`]; [`CallSender`] for calls, which leaves their confirm to the caller).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either};
use tower::ServiceExt;

use crate::transport::{Confirm, Outgoing, Transport, TransportError};

/// Sends each [`Outgoing`] through a transport; clone it freely.
#[derive(Clone)]
pub struct TransportSender {
    transport: Arc<dyn Transport>,
}

impl TransportSender {
    /// Sends through `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { transport }
    }
}

impl fmt::Debug for TransportSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TransportSender")
            .field(&self.transport)
            .finish()
    }
}

impl tower::Service<Outgoing> for TransportSender {
    type Response = ();
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        // Transports apply back-pressure inside `send` (bounded queues, confirms).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, msg: Outgoing) -> Self::Future {
        let transport = Arc::clone(&self.transport);
        Box::pin(async move { transport.send(msg).await })
    }
}

/// Sends each call's [`Outgoing`] with [`Transport::send_call`]: it resolves once the
/// transport has taken the request, to the [`Confirm`] still to come. Clone it freely.
#[derive(Clone)]
pub struct CallSender {
    transport: Arc<dyn Transport>,
}

impl CallSender {
    /// Sends calls through `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { transport }
    }
}

impl fmt::Debug for CallSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CallSender").field(&self.transport).finish()
    }
}

impl tower::Service<Outgoing> for CallSender {
    type Response = Confirm;
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<Confirm, TransportError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, msg: Outgoing) -> Self::Future {
        let transport = Arc::clone(&self.transport);
        Box::pin(async move { transport.send_call(msg).await })
    }
}

/// A call started by [`call_now`]: the service's own future, or (boxed) the wait for its
/// readiness.
pub(crate) type CallNow<S, R> = Either<
    <S as tower::Service<R>>::Future,
    BoxFuture<'static, Result<<S as tower::Service<R>>::Response, <S as tower::Service<R>>::Error>>,
>;

/// Calls `service` with `request` at once when it is ready now, as the senders of this
/// module always are (they apply back-pressure inside the transport's send): the request is
/// consumed here, not carried in the returned future, which its caller holds and moves.
/// A service not ready yet gets the request once it is, in a boxed future.
pub(crate) fn call_now<S, R>(mut service: S, request: R) -> CallNow<S, R>
where
    S: tower::Service<R> + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    match service.ready().now_or_never() {
        Some(Ok(ready)) => Either::Left(ready.call(request)),
        Some(Err(e)) => Either::Right(Box::pin(std::future::ready(Err(e)))),
        None => Either::Right(Box::pin(service.oneshot(request))),
    }
}
