//! The in-process store of the replay guard: the ids seen, per principal, with what the
//! quota needs (counts per class, the guest holding the most) and what eviction leaves
//! behind (a per-principal watermark).
//!
//! A shared store (Redis, for replicated services) provides the same five operations, run
//! as one atomic step per id (here: under one lock; there: one script): `prune`, `lookup`,
//! `holdings`, `evict_largest_guest` and `insert`. The quota decides between them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::quota::Holdings;
use crate::wire::MessageId;

/// The ids of one principal.
#[derive(Debug, Default)]
struct Book {
    /// id -> its `ts`.
    ids: HashMap<MessageId, u64>,
    /// The same ids ordered by `ts`, oldest first (pruning and eviction take from the front).
    by_ts: BTreeSet<(u64, MessageId)>,
    /// After an eviction, the `ts` of the newest id given up: this principal's messages
    /// stamped at or before it can no longer be told from replays, and are refused.
    watermark: Option<u64>,
}

impl Book {
    /// The `ts` this book is filed under for pruning: its oldest id, else its watermark.
    fn key(&self) -> Option<u64> {
        self.by_ts.first().map(|(ts, _)| *ts).or(self.watermark)
    }
}

/// What the ledger knows of an id before it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Not seen, and newer than the principal's watermark.
    Fresh,
    /// Seen within the window.
    Seen,
    /// At or before the principal's watermark: its ids of that time were evicted.
    BelowWatermark,
}

/// Every id remembered, keyed by principal.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    books: HashMap<Arc<str>, Book>,
    /// One entry per book, `(book key, principal)`: the books to prune first come first.
    expiry: BTreeSet<(u64, Arc<str>)>,
    /// Guest principals by the number of ids they hold: the last one holds the most.
    guests_by_count: BTreeSet<(usize, Arc<str>)>,
    control: usize,
    guests: usize,
}

fn is_guest(principal: &str) -> bool {
    principal.starts_with("guest:")
}

impl Ledger {
    /// Ids remembered.
    pub(crate) fn len(&self) -> usize {
        self.control + self.guests
    }

    /// Ids held by control-plane principals and by guests.
    pub(crate) fn by_class(&self) -> (usize, usize) {
        (self.control, self.guests)
    }

    /// Guest principals holding at least one id.
    pub(crate) fn guest_holders(&self) -> usize {
        self.guests_by_count.len()
    }

    /// Ids held by `principal`.
    pub(crate) fn held_by(&self, principal: &str) -> usize {
        self.books.get(principal).map_or(0, |b| b.ids.len())
    }

    /// The counts the quota decides on, for `principal`.
    pub(crate) fn holdings(&self, principal: &str) -> Holdings {
        Holdings {
            own: self.held_by(principal),
            control: self.control,
            guests: self.guests,
            guest_holders: self.guest_holders(),
        }
    }

    /// Whether `id` of `principal`, stamped `ts`, was seen.
    pub(crate) fn lookup(&self, principal: &str, id: &MessageId, ts: u64) -> Lookup {
        let Some(book) = self.books.get(principal) else {
            return Lookup::Fresh;
        };
        if book.ids.contains_key(id) {
            Lookup::Seen
        } else if book.watermark.is_some_and(|w| ts <= w) {
            Lookup::BelowWatermark
        } else {
            Lookup::Fresh
        }
    }

    /// Forgets every id stamped before `oldest` (and watermarks older than it).
    pub(crate) fn prune(&mut self, oldest: u64) {
        while let Some((key, principal)) = self.expiry.first().cloned() {
            if key >= oldest {
                break;
            }
            self.expiry.pop_first();
            let Some(book) = self.books.get_mut(&principal) else {
                continue;
            };
            let before = book.ids.len();
            while let Some(&(ts, id)) = book.by_ts.first() {
                if ts >= oldest {
                    break;
                }
                book.by_ts.pop_first();
                book.ids.remove(&id);
            }
            if book.watermark.is_some_and(|w| w < oldest) {
                book.watermark = None;
            }
            let after = book.ids.len();
            let key = book.key();
            self.recount(&principal, before, after);
            match key {
                Some(key) => {
                    self.expiry.insert((key, principal));
                }
                None => {
                    self.books.remove(&principal);
                }
            }
        }
    }

    /// Records `id` of `principal`, stamped `ts` (looked up as [`Lookup::Fresh`] first).
    pub(crate) fn insert(&mut self, principal: &str, id: MessageId, ts: u64) {
        let name: Arc<str> = match self.books.get_key_value(principal) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(principal),
        };
        let book = self.books.entry(Arc::clone(&name)).or_default();
        let old_key = book.key();
        let before = book.ids.len();
        if book.ids.insert(id, ts).is_some() {
            return;
        }
        book.by_ts.insert((ts, id));
        let new_key = book.key();
        if old_key != new_key {
            if let Some(k) = old_key {
                self.expiry.remove(&(k, Arc::clone(&name)));
            }
            if let Some(k) = new_key {
                self.expiry.insert((k, Arc::clone(&name)));
            }
        }
        self.recount(&name, before, before + 1);
    }

    /// The guest holding the most ids gives up its oldest one, and its watermark rises to
    /// that id's `ts`. Returns that guest, or `None` when no other guest than `asking`
    /// holds an id.
    pub(crate) fn evict_largest_guest(&mut self, asking: &str) -> Option<Arc<str>> {
        let (_, victim) = self.guests_by_count.last()?.clone();
        if &*victim == asking {
            return None;
        }
        let book = self.books.get_mut(&victim)?;
        let old_key = book.key();
        let before = book.ids.len();
        let (ts, id) = book.by_ts.pop_first()?;
        book.ids.remove(&id);
        book.watermark = Some(book.watermark.map_or(ts, |w| w.max(ts)));
        let new_key = book.key();
        if old_key != new_key {
            if let Some(k) = old_key {
                self.expiry.remove(&(k, Arc::clone(&victim)));
            }
            if let Some(k) = new_key {
                self.expiry.insert((k, Arc::clone(&victim)));
            }
        }
        self.recount(&victim, before, before - 1);
        Some(victim)
    }

    /// Keeps the class totals and the guests' order by count in step with one book's
    /// count going from `before` to `after`.
    fn recount(&mut self, principal: &Arc<str>, before: usize, after: usize) {
        if is_guest(principal) {
            self.guests = self.guests + after - before;
            if before > 0 {
                self.guests_by_count
                    .remove(&(before, Arc::clone(principal)));
            }
            if after > 0 {
                self.guests_by_count.insert((after, Arc::clone(principal)));
            }
        } else {
            self.control = self.control + after - before;
        }
    }
}
