//! The connection supervisor: connects to the first broker of its list that answers,
//! watches the connection (heartbeats are lapin's), and after a loss reconnects to the
//! next broker that answers (round robin over the list), with exponential backoff and
//! jitter between full rounds. Listeners and reply inboxes watch its [`LinkState`] and
//! re-declare their topology and consumers on every new link, whichever node it is on.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::{Connection, Event};
use sealrpc_core::observe;
use sealrpc_core::transport::{Delivery, TransportError, TransportErrorKind};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::address::BrokerUrl;
use crate::address_list::{self, BrokerList};
use crate::connect::connect_round;
use crate::error;
use crate::options::AmqpOptions;
use crate::shutdown::{CLOSE_STEP, Shutdown, TaskGuard};

/// The `transport` label of this transport's metrics (see `sealrpc_core::observe`).
const TRANSPORT: &str = "amqp";

/// One live AMQP connection; `generation` counts (re)connections from 1, `broker` is the
/// position in the supervisor's list of the broker it is connected to.
pub(crate) struct Link {
    pub(crate) conn: Connection,
    pub(crate) generation: u64,
    pub(crate) broker: usize,
}

impl Link {
    /// True while lapin considers the connection open.
    pub(crate) fn alive(&self) -> bool {
        self.conn.status().connected()
    }
}

/// What the supervisor currently has.
#[derive(Clone)]
pub(crate) enum LinkState {
    /// Connected.
    Up(Arc<Link>),
    /// Lost; reconnecting. `error` is the latest failure.
    Down { error: TransportError },
    /// Closed for good.
    Closed,
}

/// Owns the connection and its reconnect loop.
pub(crate) struct Supervisor {
    pub(crate) opts: AmqpOptions,
    pub(crate) brokers: BrokerList,
    state: watch::Sender<LinkState>,
    closed: AtomicBool,
    close_notify: Notify,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

/// A random factor in [0.5, 1.5) applied to `d` (jitter, so clients do not reconnect in step).
pub(crate) fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 4];
    sealrpc_core::rand::fill(&mut b);
    let f = 0.5 + f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
    d.mul_f64(f.min(1.5))
}

/// The next backoff delay: doubled, capped at `max`.
pub(crate) fn next_delay(d: Duration, max: Duration) -> Duration {
    d.saturating_mul(2).min(max).max(Duration::from_millis(1))
}

/// After a listener or reply inbox lost its channel: waits for a live link and runs
/// `establish` on it, retrying with backoff and jitter. `None` once the transport is
/// closed or nobody reads `tx` any more.
pub(crate) async fn reestablish<T, Fut>(
    sup: &Supervisor,
    tx: &mpsc::Sender<Delivery>,
    what: &str,
    mut establish: impl FnMut(Arc<Link>) -> Fut,
) -> Option<T>
where
    Fut: Future<Output = Result<T, TransportError>>,
{
    let mut delay = sup.opts.reconnect_min;
    loop {
        if sup.is_closed() || tx.is_closed() {
            return None;
        }
        let link = tokio::select! {
            l = sup.wait_up(Duration::from_secs(3600)) => l,
            _ = tx.closed() => return None,
        };
        match link {
            Ok(link) => match establish(link).await {
                Ok(established) => return Some(established),
                Err(e) => tracing::warn!(error = %e, "re-establishing the {what} failed"),
            },
            Err(e) if e.kind == TransportErrorKind::Closed => return None,
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(jitter(delay)) => {}
            _ = tx.closed() => return None,
        }
        delay = next_delay(delay, sup.opts.reconnect_max);
    }
}

impl Supervisor {
    /// Connects once (failing fast with a clear error) and starts the reconnect loop.
    pub(crate) async fn start(opts: AmqpOptions) -> Result<Arc<Self>, TransportError> {
        let brokers = address_list::parse_list(&opts.url, opts.failover)?;
        let (conn, broker) = connect_round(&brokers, &opts, 0).await?;
        let link = Arc::new(Link {
            conn,
            generation: 1,
            broker,
        });
        let (state, _) = watch::channel(LinkState::Up(link.clone()));
        let sup = Arc::new(Self {
            opts,
            brokers,
            state,
            closed: AtomicBool::new(false),
            close_notify: Notify::new(),
            shutdown: Shutdown::default(),
        });
        tokio::spawn(sup.clone().run(link));
        Ok(sup)
    }

    /// The broker at position `pos` of the list.
    pub(crate) fn broker_url(&self, pos: usize) -> Option<&BrokerUrl> {
        self.brokers.brokers.get(pos)
    }

    /// A receiver of state changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }

    /// True once [`Supervisor::close`] ran.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Counts a channel task (listener, reply inbox, closing publishers): a clean close
    /// closes the connection only once every guard is dropped (or after a bound).
    pub(crate) fn track(&self) -> TaskGuard {
        self.shutdown.track()
    }

    /// Resolves once [`close`](Self::close) was called: channel tasks then cancel their
    /// consumers, close their channels and end.
    pub(crate) async fn closing(&self) {
        self.shutdown.closing().await;
    }

