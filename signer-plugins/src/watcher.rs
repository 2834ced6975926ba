//! Live reload of the rotation state in a running service.
//!
//! A [`RotationWatcher`] looks at a [`RotationSource`] every interval (default 1 s) and,
//! when the state changed, swaps it into the service's [`RotationTable`] in one step and
//! drops the derived-key cache, so that a `sealrpc-keys revoke` reaches the service within
//! one interval plus one read (at most 2 s with the default), with no restart. A state
//! that cannot be read or parsed changes nothing: the service keeps the state it has (it
//! never fails open), the failure is counted and logged at error level.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::control::ControlPlaneKeys;
use crate::derived::DerivedKeys;
use crate::error::Error;
use crate::rotation::RotationTable;
use crate::source::{Fetched, RotationSource, StateVersion};

/// Default time between two looks at the source.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Shortest interval accepted (shorter ones are raised to it).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// While the source keeps failing, the error is logged again every this many looks.
const RELOG_EVERY: u64 = 60;

/// How a [`RotationWatcher`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// Time between two looks at the source (default 1 s, at least [`MIN_INTERVAL`]).
    pub interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
        }
    }
}

impl WatchOptions {
    /// Options with `interval` between two looks.
    pub fn interval(interval: Duration) -> Self {
        Self { interval }
    }
}

/// What a watcher has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReloadStats {
    /// Changed states swapped in (the initial load not counted).
    pub applied: u64,
    /// Looks that failed (unreadable, insecure or corrupt state): the old state was kept.
    pub failed: u64,
    /// True while the latest look failed.
    pub failing: bool,
}

/// Watches a rotation source and keeps a shared table up to date; stops when dropped.
#[derive(Debug)]
pub struct RotationWatcher {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    table: Arc<RotationTable>,
    keys: Option<Arc<DerivedKeys>>,
    source: Arc<dyn RotationSource>,
    applied: Mutex<Option<StateVersion>>,
    reloads: AtomicU64,
    failures: AtomicU64,
    streak: AtomicU64,
    failing: AtomicBool,
    wake: Notify,
}

impl RotationWatcher {
    /// Loads `source` into `table` now (an unreadable or corrupt state is an error: a
    /// service does not start on it), then keeps watching it on the current tokio runtime.
    pub fn start(
        table: Arc<RotationTable>,
        source: impl RotationSource,
        options: WatchOptions,
    ) -> Result<Self, Error> {
        Self::start_inner(table, None, Arc::new(source), options)
    }

    /// [`Self::start`] for a control-plane service's keys: their table, and their
    /// derived-key cache dropped at every change.
    pub fn start_for_keys(
        keys: &ControlPlaneKeys,
        source: impl RotationSource,
        options: WatchOptions,
    ) -> Result<Self, Error> {
        Self::start_inner(
            Arc::clone(keys.rotation()),
            Some(Arc::clone(keys.derived())),
            Arc::new(source),
            options,
        )
    }

    fn start_inner(
        table: Arc<RotationTable>,
        keys: Option<Arc<DerivedKeys>>,
        source: Arc<dyn RotationSource>,
        options: WatchOptions,
    ) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let shared = Arc::new(Shared {
            table,
            keys,
            source,
            applied: Mutex::new(None),
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            streak: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            wake: Notify::new(),
        });
        shared.look(true)?;
        shared.table.set_mirrored();
        let interval = options.interval.max(MIN_INTERVAL);
        let task = runtime.spawn(watch(Arc::clone(&shared), interval));
        Ok(Self { shared, task })
    }

    /// Looks at the source now, on this thread (it may block on I/O); true if a changed
    /// state was applied. Failures are counted and logged like the periodic looks.
    pub fn check_now(&self) -> Result<bool, Error> {
        self.shared.look(false)
    }

    /// Makes the background task look at once instead of at its next tick (for a change
    /// announcement arriving by another way, e.g. over the bus).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// A handle that makes this watcher look at once (like [`Self::wake`]), for a change
    /// listener running elsewhere (PostgreSQL `NOTIFY`, a bus announcement). It holds the
    /// watcher weakly: once the watcher is dropped, waking does nothing.
    pub fn waker(&self) -> RotationWaker {
        RotationWaker(Arc::downgrade(&self.shared))
    }

    /// What the watcher has done so far.
    pub fn stats(&self) -> ReloadStats {
        ReloadStats {
            applied: self.shared.reloads.load(Ordering::Relaxed),
            failed: self.shared.failures.load(Ordering::Relaxed),
            failing: self.shared.failing.load(Ordering::Relaxed),
        }
    }

    /// The table this watcher keeps up to date.
    pub fn table(&self) -> &Arc<RotationTable> {
        &self.shared.table
    }
}

