//! Usage notifications, as Trove's guests send them: each guest reports
//! `trove.instance.usage` (priority info) to the `notifications` topic, sealed under its
//! K3 and signed as itself; the conductor listens in pool `conductor` and counts them.

use std::sync::Arc;

use sealrpc_core::notify::{ListenerHandle, Priority};
use sealrpc_core::security::Security;
use sealrpc_core::transport::Transport;
use sealrpc_core::{Context, Node};
use serde::{Deserialize, Serialize};

use super::BoxError;
use super::api::Topics;
use super::guest::Guest;
use super::ledger::Ledger;
use super::services::CONDUCTOR;

/// What a guest reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    /// The reporting instance.
    pub instance_id: String,
    /// Its volume size.
    pub volume_gb: u32,
}

sealrpc_core::notification! {
    /// Guest -> control plane (notification): my instance's usage.
    pub struct InstanceUsage = "trove.instance.usage"(Usage), priority = Info;
}

/// The ledger's name for a counted usage notification.
pub const USAGE: &str = "notify:trove.instance.usage";

/// The publisher id of guest `id` (a guest may name only itself).
pub fn publisher_id(id: &str) -> String {
    format!("trove-guestagent.{id}")
}

/// The conductor's listener, pool `conductor`: counts each usage report in the ledger
/// (as executed) when the authenticated guest reports on its own instance, else as denied.
pub async fn listen(
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
    topics: &Topics,
    ledger: Arc<Ledger>,
) -> Result<ListenerHandle, BoxError> {
    let handle = Node::with_security(transport, security)
        .notification_listener("conductor")
        .target(topics.notifications.clone(), Priority::Info)
        .filter(sealrpc_core::notify::Filter::event_type("trove.instance.*"))
        .handler(move |n| {
            let ledger = Arc::clone(&ledger);
            async move {
                let own = n.payload::<Usage>().ok().is_some_and(|u| {
                    n.sender
                        .as_ref()
                        .and_then(|p| p.guest_id())
                        .is_some_and(|g| g == u.instance_id)
                });
                if n.is::<InstanceUsage>() && own {
                    ledger.executed(CONDUCTOR, USAGE);
                } else {
                    ledger.denied(CONDUCTOR, USAGE);
                }
            }
        })
        .start()
        .await?;
    Ok(handle)
}

/// Guest `g` reports its usage.
pub async fn emit(g: &Guest, topics: &Topics, volume_gb: u32) -> Result<(), BoxError> {
    let notifier = Node::with_security(Arc::clone(&g.link.transport), Arc::clone(&g.security))
        .notifier(publisher_id(&g.id))
        .topics([topics.notifications.clone()])
        .build()?;
    let usage = Usage {
        instance_id: g.id.clone(),
        volume_gb,
    };
    notifier
        .emit::<InstanceUsage>(&Context::new(), &usage)
        .await?;
    Ok(())
}
