//! No set of guests can deny the replay guard's room to the control plane or to the other
//! guests: 1,000 guests, a dozen of them flooding with future-stamped ids, and random
//! interleavings checked against a plain model of the rule (`ReplayConfig`'s docs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sealrpc_core::security::{RejectReason, ReplayConfig, ReplayGuard};
use sealrpc_core::wire::MessageId;

const NOW: u64 = 1_763_900_000_000;
const SKEW: u64 = 60_000;

fn id(principal: u32, n: u32) -> MessageId {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&principal.to_be_bytes());
    b[4..8].copy_from_slice(&n.to_be_bytes());
    MessageId(b)
}

#[test]
fn a_dozen_hostile_guests_among_a_thousand_deny_no_one_else() {
    const GUESTS: u32 = 1_000;
    const HOSTILE: u32 = 12;
    let config = ReplayConfig {
        skew_ms: SKEW,
        future_skew_ms: SKEW,
        capacity: 20_000,
        control_reserve: 5_000,
        per_guest: 2_000,
    };
    // Without the fair share, 12 x 2,000 future-stamped ids (held 120 s each) would fill
    // all 20,000 places.
    let guard = ReplayGuard::new(config);
    let mut next = 0u32;
    let mut fresh = || {
        next += 1;
        next
    };
    let (mut hostile_admitted, mut hostile_refused) = (0u64, 0u64);
    let mut honest = 0u64;
    let mut control = 0u64;
    // Three windows, one step a second.
    for step in 0..180u64 {
        let now = NOW + step * 1_000;
        // Each hostile guest floods 100 ids a second, stamped as far ahead as allowed.
        for h in 0..HOSTILE {
            for _ in 0..100 {
                match guard.check_and_record(
                    &format!("guest:h{h}"),
                    id(h, fresh()),
                    now + SKEW,
                    now,
                ) {
                    Ok(()) => hostile_admitted += 1,
                    Err(r) => {
                        assert_eq!(r, RejectReason::ReplayGuardFull);
                        hostile_refused += 1;
                    }
                }
            }
        }
        // Each honest guest sends one message every 10 s (its clock up to 30 s off either
        // way), and it is admitted.
        for g in HOSTILE..GUESTS {
            if (u64::from(g) + step) % 10 == 0 {
                let ts = now + u64::from(g % 61) * 1_000 - 30_000;
                let r = guard.check_and_record(&format!("guest:g{g}"), id(g, fresh()), ts, now);
                assert_eq!(r, Ok(()), "honest guest g{g} refused at step {step}");
                honest += 1;
            }
        }
        // Three control-plane services, 20 ids a second each.
        for c in 0..3u32 {
            for _ in 0..20 {
                let r = guard.check_and_record(
                    &format!("control:s{c}"),
                    id(GUESTS + c, fresh()),
                    now,
                    now,
                );
                assert_eq!(r, Ok(()), "control:s{c} refused at step {step}");
                control += 1;
            }
        }
        let u = guard.usage();
        assert!(guard.len() <= config.capacity);
        assert!(u.guests <= config.capacity - config.control_reserve);
    }
    eprintln!(
        "hostile: {hostile_admitted} admitted, {hostile_refused} refused; honest guests: \
         {honest} admitted; control plane: {control} admitted; guard {:?}",
        guard.usage()
    );
    assert!(hostile_refused > 0, "the flood was refused");
    for h in 0..HOSTILE {
        assert!(guard.held_by(&format!("guest:h{h}")) <= config.per_guest);
    }
}

/// A plain model of the rule: a list of held ids and the watermarks, decided from scratch.
#[derive(Debug, Default)]
struct Model {
    held: BTreeMap<String, BTreeSet<(u64, MessageId)>>,
    watermark: BTreeMap<String, u64>,
}

const CAPACITY: usize = 24;
const RESERVE: usize = 6;
const PER_GUEST: usize = 10;

impl Model {
    fn prune(&mut self, now: u64) {
        let oldest = now.saturating_sub(SKEW);
        for ids in self.held.values_mut() {
            ids.retain(|(ts, _)| *ts >= oldest);
        }
        self.held.retain(|_, ids| !ids.is_empty());
        self.watermark.retain(|_, w| *w >= oldest);
    }

    fn count(&self, guests: bool) -> usize {
        self.held
            .iter()
            .filter(|(p, _)| p.starts_with("guest:") == guests)
            .map(|(_, ids)| ids.len())
            .sum()
    }

