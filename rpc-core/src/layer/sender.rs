//! A [`Transport`] as a `tower::Service<Outgoing>`: the innermost service of a send stack.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::transport::{Outgoing, Transport, TransportError};

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
