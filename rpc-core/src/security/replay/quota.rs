//! Who may take room in the replay guard: the decision alone, from counts, so that any store
//! of ids (this process's ledger, or a shared one) applies the same rule.
//!
//! The rule, with `C` = capacity, `R` = the control plane's reserve, `G = C - R` the
//! guests' share and `q` the per-guest quota:
//!
//! - a **control-plane** principal is admitted while the guard holds fewer than `C` ids.
//!   Guests never hold more than `G`, so the control plane always has at least `R` of room,
//!   whatever any number of guests does;
//! - a **guest** holding `n` ids is refused once `n >= q` (its own quota, whatever the
//!   others do). Otherwise it is admitted while the guests hold fewer than their room
//!   `room = min(G, C - control-plane ids)`. When that room is full, a guest holding fewer
//!   than its fair share `floor(room / A)` (`A`: the guests holding ids, itself included)
//!   is still admitted: the guest that holds the most ids gives up its oldest one. Any
//!   other guest is refused.
//!
//! So a set of hostile guests, however many, can take from an honest guest only what
//! exceeds the honest guest's fair share, and nothing from the control plane.

/// The limits the decision applies (from [`ReplayConfig`](super::ReplayConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub(crate) capacity: usize,
    pub(crate) control_reserve: usize,
    pub(crate) per_guest: usize,
}

/// What the store holds when a principal asks for room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Holdings {
    /// Ids held by the principal asking.
    pub(crate) own: usize,
    /// Ids held by control-plane principals.
    pub(crate) control: usize,
    /// Ids held by guests.
    pub(crate) guests: usize,
    /// Guest principals holding at least one id.
    pub(crate) guest_holders: usize,
}

/// The decision for one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// There is room: record it.
    Admit,
    /// The guests' room is full and the asker is under its fair share: the guest holding
    /// the most ids gives up its oldest one, then the id is recorded.
    EvictLargestGuest,
    /// No room for this principal (`ReplayGuardFull`).
    Refuse,
}

impl Quota {
    /// The guests' share `G = C - R`.
    pub(crate) fn guests_share(&self) -> usize {
        self.capacity.saturating_sub(self.control_reserve)
    }

    /// The room the guests have now: their share, less what the control plane took of it.
    pub(crate) fn guests_room(&self, control: usize) -> usize {
        self.guests_share()
            .min(self.capacity.saturating_sub(control))
    }

    /// A guest's fair share of the guests' room when `h` has `holdings`.
    pub(crate) fn fair_share(&self, h: &Holdings) -> usize {
        let asking = h.guest_holders + usize::from(h.own == 0);
        self.guests_room(h.control) / asking.max(1)
    }

    /// The decision for a control-plane principal.
    pub(crate) fn control(&self, h: &Holdings) -> Decision {
        if h.control + h.guests < self.capacity {
            Decision::Admit
        } else {
            Decision::Refuse
        }
    }

    /// The decision for a guest principal.
    pub(crate) fn guest(&self, h: &Holdings) -> Decision {
        if h.own >= self.per_guest {
            Decision::Refuse
        } else if h.guests < self.guests_room(h.control) {
            Decision::Admit
        } else if h.own < self.fair_share(h) {
            Decision::EvictLargestGuest
        } else {
            Decision::Refuse
        }
    }
}
