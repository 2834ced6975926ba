//! [`SealLayer`]: the send half of the security pipeline as a tower layer.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryFutureExt;
use futures_util::future::{Either, MapErr, Ready, ready};

use crate::error::Error;
use crate::security::{Outbound, Security};
use crate::transport::Outgoing;

/// A message to seal, sign and send.
#[derive(Debug)]
pub struct SealRequest {
    /// The header and plaintext body, and whom they are for.
    pub message: Outbound,
    /// How the envelope travels; its `payload` (empty until then) becomes the sealed
    /// envelope.
    pub outgoing: Outgoing,
}

/// Seals and signs each [`SealRequest`] with a [`Security`] (as its policy says for the
/// peer), then hands the envelope to the inner service as an [`Outgoing`].
#[derive(Clone)]
pub struct SealLayer {
    security: Arc<Security>,
}

impl SealLayer {
    /// Seals and signs with `security`.
    pub fn new(security: Arc<Security>) -> Self {
        Self { security }
    }
}

impl fmt::Debug for SealLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealLayer")
            .field("principal", self.security.principal())
            .finish()
    }
}

impl<S> tower::Layer<S> for SealLayer {
    type Service = Seal<S>;

    fn layer(&self, inner: S) -> Seal<S> {
        Seal {
            security: Arc::clone(&self.security),
            inner,
        }
    }
}

/// The service [`SealLayer`] makes.
#[derive(Clone)]
pub struct Seal<S> {
    security: Arc<Security>,
    inner: S,
}

impl<S: fmt::Debug> fmt::Debug for Seal<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seal")
            .field("principal", self.security.principal())
            .field("inner", &self.inner)
            .finish()
    }
}

/// The future of a [`Seal`] around a service of future `F`: the inner service's send, or
/// the error sealing ended with (a concrete type: a send boxes nothing of its own).
pub type SealFuture<F, R, E> = Either<Ready<Result<R, Error>>, MapErr<F, fn(E) -> Error>>;

impl<S> tower::Service<SealRequest> for Seal<S>
where
    S: tower::Service<Outgoing>,
    S::Error: Into<Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = SealFuture<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: SealRequest) -> Self::Future {
        // Sealing and signing are CPU work: done here, before the send is polled.
        let envelope = match self.security.seal_and_sign(req.message) {
            Ok(bytes) => bytes,
            Err(e) => return Either::Left(ready(Err(e))),
        };
        let sent = self.inner.call(Outgoing {
            payload: Bytes::from(envelope),
            ..req.outgoing
        });
        Either::Right(sent.map_err(Into::into as fn(S::Error) -> Error))
    }
}