    /// The current link if it is up and alive.
    pub(crate) fn current(&self) -> Option<Arc<Link>> {
        match &*self.state.borrow() {
            LinkState::Up(l) if l.alive() => Some(l.clone()),
            _ => None,
        }
    }

    /// Waits up to `bound` for a live link.
    pub(crate) async fn wait_up(&self, bound: Duration) -> Result<Arc<Link>, TransportError> {
        let deadline = Instant::now() + bound;
        let mut rx = self.subscribe();
        loop {
            if self.is_closed() {
                return Err(error::closed());
            }
            let last = match &*rx.borrow_and_update() {
                LinkState::Up(l) if l.alive() => return Ok(l.clone()),
                LinkState::Up(_) => None,
                LinkState::Down { error } => Some(error.message.clone()),
                LinkState::Closed => return Err(error::closed()),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(error::unavailable(format!(
                    "AMQP broker at {} unavailable (waited {bound:?}){}",
                    self.brokers.redacted,
                    last.map(|m| format!(": {m}")).unwrap_or_default()
                )));
            }
            // Poll as well: a link can die before the supervisor notices.
            let step = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(step, rx.changed()).await;
        }
    }

    /// Stops reconnecting, tells the channel tasks to end, and (in the supervisor task,
    /// once they did) closes the connection.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.shutdown.begin();
            self.close_notify.notify_waiters();
            self.close_notify.notify_one();
        }
    }

    /// The clean close: the channel tasks end first (they cancel their consumers and
    /// close their channels), then the connection closes; every step is bounded.
    async fn close_link(&self, link: &Link) {
        self.shutdown.drained(CLOSE_STEP).await;
        if link.alive() {
            let close = link.conn.close(200, "closed".into());
            if let Ok(Err(e)) = tokio::time::timeout(CLOSE_STEP, close).await {
                tracing::debug!(error = %e, "closing the AMQP connection failed");
            }
        }
        self.state.send_replace(LinkState::Closed);
    }

    async fn run(self: Arc<Self>, mut link: Arc<Link>) {
        loop {
            let lost = tokio::select! {
                e = watch_link(&link) => e,
                _ = self.close_notify.notified() => None,
            };
            let Some(lost) = lost.filter(|_| !self.is_closed()) else {
                self.close_link(&link).await;
                return;
            };
            let (generation, lost_on) = (link.generation, link.broker);
            tracing::warn!(broker = ?self.broker_url(lost_on), error = %lost, "AMQP connection lost; reconnecting");
            observe::record_connection_lost(TRANSPORT);
            drop(link);
            self.state.send_replace(LinkState::Down { error: lost });
            let mut delay = self.opts.reconnect_min;
            // The next broker first: the one just lost is likely down.
            let mut start = lost_on + 1;
            link = loop {
                match connect_round(&self.brokers, &self.opts, start).await {
                    Ok((conn, broker)) => {
                        observe::record_reconnect(TRANSPORT, true);
                        tracing::info!(broker = ?self.broker_url(broker), "AMQP connection re-established");
                        break Arc::new(Link {
                            conn,
                            generation: generation + 1,
                            broker,
                        });
                    }
                    Err(e) => {
                        observe::record_reconnect(TRANSPORT, false);
                        tracing::debug!(error = %e, "AMQP reconnect attempt failed");
                        self.state.send_replace(LinkState::Down { error: e });
                        start = 0;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(jitter(delay)) => {}
                    _ = self.close_notify.notified() => {}
                }
                if self.is_closed() {
                    self.state.send_replace(LinkState::Closed);
                    return;
                }
                delay = next_delay(delay, self.opts.reconnect_max);
            };
            if self.is_closed() {
                self.close_link(&link).await;
                return;
            }
            self.state.send_replace(LinkState::Up(link.clone()));
        }
    }
}

/// Resolves when `link` dies, with the reason.
async fn watch_link(link: &Link) -> Option<TransportError> {
    let mut events = link.conn.events_listener();
    let mut last: Option<TransportError> = None;
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Event::Error(e)) => last = Some(error::from_lapin(&e, "connection")),
                Some(_) => {}
                None => tokio::time::sleep(Duration::from_millis(200)).await,
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if !link.alive() {
            return Some(last.unwrap_or_else(|| error::unavailable("the AMQP connection closed")));
        }
    }
}

/// Waits until a broker accepts a connection at `url` (connect, then close), for up to
/// `timeout`; with a list (see [`AmqpOptions::url`]), until any of them does. For tests
/// and start-up scripts; returns the last connection error on timeout.
pub async fn wait_for_broker(url: &str, timeout: Duration) -> Result<(), TransportError> {
    let opts = AmqpOptions {
        connect_timeout: Duration::from_secs(2),
        ..AmqpOptions::default().with_url(url)
    };
    let brokers = address_list::parse_list(url, opts.failover)?;
    let deadline = Instant::now() + timeout;
    loop {
        match connect_round(&brokers, &opts, 0).await {
            Ok((conn, _)) => {
                let _ = conn.close(200, "probe".into()).await;
                return Ok(());
            }
            Err(e) if e.kind == TransportErrorKind::AccessRefused => return Err(e),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
