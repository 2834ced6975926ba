//! # sealrpc-amqp
//!
//! The RabbitMQ transport of sealrpc, on lapin (tokio). [`AmqpTransport`] implements
//! [`sealrpc_core::transport::Transport`] with an oslo.messaging-like topology (a topic
//! control exchange with `topic` and `topic.server` queues, a `<topic>_fanout` exchange
//! per topic, a `<topic>_ingress` exchange per topic for guests), direct reply-to and a
//! reply exchange for replies, mandatory publishes with publisher confirms
//! (`NoListener` fails fast), the AMQP `user-id` on every message, and reconnection with
//! exponential backoff that re-declares topology and consumers. Given several broker
//! addresses (a list of URLs or oslo's `rabbit://h1,h2/vhost`), it fails over between the
//! nodes of a cluster; with `durable` and `quorum_queues` its topic and server queues are
//! quorum queues (see `docs/amqp.md`, "Clusters").
//!
//! [`credentials`] generates per-guest broker users that configure nothing, read only
//! their own queues and deliver only to the topics they may call and to the reply queues
//! of calls they answer; [`admin`] applies them (with limits and an operator policy) with
//! `rabbitmqctl`, and [`AmqpTransport::provision_guest`] declares their queues; for a fleet,
//! [`fleet`] imports hundreds of them at once through the [`management`] HTTP API. See
//! `docs/amqp.md` for the operator's view.
#![forbid(unsafe_code)]

mod address;
mod address_list;
pub mod admin;
mod connect;
mod connection;
mod consume;
pub mod credentials;
pub mod error;
pub mod fleet;
mod http;
pub mod management;
mod notify;
pub mod options;
pub mod provision;
mod publish;
mod reply;
mod shutdown;
pub mod topology;
mod transport;

pub use address::redact_url;
pub use connection::wait_for_broker;
pub use credentials::{CredentialPolicy, GuestCredentials};
pub use http::HttpError;
pub use options::{AmqpOptions, FailoverOrder, LEAN_FRAME_MAX, TlsIdentity};
pub use transport::AmqpTransport;
