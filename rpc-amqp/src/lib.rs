//! # sealrpc-amqp
//!
//! The RabbitMQ transport of sealrpc, on lapin (tokio). [`AmqpTransport`] implements
//! [`sealrpc_core::transport::Transport`] with an oslo.messaging-like topology (a topic
//! control exchange with `topic` and `topic.server` queues, a `<topic>_fanout` exchange
//! per topic), direct reply-to for replies, mandatory publishes with publisher confirms
//! (`NoListener` fails fast), the AMQP `user-id` on every message, and reconnection with
//! exponential backoff that re-declares topology and consumers. Given several broker
//! addresses (a list of URLs or oslo's `rabbit://h1,h2/vhost`), it fails over between the
//! nodes of a cluster; with `durable` and `quorum_queues` its topic and server queues are
//! quorum queues (see `docs/amqp.md`, "Clusters").
//!
//! [`credentials`] generates per-guest broker users whose permissions let a guest read
//! only its own queues and publish only the routing keys it may use; [`admin`] applies
//! them with `rabbitmqctl`. See `docs/amqp.md` for the operator's view.
#![forbid(unsafe_code)]

mod address;
mod address_list;
pub mod admin;
mod connect;
mod connection;
mod consume;
pub mod credentials;
pub mod error;
pub mod options;
mod publish;
mod reply;
pub mod topology;
mod transport;

pub use address::redact_url;
pub use connection::wait_for_broker;
pub use credentials::{CredentialPolicy, GuestCredentials};
pub use options::{AmqpOptions, FailoverOrder, TlsIdentity};
pub use transport::AmqpTransport;