    fn record(&mut self, p: &str, id: MessageId, ts: u64, now: u64) -> Result<(), RejectReason> {
        if ts + SKEW < now || ts > now + SKEW {
            return Err(RejectReason::ClockSkew);
        }
        self.prune(now);
        let own = self.held.get(p).map_or(0, BTreeSet::len);
        if self
            .held
            .get(p)
            .is_some_and(|ids| ids.iter().any(|(_, i)| *i == id))
        {
            return Err(RejectReason::Replay);
        }
        if self.watermark.get(p).is_some_and(|w| ts <= *w) {
            return Err(RejectReason::ReplayGuardFull);
        }
        let (control, guests) = (self.count(false), self.count(true));
        if !p.starts_with("guest:") {
            if control + guests >= CAPACITY {
                return Err(RejectReason::ReplayGuardFull);
            }
        } else {
            let room = (CAPACITY - RESERVE).min(CAPACITY - control);
            let holders = self.held.keys().filter(|k| k.starts_with("guest:")).count();
            let fair = room / (holders + usize::from(own == 0)).max(1);
            if own >= PER_GUEST {
                return Err(RejectReason::ReplayGuardFull);
            }
            if guests >= room {
                if own >= fair {
                    return Err(RejectReason::ReplayGuardFull);
                }
                // The guest holding the most (ties: the greatest name) gives up its oldest.
                let victim = self
                    .held
                    .iter()
                    .filter(|(k, _)| k.starts_with("guest:"))
                    .max_by_key(|(k, ids)| (ids.len(), (*k).clone()))
                    .map(|(k, _)| k.clone())
                    .unwrap();
                assert_ne!(victim, p, "the rule never evicts the asker");
                let ids = self.held.get_mut(&victim).unwrap();
                let (old_ts, _) = ids.pop_first().unwrap();
                let w = self.watermark.entry(victim.clone()).or_insert(old_ts);
                *w = (*w).max(old_ts);
                if ids.is_empty() {
                    self.held.remove(&victim);
                }
            }
        }
        self.held.entry(p.to_owned()).or_default().insert((ts, id));
        Ok(())
    }
}

/// One step: a principal sends a new id or repeats one it sent, or the clock moves.
#[derive(Debug, Clone)]
enum Op {
    Send { who: usize, offset: i64 },
    Replay { pick: usize },
    Advance { ms: u64 },
}

const PRINCIPALS: [&str; 8] = [
    "control:api",
    "control:taskmanager",
    "guest:h1",
    "guest:h2",
    "guest:h3",
    "guest:a",
    "guest:b",
    "guest:c",
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // The three first guests are the floods: most sends are theirs.
        6 => (2usize..5, -(SKEW as i64)..=SKEW as i64).prop_map(|(who, offset)| Op::Send { who, offset }),
        3 => (0usize..8, -(SKEW as i64)..=SKEW as i64).prop_map(|(who, offset)| Op::Send { who, offset }),
        2 => any::<usize>().prop_map(|pick| Op::Replay { pick }),
        1 => (0u64..40_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_guard_follows_the_rule_and_never_admits_a_replay(ops in prop::collection::vec(op(), 1..400)) {
        let guard = ReplayGuard::new(ReplayConfig {
            skew_ms: SKEW,
            future_skew_ms: SKEW,
            capacity: CAPACITY,
            control_reserve: RESERVE,
            per_guest: PER_GUEST,
        });
        let mut model = Model::default();
        let mut now = NOW;
        let mut sent: Vec<(usize, MessageId, u64)> = Vec::new();
        let mut admitted: BTreeSet<(usize, MessageId)> = BTreeSet::new();
        for (n, op) in ops.into_iter().enumerate() {
            let (who, msg_id, ts) = match op {
                Op::Advance { ms } => {
                    now += ms;
                    continue;
                }
                Op::Send { who, offset } => {
                    let ts = now.saturating_add_signed(offset);
                    (who, id(who as u32, n as u32), ts)
                }
                Op::Replay { pick } => {
                    if sent.is_empty() {
                        continue;
                    }
                    sent[pick % sent.len()]
                }
            };
            let p = PRINCIPALS[who];
            let before = guard.usage();
            let own = guard.held_by(p);
            let got = guard.check_and_record(p, msg_id, ts, now);
            let want = model.record(p, msg_id, ts, now);
            prop_assert_eq!(got, want, "op {} by {} at ts {} now {}", n, p, ts, now);
            sent.push((who, msg_id, ts));
            if got.is_ok() {
                prop_assert!(admitted.insert((who, msg_id)), "a replay was admitted");
            }
            // The bounds.
            let after = guard.usage();
            prop_assert!(guard.len() <= CAPACITY);
            prop_assert!(after.guests <= CAPACITY - RESERVE);
            // The guarantees, stated from what the guard held before the message.
            let fresh = got != Err(RejectReason::Replay) && got != Err(RejectReason::ClockSkew);
            let below_watermark = model.watermark.get(p).is_some_and(|w| ts <= *w) && got.is_err();
            if fresh && !p.starts_with("guest:") && before.control < RESERVE {
                prop_assert_eq!(got, Ok(()), "control plane refused within its reserve");
            }
            if fresh && p.starts_with("guest:") && !below_watermark {
                let asking = before.guest_principals + usize::from(own == 0);
                let fair = (CAPACITY - RESERVE).min(CAPACITY - before.control) / asking.max(1);
                if own < PER_GUEST && own < fair {
                    prop_assert_eq!(got, Ok(()), "guest under its fair share refused");
                }
            }
        }
    }
}
