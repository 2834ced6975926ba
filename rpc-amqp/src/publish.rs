//! Publishing: mandatory publishes on confirm-mode channels, one in flight per channel.
//!
//! Each publish waits for its publisher confirm. That is how an unroutable message is
//! noticed (RabbitMQ sends `basic.return` before the `basic.ack` of a mandatory message
//! that reached no queue), and keeping one publish in flight per channel makes the
//! return/confirm pairing exact. Concurrency comes from a pool of channels. A call's
//! publish hands its confirm to the caller instead (see `reply::Inbox::publish_call`), but
//! its channel still carries nothing else until that confirm is in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};
use sealrpc_core::transport::{TransportError, TransportErrorKind};
use tokio::sync::Mutex;

use crate::connection::Link;
use crate::error;

/// What to publish.
pub(crate) struct Publish<'a> {
    pub(crate) exchange: &'a str,
    pub(crate) routing_key: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) properties: BasicProperties,
    pub(crate) mandatory: bool,
}

/// How a publish ended when the broker confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Delivered to at least one queue (or to a fanout exchange).
    Yes,
    /// Returned as unroutable (`reply code`, `reply text`).
    Returned(u16, String),
}

/// Why a publish failed; `poisoned` says the channel must not be reused.
pub(crate) struct Failed {
    pub(crate) error: TransportError,
    pub(crate) reply_code: Option<u16>,
    pub(crate) poisoned: bool,
}

/// Opens a confirm-mode channel.
pub(crate) async fn confirm_channel(link: &Link) -> Result<Channel, TransportError> {
    let ch = link
        .conn
        .create_channel()
        .await
        .map_err(|e| error::from_lapin(&e, "open channel"))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| error::from_lapin(&e, "enable publisher confirms"))?;
    Ok(ch)
}

/// Publishes `p` on `ch` and waits up to `timeout` for its confirm.
pub(crate) async fn publish_confirmed(
    ch: &Channel,
    p: Publish<'_>,
    timeout: Duration,
) -> Result<Routed, Failed> {
    let (what, confirm) = publish_unconfirmed(ch, p).await?;
    await_confirm(&what, confirm, timeout).await
}

/// Where a publish went, named in its errors (formatted only when one is made: the
/// quoted, escaped form costs more than the rest of a publish's own work).
pub(crate) struct PublishTarget {
    exchange: String,
    routing_key: String,
}

impl std::fmt::Display for PublishTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "publish to exchange {:?} key {:?}",
            self.exchange, self.routing_key
        )
    }
}

/// Publishes `p` on `ch` and returns once it is written, with what it was (for errors) and
/// its confirm still to come. Until that confirm is in, `ch` must carry no other publish.
pub(crate) async fn publish_unconfirmed(
    ch: &Channel,
    p: Publish<'_>,
) -> Result<(PublishTarget, PublisherConfirm), Failed> {
    let what = PublishTarget {
        exchange: p.exchange.to_owned(),
        routing_key: p.routing_key.to_owned(),
    };
    let confirm = ch
        .basic_publish(
            p.exchange.into(),
            p.routing_key.into(),
            BasicPublishOptions {
                mandatory: p.mandatory,
                immediate: false,
            },
            p.payload,
            p.properties,
        )
        .await
        .map_err(|e| lapin_failed(&what, &e))?;
    Ok((what, confirm))
}

fn lapin_failed(what: &PublishTarget, e: &lapin::Error) -> Failed {
    Failed {
        error: error::from_lapin(e, &what.to_string()),
        reply_code: error::amqp_reply(e).map(|r| r.0),
        poisoned: true,
    }
}

/// Waits up to `timeout` for the confirm of the publish `what`.
pub(crate) async fn await_confirm(
    what: &PublishTarget,
    confirm: PublisherConfirm,
    timeout: Duration,
) -> Result<Routed, Failed> {
    let confirmation = match tokio::time::timeout(timeout, confirm).await {
        Err(_) => {
            return Err(Failed {
                error: TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("{what}: no publisher confirm within {timeout:?}"),
                ),
                reply_code: None,
                poisoned: true,
            });
        }
        Ok(r) => r.map_err(|e| lapin_failed(what, &e))?,
    };
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(Routed::Yes),
        Confirmation::Ack(Some(ret)) => {
            Ok(Routed::Returned(ret.reply_code, ret.reply_text.to_string()))
        }
        // A nack says the broker did not take the message (e.g. a quorum queue without a
        // quorum, or with its leader being elected): nothing was enqueued, a retry is safe.
        Confirmation::Nack(_) => Err(Failed {
            error: TransportError::new(
                TransportErrorKind::Unavailable,
                format!(
                    "{what}: the broker nacked the message (it did not take it, e.g. a \
                     quorum queue without a quorum); retriable"
                ),
            ),
            reply_code: None,
            poisoned: false,
        }),
    }
}

