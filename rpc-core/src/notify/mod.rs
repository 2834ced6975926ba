//! Notifications, as oslo.messaging's `Notifier` and notification listeners, signed and
//! sealed like RPC (docs/notifications.md).
//!
//! A [`Notifier`] sends `{event_type, publisher_id, payload, ctx}` one way to
//! `<topic>.<priority>` as a `notify` message (docs/wire-format.md §4.3). Listeners
//! ([`NotificationListener`]) consume in **pools**: every pool gets every notification,
//! the listeners of one pool compete for them. A listener admits a notification through
//! the same receive pipeline as a server (signature, seal, policy, replay guard), and
//! its handler gets the authenticated sender: a guest's notifications arrive as
//! `guest:<id>`, and their `publisher_id` must be the guest's own
//! ([`publisher_fits`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use sealrpc_core::notify::{Filter, Priority};
//! use sealrpc_core::{Context, MemoryTransport, Node, Principal};
//! use sealrpc_core::security::SecurityConfig;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = MemoryTransport::new();
//! let node = |p| Principal::parse(p).map(|p| Node::new(bus.clone(), SecurityConfig::insecure(p)));
//! let seen = Arc::new(AtomicU32::new(0));
//! let counter = Arc::clone(&seen);
//! let listener = node("control:conductor").ok_or("bad principal")?
//!     .notification_listener("conductor")
//!     .target("notifications", Priority::Info)
//!     .filter(Filter::event_type("trove.instance.*"))
//!     .handler(move |n| {
//!         let counter = Arc::clone(&counter);
//!         async move { counter.fetch_add(1, Ordering::Relaxed); let _ = n; }
//!     })
//!     .start()
//!     .await?;
//! let notifier = node("control:taskmanager").ok_or("bad principal")?
//!     .notifier("taskmanager.host1")
//!     .build()?;
//! notifier.info(&Context::new(), "trove.instance.create", &"7f3a").await?;
//! listener.wait_handled(1).await;
//! assert_eq!(seen.load(Ordering::Relaxed), 1);
//! listener.shutdown().await;
//! # Ok(()) }
//! ```

mod filter;
mod listener;
mod notifier;
mod pool;

use std::fmt;

pub use filter::{Filter, Pattern};
pub use listener::{IncomingNotification, ListenerBuilder, ListenerHandle, NotificationListener};
pub use notifier::{Notifier, NotifierBuilder};

use crate::principal::Principal;

/// A typed notification, declared once with [`notification!`](crate::notification): its
/// event type, priority and payload type, for [`Notifier::emit`] and
/// [`IncomingNotification::is`].
pub trait Event {
    /// The event type, e.g. `trove.instance.usage`.
    const EVENT_TYPE: &'static str;
    /// The priority it is sent at.
    const PRIORITY: Priority;
    /// The payload's type.
    type Payload: serde::Serialize + serde::de::DeserializeOwned;
}

/// Declares typed notifications ([`Event`]s), in the style of [`rpc!`](crate::rpc):
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// pub struct Usage { instance_id: String, volume_gb: u32 }
/// sealrpc_core::notification! {
///     /// A guest's periodic usage report.
///     pub struct InstanceUsage = "trove.instance.usage"(Usage), priority = Info;
/// }
/// use sealrpc_core::notify::{Event, Priority};
/// assert_eq!(InstanceUsage::PRIORITY, Priority::Info);
/// ```
#[macro_export]
macro_rules! notification {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident = $event:literal ($payload:ty), priority = $prio:ident
    );+ $(;)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        $vis struct $name;

        impl $crate::notify::Event for $name {
            const EVENT_TYPE: &'static str = $event;
            const PRIORITY: $crate::notify::Priority = $crate::notify::Priority::$prio;
            type Payload = $payload;
        }
    )+};
}

/// oslo's default notification topic.
pub const DEFAULT_TOPIC: &str = "notifications";

/// A notification's priority: the last part of its address (`<topic>.<priority>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// `audit`
    Audit,
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
    /// `critical`
    Critical,
    /// `sample`
    Sample,
}

impl Priority {
    /// Every priority.
    pub const ALL: [Priority; 7] = [
        Priority::Audit,
        Priority::Debug,
        Priority::Info,
        Priority::Warn,
        Priority::Error,
        Priority::Critical,
        Priority::Sample,
    ];

    /// The wire spelling (lowercase, as oslo's).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Audit => "audit",
            Priority::Debug => "debug",
            Priority::Info => "info",
            Priority::Warn => "warn",
            Priority::Error => "error",
            Priority::Critical => "critical",
            Priority::Sample => "sample",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `sender` may publish as `publisher_id`. A control-plane principal names any
/// publisher; guest `g` names only itself: `guest:g`, `g`, or `<service>.g` where
/// `<service>` holds no `.` (oslo's `service.host`), e.g. `trove-guestagent.g`. Splitting at
/// the first `.` keeps it unambiguous when instance ids hold dots.
pub fn publisher_fits(sender: &Principal, publisher_id: &str) -> bool {
    let Some(id) = sender.guest_id() else {
        return !publisher_id.is_empty();
    };
    publisher_id == sender.as_str()
        || publisher_id == id
        || publisher_id
            .split_once('.')
            .is_some_and(|(service, host)| !service.is_empty() && host == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_round_trip() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
        }
        assert_eq!(Priority::parse("INFO"), None);
    }

    #[test]
    fn a_guest_publishes_only_as_itself() {
        let g = Principal::parse("guest:a.b").unwrap_or_else(Principal::control);
        assert!(publisher_fits(&g, "guest:a.b"));
        assert!(publisher_fits(&g, "a.b"));
        assert!(publisher_fits(&g, "trove-guestagent.a.b"));
        let b = Principal::parse("guest:b").unwrap_or_else(Principal::control);
        assert!(
            !publisher_fits(&b, "x.a.b"),
            "guest b cannot pass for guest a.b"
        );
        assert!(!publisher_fits(&b, "trove-guestagent.c"));
        assert!(!publisher_fits(&b, ".b"));
        assert!(!publisher_fits(&b, "guest:c"));
        let cp = Principal::parse("control:api").unwrap_or_else(Principal::control);
        assert!(publisher_fits(&cp, "api.host1"));
    }
}
