//! The replay guard: a timestamp window plus a bounded set of ids seen within it, shared
//! fairly so that no set of guests can deny admission to the control plane or to the other
//! guests.
//!
//! An id is remembered, keyed by its authenticated principal, until its `ts` leaves the
//! window (`ts + skew_ms`): exactly as long as a replay of it would pass the time check.
//! Room is counted in ids, so an id stamped in the future costs no more room than a present
//! one (it is only held longer, against its own principal's quota). Who may take room is
//! decided by the quota (see [`ReplayConfig`] for the guarantee in numbers).
//!
//! The decision (`quota`) is apart from the store of ids (`ledger`, this process's memory),
//! so that a shared store ([`ReplayStore`], `store`) can apply the same rule. The in-process
//! store has a restart rule (`restart`): it cannot know what it saw before it started.

mod ledger;
mod quota;
mod restart;
mod store;

use std::sync::Mutex;

use async_trait::async_trait;

use self::ledger::{Ledger, Lookup};
use self::quota::{Decision, Quota};
use super::reject::RejectReason;
use crate::wire::MessageId;

pub use self::restart::RestartRule;
pub use self::store::{ReplayCheck, ReplayStore, ReplayStoreError, ReplayVerdict, quota_rule};

/// Replay guard settings.
///
/// With `C` = [`capacity`](Self::capacity), `R` = [`control_reserve`](Self::control_reserve),
/// `G = C - R` and `q` = [`per_guest`](Self::per_guest) (defaults: 200,000, 50,000, 150,000
/// and 25,000), the guard guarantees, whatever any number of guests sends:
///
/// - it never holds more than `C` ids, nor guests more than `G`;
/// - a control-plane principal is refused for room only when the guard holds `C` ids, of
///   which the control plane itself holds at least `R` (guests can never take the last
///   50,000 places);
/// - a guest is refused for room only when it holds `q` ids itself, or when the guests'
///   room is full and it holds at least its fair share `floor(room / A)`, where `A` is the
///   number of guests holding ids (itself included) and `room = min(G, C - control-plane
///   ids)`, i.e. `G` while the control plane keeps within its reserve. With 1,000 guests
///   holding ids, a guest holding fewer than 150 ids is always admitted, however many ids
///   the others send. To make room for it, the guest holding the most ids gives up its
///   oldest one; that guest's messages stamped at or before the id given up are refused
///   from then on (fail closed, and for it alone). A guest under its fair share never
///   gives up an id.
///
/// Ids are refused, never forgotten early without that watermark: a replay is never
/// admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Accepted clock skew into the past, in milliseconds (default 60 s); an id is
    /// remembered until its `ts` is older than this.
    pub skew_ms: u64,
    /// Accepted clock skew into the future, in milliseconds (default 60 s, the same as
    /// `skew_ms`). Lower it to shorten how long a future-stamped id is held (at most
    /// `skew_ms + future_skew_ms`); room is counted in ids either way.
    pub future_skew_ms: u64,
    /// Most ids remembered at once (default 200,000); a principal that finds no room is
    /// refused (fail closed, `ReplayGuardFull`) and counted.
    pub capacity: usize,
    /// Room only control-plane principals may use (default 50,000, a quarter of the
    /// capacity): guests together never hold more than `capacity - control_reserve` ids.
    /// A reserve at or above the capacity leaves guests no room at all.
    pub control_reserve: usize,
    /// Most ids any one guest may hold (default 25,000): a guest that floods the guard
    /// exhausts its own quota and is refused, whatever the others do.
    pub per_guest: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            skew_ms: 60_000,
            future_skew_ms: 60_000,
            capacity: 200_000,
            control_reserve: 50_000,
            per_guest: 25_000,
        }
    }
}

impl ReplayConfig {
    pub(crate) fn quota(&self) -> Quota {
        Quota {
            capacity: self.capacity,
            control_reserve: self.control_reserve,
            per_guest: self.per_guest,
        }
    }
}

/// How the guard's room is used (a snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayUsage {
    /// Ids held by control-plane principals.
    pub control: usize,
    /// Ids held by guests.
    pub guests: usize,
    /// Guest principals holding at least one id.
    pub guest_principals: usize,
}

/// Remembers message ids, keyed by the authenticated principal, within the skew window:
/// the in-process [`ReplayStore`] (the default).
#[derive(Debug)]
pub struct ReplayGuard {
    config: ReplayConfig,
    ledger: Mutex<Ledger>,
    /// The restart rule and the time (unix ms) the guard started.
    restart: Option<(RestartRule, u64)>,
}

