//! The security steps as tower layers, so that they compose with the user's own layers
//! and can drive a custom transport loop.
//!
//! - [`AdmitLayer`] runs the receive pipeline (limits, decode, signature, seal, replay,
//!   policy, addressing, broker-user binding) on a received message and passes only
//!   admitted messages to the service it wraps; rejections are answered with
//!   [`Admission::Rejected`] and never reach it.
//! - [`SealLayer`] seals and signs an outbound message as the policy for its peer says
//!   and passes the envelope bytes, as an [`Outgoing`](crate::transport::Outgoing), to the
//!   service it wraps, typically a [`TransportSender`].
//!
//! The client and the server are built from these same layers: a server is
//! `AdmitLayer` → dispatch (with the user's layers) → `SealLayer` → transport, and a
//! client is `SealLayer` → transport for requests and `AdmitLayer` → pending calls for
//! replies.

mod admit;
mod seal;
mod sender;

pub use admit::{
    Admission, Admit, AdmitFuture, AdmitLayer, AdmittedMessage, BrokerUserCheck, Inbound, Refused,
};
pub use seal::{Seal, SealFuture, SealLayer, SealRequest};
pub(crate) use sender::{CallNow, call_now};
pub use sender::{CallSender, TransportSender};
