//! [`Target`]: where a call or cast goes, which interface version it needs, and whom it is
//! for (which decides the seal key).

use std::sync::Arc;

use crate::security::Peer;
use crate::transport::Address;
use crate::version::Version;

/// Where a message goes (lapin-style options: public fields plus builder methods). Its
/// names are shared: a call clones its target without copying them.
///
/// ```
/// use sealrpc_core::{Target, Version};
/// let t = Target::new("conductor").version(Version::new(1, 2));
/// assert_eq!(t.address().dst(), "conductor");
/// let g = Target::guest("guestagent", "7f3a");
/// assert_eq!(g.address().dst(), "guestagent.7f3a");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The topic (an interface, e.g. `conductor`).
    pub topic: Arc<str>,
    /// One named server of the topic; `None` lets any server of the topic take it.
    pub server: Option<Arc<str>>,
    /// The namespace; `None` is the default namespace.
    pub namespace: Option<Arc<str>>,
    /// The interface version the message needs (default `1.0`).
    pub version: Version,
    /// Send to every server of the topic (casts only).
    pub fanout: bool,
    /// Whom the message is for: decides the seal key, and who may answer a call.
    /// `None` means the default: [`Peer::Guests`] for fanout, else [`Peer::ControlPlane`].
    pub peer: Option<Peer>,
}

impl Target {
    /// Any server of `topic`, version 1.0, for the control plane.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: Arc::from(topic.into()),
            server: None,
            namespace: None,
            version: Version::new(1, 0),
            fanout: false,
            peer: None,
        }
    }

    /// The guest agent of instance `instance_id` on `topic`: server = the instance id,
    /// sealed for (and answerable only by) `guest:<instance_id>`.
    pub fn guest(topic: impl Into<String>, instance_id: impl Into<String>) -> Self {
        let id = instance_id.into();
        let server = Arc::from(id.as_str());
        Self {
            server: Some(server),
            ..Self::new(topic)
        }
        .peer(Peer::Guest(id))
    }

    /// Addresses one named server.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(Arc::from(server.into()));
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(Arc::from(namespace.into()));
        self
    }

    /// Sets the interface version needed.
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Sends to every server of the topic (casts only).
    pub fn fanout(mut self, fanout: bool) -> Self {
        self.fanout = fanout;
        self
    }

    /// Says whom the message is for.
    pub fn peer(mut self, peer: Peer) -> Self {
        self.peer = Some(peer);
        self
    }

    /// The peer in effect: the one set, else [`Peer::Guests`] for fanout and
    /// [`Peer::ControlPlane`] otherwise.
    pub fn effective_peer(&self) -> Peer {
        match (&self.peer, self.fanout) {
            (Some(p), _) => p.clone(),
            (None, true) => Peer::Guests,
            (None, false) => Peer::ControlPlane,
        }
    }

    /// [`Self::effective_peer`], taken out of the target (whose `peer` is then `None`): a
    /// call that owns its target sends to its peer without copying it.
    pub(crate) fn take_effective_peer(&mut self) -> Peer {
        let fanout = self.fanout;
        match self.peer.take() {
            Some(p) => p,
            None if fanout => Peer::Guests,
            None => Peer::ControlPlane,
        }
    }

    /// The transport address: fanout, else the named server, else the shared topic.
    pub fn address(&self) -> Address {
        // `str::to_owned`, not `to_string` (which formats an `Arc<str>`).
        let topic = self.topic.as_ref().to_owned();
        match (&self.server, self.fanout) {
            (_, true) => Address::Fanout(topic),
            (Some(server), false) => Address::Server {
                topic,
                server: server.as_ref().to_owned(),
            },
            (None, false) => Address::Topic(topic),
        }
    }
}