impl ReplayGuard {
    /// A guard with `config` and no restart rule (tests with a synthetic clock).
    pub fn new(config: ReplayConfig) -> Self {
        Self {
            config,
            ledger: Mutex::new(Ledger::default()),
            restart: None,
        }
    }

    /// A guard with `config` that started at `started_ms` (unix ms) and applies `rule` to
    /// messages stamped before then (what [`Security`](crate::security::Security) builds).
    pub fn with_restart_rule(config: ReplayConfig, rule: RestartRule, started_ms: u64) -> Self {
        let mut guard = Self::new(config);
        guard.restart = Some((rule, started_ms));
        guard
    }

    /// When the guard started (unix ms), if it has a restart rule.
    pub fn started_ms(&self) -> Option<u64> {
        self.restart.map(|(_, started)| started)
    }

    /// The settings.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Checks `ts` against the window (`skew_ms` into the past, `future_skew_ms` into the
    /// future) and the deadline (`ttl`), without recording.
    pub fn check_time(&self, ts: u64, ttl: Option<u64>, now_ms: u64) -> Result<(), RejectReason> {
        if !self.in_window(ts, now_ms) {
            return Err(RejectReason::ClockSkew);
        }
        if let Some(ttl) = ttl
            && now_ms > ts.saturating_add(ttl)
        {
            return Err(RejectReason::Expired);
        }
        Ok(())
    }

    fn in_window(&self, ts: u64, now_ms: u64) -> bool {
        if ts <= now_ms {
            now_ms - ts <= self.config.skew_ms
        } else {
            ts - now_ms <= self.config.future_skew_ms
        }
    }

    /// Records `id` for `principal`: refuses an id already seen (`Replay`), a `ts` outside
    /// the window (`ClockSkew`), one stamped before the guard started while its restart
    /// rule applies (`StampedBeforeStart`, see [`RestartRule`]), and an id for which the
    /// principal has no room (`ReplayGuardFull`, see [`ReplayConfig`]).
    pub fn check_and_record(
        &self,
        principal: &str,
        id: MessageId,
        ts: u64,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        if !self.in_window(ts, now_ms) {
            return Err(RejectReason::ClockSkew);
        }
        if let Some((rule, started)) = self.restart
            && rule.refuses(started, ts, now_ms)
        {
            return Err(RejectReason::StampedBeforeStart);
        }
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let before = ledger.by_class();
        let result = self.record_in(&mut ledger, principal, id, ts, now_ms);
        crate::observe::record_replay_holdings(before, ledger.by_class());
        result
    }

    /// [`check_and_record`](Self::check_and_record) past the time checks, on the locked ledger.
    fn record_in(
        &self,
        ledger: &mut Ledger,
        principal: &str,
        id: MessageId,
        ts: u64,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        ledger.prune(now_ms.saturating_sub(self.config.skew_ms));
        match ledger.lookup(principal, &id, ts) {
            Lookup::Fresh => {}
            Lookup::Seen => return Err(RejectReason::Replay),
            Lookup::BelowWatermark => return Err(RejectReason::ReplayGuardFull),
        }
        let quota = self.config.quota();
        let holdings = ledger.holdings(principal);
        let decision = if principal.starts_with("guest:") {
            quota.guest(&holdings)
        } else {
            quota.control(&holdings)
        };
        match decision {
            Decision::Admit => {}
            Decision::EvictLargestGuest => {
                if ledger.evict_largest_guest(principal).is_none() {
                    return Err(RejectReason::ReplayGuardFull);
                }
            }
            Decision::Refuse => return Err(RejectReason::ReplayGuardFull),
        }
        ledger.insert(principal, id, ts);
        Ok(())
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many ids `principal` holds now.
    pub fn held_by(&self, principal: &str) -> usize {
        self.lock().held_by(principal)
    }

    /// How the room is used now.
    pub fn usage(&self) -> ReplayUsage {
        let ledger = self.lock();
        let (control, guests) = ledger.by_class();
        ReplayUsage {
            control,
            guests,
            guest_principals: ledger.guest_holders(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ReplayGuard {
    /// Takes this guard's ids back out of the process-wide replay gauge.
    fn drop(&mut self) {
        crate::observe::record_replay_holdings(self.lock().by_class(), (0, 0));
    }
}

#[async_trait]
impl ReplayStore for ReplayGuard {
    /// The in-process store as a hook: several nodes of one process may share one guard
    /// (register an `Arc<ReplayGuard>` with each). Its own [`ReplayConfig`] applies.
    async fn check_and_record(
        &self,
        check: ReplayCheck<'_>,
    ) -> Result<ReplayVerdict, ReplayStoreError> {
        let result =
            ReplayGuard::check_and_record(self, check.principal, check.id, check.ts, check.now_ms);
        Ok(ReplayVerdict::from_result(result))
    }
}
