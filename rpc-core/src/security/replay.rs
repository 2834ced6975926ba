//! The replay guard: a timestamp window plus a bounded set of ids seen within it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use super::reject::RejectReason;
use crate::wire::MessageId;

/// Replay guard settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Accepted clock skew either way, in milliseconds (default 60 s).
    pub skew_ms: u64,
    /// Most ids remembered at once; when full of unexpired ids, new messages are refused
    /// (fail closed) and counted.
    pub capacity: usize,
    /// Most ids any one guest may hold (default 25,000, an eighth of the default
    /// capacity): a compromised guest that floods the guard exhausts its own share and is
    /// refused, while everyone else's messages are still admitted. Control-plane
    /// principals share the whole capacity.
    pub per_guest: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            skew_ms: 60_000,
            capacity: 200_000,
            per_guest: 25_000,
        }
    }
}

type Entry = (String, MessageId);

#[derive(Debug, Default)]
struct Seen {
    set: HashSet<Entry>,
    // (forget-after unix ms, entry), ordered by time so that pruning takes exactly the
    // expired entries, however the senders' clocks are spread within the window.
    by_time: BTreeSet<(u64, Entry)>,
    // Ids held per guest principal (control-plane principals are not counted).
    per_guest: HashMap<String, usize>,
}

impl Seen {
    fn prune(&mut self, now_ms: u64) {
        while self.by_time.first().is_some_and(|(t, _)| *t < now_ms) {
            let Some((_, entry)) = self.by_time.pop_first() else {
                break;
            };
            self.set.remove(&entry);
            if let Some(n) = self.per_guest.get_mut(&entry.0) {
                *n -= 1;
                if *n == 0 {
                    self.per_guest.remove(&entry.0);
                }
            }
        }
    }
}

/// Remembers message ids, keyed by the authenticated principal, within the skew window.
#[derive(Debug)]
pub struct ReplayGuard {
    config: ReplayConfig,
    seen: Mutex<Seen>,
}

impl ReplayGuard {
    /// A guard with `config`.
    pub fn new(config: ReplayConfig) -> Self {
        Self {
            config,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Checks `ts` against the window and the deadline (`ttl`), without recording.
    pub fn check_time(&self, ts: u64, ttl: Option<u64>, now_ms: u64) -> Result<(), RejectReason> {
        if ts.abs_diff(now_ms) > self.config.skew_ms {
            return Err(RejectReason::ClockSkew);
        }
        if let Some(ttl) = ttl
            && now_ms > ts.saturating_add(ttl)
        {
            return Err(RejectReason::Expired);
        }
        Ok(())
    }

    /// Records `id` for `principal`; refuses an id already seen, and fails closed when full.
    pub fn check_and_record(
        &self,
        principal: &str,
        id: MessageId,
        ts: u64,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.prune(now_ms);
        let entry = (principal.to_owned(), id);
        if seen.set.contains(&entry) {
            return Err(RejectReason::Replay);
        }
        if seen.set.len() >= self.config.capacity {
            return Err(RejectReason::ReplayGuardFull);
        }
        let is_guest = principal.starts_with("guest:");
        if is_guest && seen.per_guest.get(principal).copied().unwrap_or(0) >= self.config.per_guest
        {
            return Err(RejectReason::ReplayGuardFull);
        }
        if is_guest {
            *seen.per_guest.entry(principal.to_owned()).or_default() += 1;
        }
        seen.set.insert(entry.clone());
        seen.by_time
            .insert((ts.saturating_add(self.config.skew_ms), entry));
        Ok(())
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set
            .len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
