//! A tiny per-second rate limit, so that a flood of bad input cannot flood the logs or make
//! a server answer every forgery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Allows at most `per_second` events in each wall-clock second.
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_second: u64,
    // High 32 bits: the second; low 32 bits: events in it.
    state: AtomicU64,
}

impl RateLimit {
    /// At most `per_second` events a second.
    pub const fn new(per_second: u64) -> Self {
        Self {
            per_second,
            state: AtomicU64::new(0),
        }
    }

    /// True when one more event fits in this second (and counts it).
    pub fn allow(&self) -> bool {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() & 0xffff_ffff)
            .unwrap_or(0);
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let (s, n) = (current >> 32, current & 0xffff_ffff);
            let next = if s == second { n + 1 } else { 1 };
            if next > self.per_second {
                return false;
            }
            match self.state.compare_exchange_weak(
                current,
                (second << 32) | next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }
}
