//! [`AdmitLayer`]: the receive half of the security pipeline as a tower layer.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryFutureExt;
use futures_util::future::{BoxFuture, Either, MapOk};

use crate::principal::Principal;
use crate::security::{Admitted, RejectReason, Rejection, Security};
use crate::transport::Delivery;

/// Says whether a broker user may publish for a principal (see [`AdmitLayer::bind_broker_user`]).
pub type BrokerUserCheck = Arc<dyn Fn(&Principal, &str) -> bool + Send + Sync>;

/// A message as a transport delivered it: what [`Admit`] takes.
#[derive(Clone)]
pub struct Inbound {
    /// The envelope bytes.
    pub payload: Bytes,
    /// The transport route for a reply, if it is a call.
    pub reply_to: Option<String>,
    /// The broker-validated publisher (AMQP `user-id`), where the transport has one.
    pub broker_user: Option<String>,
}

impl Inbound {
    /// Takes the message out of `delivery`, leaving its acknowledgement behind.
    pub fn take(delivery: &mut Delivery) -> Self {
        Self {
            payload: std::mem::take(&mut delivery.payload),
            reply_to: delivery.reply_to.take(),
            broker_user: delivery.broker_user.take(),
        }
    }
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound")
            .field("len", &self.payload.len())
            .field("reply_to", &self.reply_to)
            .field("broker_user", &self.broker_user)
            .finish()
    }
}

/// An admitted message: what the service inside an [`AdmitLayer`] sees.
#[derive(Debug)]
pub struct AdmittedMessage {
    /// The verified header, the opened and decoded body, and the proven principal.
    pub message: Admitted,
    /// The transport route for a reply, if it is a call.
    pub reply_to: Option<String>,
}

/// What [`Admit`] made of a message.
#[derive(Debug)]
pub enum Admission<R> {
    /// The message was admitted; the inner service's response.
    Admitted(R),
    /// The message was refused (already counted and logged); the inner service never saw it.
    Rejected(Rejection),
}

/// Runs the receive pipeline of a [`Security`] on each [`Inbound`] message; only admitted
/// messages reach the inner service.
#[derive(Clone)]
pub struct AdmitLayer {
    security: Arc<Security>,
    serves: Arc<[String]>,
    broker_user: Option<BrokerUserCheck>,
}

impl AdmitLayer {
    /// Admits with `security` the messages addressed (`dst`) to one of `serves`.
    pub fn new(security: Arc<Security>, serves: impl IntoIterator<Item = String>) -> Self {
        Self {
            security,
            serves: serves.into_iter().collect(),
            broker_user: None,
        }
    }

    /// Defense in depth beside the signature: when the transport reports the
    /// broker-validated publisher of a signed message, `check(principal, broker_user)`
    /// must hold, else the message is rejected with [`RejectReason::BrokerUserMismatch`].
    pub fn bind_broker_user(mut self, check: BrokerUserCheck) -> Self {
        self.broker_user = Some(check);
        self
    }
}

impl fmt::Debug for AdmitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmitLayer")
            .field("principal", self.security.principal())
            .field("serves", &self.serves)
            .field("broker_user_bound", &self.broker_user.is_some())
            .finish()
    }
}

impl<S> tower::Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            config: self.clone(),
            inner,
        }
    }
}

/// The service [`AdmitLayer`] makes.
#[derive(Clone)]
pub struct Admit<S> {
    config: AdmitLayer,
    inner: S,
}

impl<S: fmt::Debug> fmt::Debug for Admit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admit")
            .field("config", &self.config)
            .field("inner", &self.inner)
            .finish()
    }
}

impl AdmitLayer {
    fn admit(&self, msg: &mut Inbound) -> Result<Admitted, Rejection> {
        let serves = |dst: &str| self.serves.iter().any(|s| s == dst);
        let admitted = self
            .security
            .admit(std::mem::take(&mut msg.payload), &serves)?;
        self.check_broker_user(admitted, msg.broker_user.as_deref())
    }