type ConfirmFuture = Pin<Box<dyn Future<Output = Result<Routed, Failed>> + Send>>;

/// A call's confirm still to come. It holds its channel's publish lock until the confirm
/// is in; dropped before that (the call's reply came first, or the caller gave up), it
/// finishes in a task of its own, bounded by the confirm timeout, so that the channel's
/// next publish still pairs returns and confirms exactly.
pub(crate) struct PendingConfirm {
    confirm: Option<ConfirmFuture>,
    late: Arc<AtomicUsize>,
}

impl PendingConfirm {
    /// The confirm that `outcome` (which holds the channel's publish lock) resolves;
    /// `late` counts those finishing after they were dropped.
    pub(crate) fn new(
        outcome: impl Future<Output = Result<Routed, Failed>> + Send + 'static,
        late: &Arc<AtomicUsize>,
    ) -> Self {
        Self {
            confirm: Some(Box::pin(outcome)),
            late: Arc::clone(late),
        }
    }
}

impl Future for PendingConfirm {
    type Output = Result<Routed, Failed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(confirm) = self.confirm.as_mut() else {
            return Poll::Ready(Err(Failed {
                error: error::closed(),
                reply_code: None,
                poisoned: false,
            }));
        };
        let outcome = std::task::ready!(confirm.as_mut().poll(cx));
        self.confirm = None;
        Poll::Ready(outcome)
    }
}

impl Drop for PendingConfirm {
    fn drop(&mut self) {
        let Some(confirm) = self.confirm.take() else {
            return;
        };
        // Outside a runtime (a transport dropped at exit) the lock is just released.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let late = Arc::clone(&self.late);
            late.fetch_add(1, Ordering::Relaxed);
            rt.spawn(async move {
                let _ = confirm.await;
                late.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
}

struct Slot {
    channel: Mutex<Option<(u64, Channel)>>,
}

/// A pool of confirm-mode channels, each publishing one message at a time.
pub(crate) struct PublisherPool {
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl PublisherPool {
    /// A pool of `n` (at least 1) channels, opened lazily.
    pub(crate) fn new(n: usize) -> Self {
        Self {
            slots: (0..n.max(1))
                .map(|_| Slot {
                    channel: Mutex::new(None),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Publishes `p` on `link` through a free channel of the pool (or the next in turn).
    pub(crate) async fn publish(
        &self,
        link: &Link,
        p: Publish<'_>,
        timeout: Duration,
    ) -> Result<Routed, Failed> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut guard = None;
        for i in 0..n {
            if let Ok(g) = self.slots[(start + i) % n].channel.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => self.slots[start].channel.lock().await,
        };
        let usable =
            matches!(&*guard, Some((g, ch)) if *g == link.generation && ch.status().connected());
        if !usable {
            *guard = None;
            let ch = confirm_channel(link).await.map_err(|error| Failed {
                error,
                reply_code: None,
                poisoned: true,
            })?;
            *guard = Some((link.generation, ch));
        }
        let Some((_, ch)) = guard.as_ref() else {
            return Err(Failed {
                error: error::unavailable("no publisher channel"),
                reply_code: None,
                poisoned: true,
            });
        };
        let res = publish_confirmed(ch, p, timeout).await;
        if let Err(f) = &res
            && f.poisoned
        {
            *guard = None;
        }
        res
    }

    /// Takes the idle channels out of the pool, for a clean close to close them (a channel
    /// a publish holds right now stays with it).
    pub(crate) fn take_channels(&self) -> Vec<Channel> {
        self.slots
            .iter()
            .filter_map(|s| s.channel.try_lock().ok()?.take())
            .map(|(_, ch)| ch)
            .collect()
    }
}