/// Makes a [`RotationWatcher`] look at its source at once; see [`RotationWatcher::waker`].
///
/// A wake-up carries no state: the watcher re-reads its source, so a forged or replayed
/// wake-up costs one read and changes nothing by itself.
#[derive(Debug, Clone)]
pub struct RotationWaker(Weak<Shared>);

impl RotationWaker {
    /// Asks the watcher to look now; false if the watcher is gone.
    pub fn wake(&self) -> bool {
        match self.0.upgrade() {
            Some(shared) => {
                shared.wake.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Drop for RotationWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(shared: Arc<Shared>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; the state was just loaded
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shared.wake.notified() => {}
        }
        let s = Arc::clone(&shared);
        // File or network I/O: off the async worker threads. Errors are counted inside.
        if let Err(e) = tokio::task::spawn_blocking(move || s.look(false)).await {
            shared.failed(&format!("reload task failed: {e}"));
        }
    }
}

impl Shared {
    fn look(&self, initial: bool) -> Result<bool, Error> {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        match self.source.fetch(applied.as_ref()) {
            Ok(Fetched::Unchanged) => {
                self.recovered();
                Ok(false)
            }
            Ok(Fetched::Changed(version, fresh)) => {
                let change = Change::between(&self.table, &fresh);
                self.table.replace_with(fresh);
                if let Some(keys) = &self.keys {
                    keys.clear_cache();
                }
                *applied = Some(version);
                self.recovered();
                if !initial {
                    self.reloads.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        source = %self.source.describe(),
                        newly_revoked = ?change.newly_revoked,
                        no_longer_revoked = ?change.unrevoked,
                        control_epoch = change.control_epoch,
                        broadcast_epoch = change.broadcast_epoch,
                        guests = change.guests,
                        "rotation state reloaded"
                    );
                }
                Ok(true)
            }
            Err(e) => {
                self.failed(&e.to_string());
                Err(e)
            }
        }
    }

    fn recovered(&self) {
        self.streak.store(0, Ordering::Relaxed);
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(source = %self.source.describe(), "rotation state readable again");
        }
    }

    fn failed(&self, why: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        let streak = self.streak.fetch_add(1, Ordering::Relaxed);
        if streak.is_multiple_of(RELOG_EVERY) {
            tracing::error!(
                source = %self.source.describe(),
                error = %why,
                failed_looks = streak + 1,
                "rotation state reload FAILED; keeping the previous state (revocations stay in force)"
            );
        }
    }
}

/// Instance ids named per list in a reload's log line.
const LOGGED_IDS: usize = 16;

/// What a reload changes, for the log line (instance ids and epochs are not secret).
struct Change {
    newly_revoked: Vec<String>,
    unrevoked: Vec<String>,
    control_epoch: u64,
    broadcast_epoch: u64,
    guests: usize,
}

impl Change {
    fn between(old: &RotationTable, new: &RotationTable) -> Self {
        // Both lists are sorted; the log shows at most LOGGED_IDS of each.
        let (before, after) = (old.revoked(), new.revoked());
        let only_in = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter()
                .filter(|g| b.binary_search(g).is_err())
                .take(LOGGED_IDS)
                .cloned()
                .collect()
        };
        Self {
            newly_revoked: only_in(&after, &before),
            unrevoked: only_in(&before, &after),
            control_epoch: new.control_epoch(),
            broadcast_epoch: new.broadcast_epoch(),
            guests: new.guests().len(),
        }
    }
}
