//! Notification listeners: a pool's queue per `topic.priority` on the notification
//! exchange, consumed into a [`Subscription`](sealrpc_core::transport::Subscription) and
//! re-established across reconnects like a server's.

use std::sync::Arc;

use sealrpc_core::transport::{Delivery, NotifyListenSpec, TransportError};
use tokio::sync::mpsc;

use crate::connection::{Link, Supervisor, reestablish};
use crate::consume::{Established, consume, forward};
use crate::shutdown::TaskGuard;
use crate::topology;

/// Declares the notification exchange and `spec`'s pool queues (one per target, bound
/// with `topic.priority`) on a new channel of `link`, and consumes them (competing with
/// the pool's other listeners).
pub(crate) async fn establish(
    link: &Link,
    sup: &Supervisor,
    spec: &NotifyListenSpec,
) -> Result<Established, TransportError> {
    let opts = &sup.opts;
    let ch = crate::consume::listener_channel(link, opts).await?;
    topology::declare_notify(&ch, opts).await?;
    let mut consumers = Vec::with_capacity(spec.targets.len());
    for (topic, priority) in &spec.targets {
        let queue = topology::notify_queue(&spec.pool, topic, priority.as_str());
        let key = format!("{topic}.{priority}");
        topology::declare_notify_queue(&ch, opts, &queue, &key).await?;
        consumers.push(consume(&ch, &queue, false).await?);
    }
    Ok(Established {
        channel: ch,
        consumers,
    })
}

/// Runs a notification listener: forwards from `first`, then re-establishes after every
/// loss for as long as the subscriber is there.
pub(crate) async fn run(
    sup: Arc<Supervisor>,
    spec: NotifyListenSpec,
    first: Established,
    tx: mpsc::Sender<Delivery>,
    _task: TaskGuard,
) {
    let mut current = first;
    while forward(current, &sup, &tx).await {
        let again = reestablish(&sup, &tx, "notification listener", |link| {
            let (sup, spec) = (&sup, &spec);
            async move { establish(&link, sup, spec).await }
        });
        let Some(est) = again.await else { return };
        tracing::info!(pool = %spec.pool, "notification listener re-established");
        current = est;
    }
}
