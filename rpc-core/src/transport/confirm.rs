//! [`Confirm`]: the outcome of a sent call's confirm, still to come.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::TransportError;

/// What a transport's confirm of one sent call will say: `Ok(())` once the transport holds
/// the message (it was routed), or the error the send would have failed with (e.g.
/// [`NoListener`](super::TransportErrorKind::NoListener) for an unroutable call).
///
/// Returned by [`Transport::send_call`](super::Transport::send_call). The client races it
/// against the call's reply: a reply proves the call was routed, so a confirm still due then
/// gates nothing and is dropped. Dropping it must not cancel anything the transport needs
/// (the transport finishes its own bookkeeping).
pub struct Confirm(Outcome);

/// What a [`Confirm`] holds.
enum Outcome {
    /// Known already (taken once polled; not boxed, as the memory transport's every call is).
    Ready(Option<Result<(), TransportError>>),
    /// Still to come.
    Due(Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send>>),
}

impl Confirm {
    /// A confirm already known (a transport whose send waited for it, or failed).
    pub fn ready(outcome: Result<(), TransportError>) -> Self {
        Self(Outcome::Ready(Some(outcome)))
    }

    /// A confirm that `outcome` resolves.
    pub fn new(outcome: impl Future<Output = Result<(), TransportError>> + Send + 'static) -> Self {
        Self(Outcome::Due(Box::pin(outcome)))
    }
}

impl Future for Confirm {
    type Output = Result<(), TransportError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Outcome::Ready(outcome) => match outcome.take() {
                Some(outcome) => Poll::Ready(outcome),
                // Polled again after it resolved: like a finished future, it never resolves
                // twice (the client stops polling a confirm once it has its outcome).
                None => Poll::Pending,
            },
            Outcome::Due(future) => future.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for Confirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confirm").finish_non_exhaustive()
    }
}
