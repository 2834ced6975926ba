//! [`Node`]: one process's identity on the bus. Its clients and servers are built on one
//! transport and one [`Security`](crate::security::Security) runtime (one replay guard, one set of counters, one
//! policy), so they cannot drift apart. And [`IntoTransport`], so that builders take any
//! transport as it comes.

use std::sync::Arc;

use crate::client::{Client, ClientBuilder};
use crate::notify::{ListenerBuilder, NotifierBuilder};
use crate::security::{Security, SecurityConfig};
use crate::server::{Server, ServerBuilder};
use crate::transport::Transport;

/// A transport as builders take it: any [`Transport`] by value, an `Arc` of one, or an
/// `Arc<dyn Transport>`.
pub trait IntoTransport {
    /// The shared transport.
    fn into_transport(self) -> Arc<dyn Transport>;
}

impl IntoTransport for Arc<dyn Transport> {
    fn into_transport(self) -> Arc<dyn Transport> {
        self
    }
}

impl<T: Transport> IntoTransport for Arc<T> {
    fn into_transport(self) -> Arc<dyn Transport> {
        self
    }
}

impl<T: Transport> IntoTransport for T {
    fn into_transport(self) -> Arc<dyn Transport> {
        Arc::new(self)
    }
}

/// A node: a transport and the node's one security runtime, shared by every client and
/// server it builds. Cheap to clone.
///
/// ```
/// # async fn demo() -> Result<(), sealrpc_core::Error> {
/// use sealrpc_core::{MemoryTransport, Node, Principal};
/// use sealrpc_core::security::SecurityConfig;
/// let me = Principal::parse("control:conductor").ok_or(sealrpc_core::Error::Invalid("principal".into()))?;
/// let node = Node::new(MemoryTransport::new(), SecurityConfig::insecure(me));
/// let server = node.server().topic("conductor").start().await?;
/// let client = node.client().build().await?;
/// assert!(std::sync::Arc::ptr_eq(client.security(), node.security()));
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Node {
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
}

impl Node {
    /// A node on `transport`, secured as `config` says (its runtime is built here, once).
    pub fn new(transport: impl IntoTransport, config: SecurityConfig) -> Self {
        Self::with_security(transport, config.build())
    }

    /// A node on `transport` around an already built security runtime.
    pub fn with_security(transport: impl IntoTransport, security: Arc<Security>) -> Self {
        Self {
            transport: transport.into_transport(),
            security,
        }
    }

    /// A client builder on this node's transport and security.
    pub fn client(&self) -> ClientBuilder {
        Client::builder(Arc::clone(&self.transport), Arc::clone(&self.security))
    }

    /// A server builder on this node's transport and security.
    pub fn server(&self) -> ServerBuilder {
        Server::builder(Arc::clone(&self.transport), Arc::clone(&self.security))
    }

    /// A notifier publishing as `publisher_id` (e.g. `trove-guestagent.<id>`; a guest may
    /// name only itself, see [`publisher_fits`](crate::notify::publisher_fits)), on this
    /// node's transport and security.
    pub fn notifier(&self, publisher_id: impl Into<String>) -> NotifierBuilder {
        NotifierBuilder::new(
            Arc::clone(&self.transport),
            Arc::clone(&self.security),
            publisher_id.into(),
        )
    }

    /// A notification listener of `pool` (every pool gets every notification; the
    /// listeners of one pool compete), on this node's transport and security.
    pub fn notification_listener(&self, pool: impl Into<String>) -> ListenerBuilder {
        ListenerBuilder::new(
            Arc::clone(&self.transport),
            Arc::clone(&self.security),
            pool.into(),
        )
    }

    /// The node's security runtime (policy, counters, replay guard).
    pub fn security(&self) -> &Arc<Security> {
        &self.security
    }

    /// The node's transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }
}