    /// The pipeline awaiting the shared replay store.
    async fn admit_async(&self, msg: &mut Inbound) -> Result<Admitted, Rejection> {
        let serves = |dst: &str| self.serves.iter().any(|s| s == dst);
        let admitted = self
            .security
            .admit_async(std::mem::take(&mut msg.payload), &serves)
            .await?;
        self.check_broker_user(admitted, msg.broker_user.as_deref())
    }

    fn check_broker_user(
        &self,
        admitted: Admitted,
        user: Option<&str>,
    ) -> Result<Admitted, Rejection> {
        let (Some(check), Some(user), Some(principal)) =
            (&self.broker_user, user, &admitted.principal)
        else {
            return Ok(admitted);
        };
        if check(principal, user) {
            return Ok(admitted);
        }
        let security = &self.security;
        security.count_rejection(RejectReason::BrokerUserMismatch);
        tracing::warn!(principal = %principal, "broker user does not match the authenticated principal");
        Err(Rejection {
            reason: RejectReason::BrokerUserMismatch,
            header: Some(Box::new(admitted.header)),
        })
    }
}

/// What [`Admit`] answers at once: an admission by the inner service (future `F`), or a
/// rejection (a concrete type: admitting boxes nothing of its own).
type AdmittedNow<F, R, E> = Either<MapOk<F, fn(R) -> Admission<R>>, Refused<R, E>>;

/// A rejection, as the future [`Admit`] answers it with. It holds the [`Rejection`] alone,
/// not room for a whole admission (whose response may be large), so that the futures of an
/// admission stay small to move.
pub struct Refused<R, E> {
    rejection: Option<Rejection>,
    _answer: PhantomData<fn() -> (R, E)>,
}

impl<R, E> Refused<R, E> {
    fn new(rejection: Rejection) -> Self {
        Self {
            rejection: Some(rejection),
            _answer: PhantomData,
        }
    }
}

impl<R, E> fmt::Debug for Refused<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Refused").field(&self.rejection).finish()
    }
}

impl<R, E> Future for Refused<R, E> {
    type Output = Result<Admission<R>, E>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.rejection.take() {
            Some(rejection) => Poll::Ready(Ok(Admission::Rejected(rejection))),
            // Polled again once it answered: like a finished future, it answers nothing more.
            None => Poll::Pending,
        }
    }
}

/// The future of an [`Admit`] around a service of future `F`: boxed only when admission
/// awaits a shared replay store.
pub type AdmitFuture<F, R, E> =
    Either<AdmittedNow<F, R, E>, BoxFuture<'static, Result<Admission<R>, E>>>;

impl<S> tower::Service<Inbound> for Admit<S>
where
    S: tower::Service<AdmittedMessage> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Admission<S::Response>;
    type Error = S::Error;
    type Future = AdmitFuture<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut msg: Inbound) -> Self::Future {
        if self.config.security.replay_store().is_some() {
            // The replay step awaits the shared store: the ready inner service goes into the
            // future (a clone stays here for the next poll_ready).
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            let config = self.config.clone();
            return Either::Right(Box::pin(async move {
                match config.admit_async(&mut msg).await {
                    Ok(message) => inner
                        .call(AdmittedMessage {
                            message,
                            reply_to: msg.reply_to,
                        })
                        .await
                        .map(Admission::Admitted),
                    Err(rejection) => Ok(Admission::Rejected(rejection)),
                }
            }));
        }
        // In-process store: verification, the replay step and opening are CPU work, done
        // here before anything is awaited.
        Either::Left(match self.config.admit(&mut msg) {
            Ok(message) => {
                let served = self.inner.call(AdmittedMessage {
                    message,
                    reply_to: msg.reply_to,
                });
                Either::Left(served.map_ok(Admission::Admitted as fn(_) -> _))
            }
            Err(rejection) => Either::Right(Refused::new(rejection)),
        })
    }
}
