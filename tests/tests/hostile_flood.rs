#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bounded resources under hostile input: a control-plane receiver (`control:conductor`,
//! default policy: signed and sealed, enforced) takes a flood of garbage, oversized,
//! replayed, forged, tampered and badly signed envelopes interleaved with valid calls from a
//! guest and from another control-plane service.
//!
//! Shown: every valid message is admitted and every bad one rejected with its own reason
//! (per message and in `security.counters()`); the replay guard never holds more than its
//! capacity, and a full guard fails closed (`ReplayGuardFull`) until its entries age out; the
//! memory the receiver keeps is the replay guard's and nothing else; bad signatures are
//! rejected before the seal is opened; hostile guests flooding future-stamped calls fill
//! only their own fair share of the guard, never the control plane's or an honest guest's. Throughput per kind of input is measured and printed,
//! never asserted.
//!
//! `SEALRPC_FLOOD=<n>` sets the flood size (default 50 000 messages in a release build, 1 000
//! in a debug build, where ed25519 costs milliseconds): the figures in docs/fuzzing.md come from
//! `cargo test --release -p sealrpc-tests --test hostile_flood -- --nocapture`.

use std::alloc::System;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::RejectReason;
use sealrpc_core::wire::{EnvelopeRef, Limits, encode_envelope};
use sealrpc_tests::flood::{MAX_ENVELOPE, body_offset, call, flip, ms, net, served};
use sealrpc_tests::mutate::Rng;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocation counters are global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The kinds of input of the flood, with the verdict each must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Input {
    ValidGuest,
    ValidControl,
    Replayed,
    BadSignature,
    TamperedCiphertext,
    Forged,
    UnknownSigner,
    Garbage,
    Oversized,
    OversizedHeader,
    TooManySignatures,
}

impl Input {
    fn expected(self) -> Option<RejectReason> {
        match self {
            Input::ValidGuest | Input::ValidControl => None,
            Input::Replayed => Some(RejectReason::Replay),
            Input::BadSignature | Input::TamperedCiphertext | Input::Forged => {
                Some(RejectReason::BadSignature)
            }
            Input::UnknownSigner => Some(RejectReason::UnknownKey),
            Input::Garbage => Some(RejectReason::Malformed),
            Input::Oversized | Input::OversizedHeader | Input::TooManySignatures => {
                Some(RejectReason::Oversized)
            }
        }
    }
}

/// One round of the flood: 20 messages, 2 of them valid.
const ROUND: [Input; 20] = [
    Input::ValidGuest,
    Input::Garbage,
    Input::Replayed,
    Input::BadSignature,
    Input::Garbage,
    Input::Oversized,
    Input::TamperedCiphertext,
    Input::Garbage,
    Input::Forged,
    Input::UnknownSigner,
    Input::ValidControl,
    Input::Garbage,
    Input::OversizedHeader,
    Input::Replayed,
    Input::Garbage,
    Input::TooManySignatures,
    Input::BadSignature,
    Input::Garbage,
    Input::Garbage,
    Input::Garbage,
];

/// ed25519 in a debug build costs milliseconds per signature: the default (debug) test run
/// floods with 1 000 messages, a release run (`cargo test --release`) with 50 000.
fn flood_size() -> usize {
    std::env::var("SEALRPC_FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            1_000
        } else {
            50_000
        })
}

#[derive(Default)]
struct Tally {
    count: u64,
    time: Duration,
}

#[test]
fn a_flood_of_hostile_input_is_rejected_cheaply_and_valid_traffic_still_gets_through() {
    let _serial = serial();
    let total = flood_size();
    let rounds = total.div_ceil(ROUND.len());
    let valid_total = rounds * 2;
    let capacity = valid_total + 16;
    let n = net(capacity);
    let ts = ms(n.now);
    let mut rng = Rng::new(0x5ea1);

    // Fixed hostile inputs, built once (a real attacker replays them too).
    let oversized = Bytes::from(vec![0x84; MAX_ENVELOPE + 1]);
    let template = call(&n.guest, ts);
    let env = EnvelopeRef::decode(&template, &Limits::default()).unwrap();
    let big_header = Bytes::from(encode_envelope(&[0x80; 4097], env.body, &env.signatures));
    let nine = vec![env.signatures[0].clone(); 9];
    let too_many = Bytes::from(encode_envelope(env.header, env.body, &nine));
    let forged: Vec<Bytes> = (0..32).map(|_| call(&n.forger, ts)).collect();
    let unknown: Vec<Bytes> = (0..32).map(|_| call(&n.intruder, ts)).collect();
    drop(env);

    let mut admitted: Vec<Bytes> = Vec::new();
    let mut tally: BTreeMap<Input, Tally> = BTreeMap::new();
    let mut expected: BTreeMap<RejectReason, u64> = BTreeMap::new();
    let mut retained: i64 = 0;
    let mut max_guard = 0;
    let mut sent = 0;
    let flood = Instant::now();
    'flood: for _ in 0..rounds {
        for kind in ROUND {
            if sent == total {
                break 'flood;
            }
            sent += 1;
            let last = admitted.last().cloned().unwrap_or_else(|| template.clone());
            let input = match kind {
                Input::ValidGuest => call(&n.guest, ts),
                Input::ValidControl => call(&n.api, ts),
                Input::Replayed => admitted[rng.below(admitted.len())].clone(),
                Input::BadSignature => flip(&last, last.len() - 1 - rng.below(64)),
                Input::TamperedCiphertext => {
                    let (at, len) = body_offset(&last);
                    flip(&last, at + rng.below(len))
                }
                Input::Forged => forged[rng.below(forged.len())].clone(),
                Input::UnknownSigner => unknown[rng.below(unknown.len())].clone(),
                Input::Garbage => {
                    let len = rng.below(600);
                    Bytes::from(rng.bytes(len))
                }
                Input::Oversized => oversized.clone(),
                Input::OversizedHeader => big_header.clone(),
                Input::TooManySignatures => too_many.clone(),
            };
            let region = Region::new(GLOBAL);
            let start = Instant::now();
            let result = n.receiver.admit_at(&input, &served, n.now);
            let elapsed = start.elapsed();
            let verdict = result.map(|_| ()).map_err(|r| r.reason);
            // What the receiver kept from this message (the result is dropped first).
            let stats = region.change();
            retained += stats.bytes_allocated as i64 - stats.bytes_deallocated as i64;
            let t = tally.entry(kind).or_default();
            t.count += 1;
            t.time += elapsed;
            match kind.expected() {
                None => {
                    assert_eq!(verdict, Ok(()), "{kind:?} rejected");
                    admitted.push(input);
                }
                Some(reason) => {
                    assert_eq!(verdict, Err(reason), "{kind:?} got the wrong verdict");
                    *expected.entry(reason).or_default() += 1;
                }
            }
            let guard = n.receiver.replay_guard().len();
            assert!(guard <= capacity, "replay guard at {guard} over {capacity}");
            max_guard = max_guard.max(guard);
        }
    }
    let flood_time = flood.elapsed();

    let c = n.receiver.counters();
    assert_eq!(c.accepted, admitted.len() as u64);
    assert_eq!(c.accepted_unauthenticated, 0);
    assert_eq!(c.accepted_unsealed, 0);
    assert_eq!(c.rejected, expected, "counters by reason");
    assert_eq!(c.accepted + c.total_rejected(), sent as u64);
    // Nothing bad was ever opened: bad signatures stop before the seal.
    assert_eq!(c.rejected_for(RejectReason::OpenFailed), 0);
    // The guard holds exactly the admitted ids, within its capacity.
    assert_eq!(n.receiver.replay_guard().len(), admitted.len());

    eprintln!(
        "hostile flood: {sent} messages in {flood_time:.2?} ({} admitted, {} rejected); \
         replay guard peak {max_guard} / capacity {capacity}",
        c.accepted,
        c.total_rejected()
    );
    for (kind, t) in &tally {
        let per_sec = t.count as f64 / t.time.as_secs_f64().max(1e-9);
        eprintln!(
            "  {:<20} {:>6} msgs, {:>9.1} us/msg, {:>10.0} msgs/s",
            format!("{kind:?}"),
            t.count,
            t.time.as_secs_f64() * 1e6 / t.count as f64,
            per_sec,
        );
    }
    let per_valid = retained as f64 / admitted.len() as f64;
    eprintln!(
        "  receiver kept {retained} bytes over the flood ({per_valid:.0} bytes per admitted \
         message: the replay guard's entries)"
    );
    // Memory kept by the receiver is the replay guard's: bounded by its capacity.
    assert!(
        retained <= (capacity as i64) * 1024,
        "receiver kept {retained} bytes for {capacity} guard entries"
    );
}

#[test]
fn a_bad_signature_is_rejected_before_the_seal_is_opened() {
    let _serial = serial();
    let n = net(1024);
    let ts = ms(n.now);
    let valid = call(&n.guest, ts);
    let (at, len) = body_offset(&valid);
    // Ciphertext that would not open, and a signature that does not verify: the signature
    // is checked first, so the seal is never tried.
    let both = flip(&flip(&valid, at + len / 2), valid.len() - 1);
    let r = n.receiver.admit_at(&both, &served, n.now).unwrap_err();
    assert_eq!(r.reason, RejectReason::BadSignature);
    assert_eq!(
        n.receiver.counters().rejected_for(RejectReason::OpenFailed),
        0
    );
    assert!(n.receiver.replay_guard().is_empty(), "nothing recorded");
    // The valid message is still admitted afterwards (the bad copy did not burn its id).
    n.receiver.admit_at(&valid, &served, n.now).unwrap();
}

#[test]
fn a_full_replay_guard_fails_closed_and_recovers_when_entries_age_out() {
    let _serial = serial();
    const CAPACITY: usize = 32;
    let n = net(CAPACITY);
    let ts = ms(n.now);
    let mut first = Vec::new();
    for i in 0..CAPACITY {
        let m = call(if i % 2 == 0 { &n.guest } else { &n.api }, ts);
        n.receiver.admit_at(&m, &served, n.now).unwrap();
        first.push(m);
    }
    assert_eq!(n.receiver.replay_guard().len(), CAPACITY);

    // Full: fresh valid messages are refused (fail closed), the guard does not grow.
    for _ in 0..100 {
        let r = n
            .receiver
            .admit_at(call(&n.guest, ts), &served, n.now)
            .unwrap_err();
        assert_eq!(r.reason, RejectReason::ReplayGuardFull);
        assert_eq!(n.receiver.replay_guard().len(), CAPACITY);
    }
    // A replay is still reported as a replay, and garbage as garbage.
    let r = n.receiver.admit_at(&first[0], &served, n.now).unwrap_err();
    assert_eq!(r.reason, RejectReason::Replay);
    let r = n
        .receiver
        .admit_at(Bytes::from_static(b"\xc1garbage"), &served, n.now)
        .unwrap_err();
    assert_eq!(r.reason, RejectReason::Malformed);
    let c = n.receiver.counters();
    assert_eq!(c.rejected_for(RejectReason::ReplayGuardFull), 100);
    assert_eq!(c.accepted, CAPACITY as u64);

    // Once the window has passed the old entries age out and traffic flows again.
    let later = n.now + Duration::from_secs(61);
    let fresh = call(&n.guest, ms(later));
    n.receiver.admit_at(&fresh, &served, later).unwrap();
    assert_eq!(n.receiver.replay_guard().len(), 1);
    // The old messages are now refused by the clock, not admitted again.
    let r = n.receiver.admit_at(&first[1], &served, later).unwrap_err();
    assert_eq!(r.reason, RejectReason::ClockSkew);
}

#[test]
fn valid_calls_keep_succeeding_while_other_threads_flood_the_receiver() {
    let _serial = serial();
    let n = Arc::new(net(100_000));
    let ts = ms(n.now);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let template = call(&n.guest, ts);
    let flooders: Vec<_> = (0..2u64)
        .map(|seed| {
            let (n, stop, template) = (Arc::clone(&n), Arc::clone(&stop), template.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed);
                let mut sent = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let bad = if sent.is_multiple_of(4) {
                        flip(&template, template.len() - 1 - rng.below(64))
                    } else {
                        let len = rng.below(300);
                        Bytes::from(rng.bytes(len))
                    };
                    assert!(n.receiver.admit_at(&bad, &served, n.now).is_err());
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let mut valid = 0;
    for i in 0..if cfg!(debug_assertions) { 40 } else { 400 } {
        let m = call(if i % 2 == 0 { &n.guest } else { &n.api }, ts);
        n.receiver.admit_at(&m, &served, n.now).unwrap();
        valid += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let bad: u64 = flooders.into_iter().map(|h| h.join().unwrap()).sum();
    let c = n.receiver.counters();
    eprintln!(
        "concurrent flood: {valid} valid calls admitted while {bad} bad messages were rejected"
    );
    assert_eq!(c.accepted, valid);
    assert_eq!(c.total_rejected(), bad);
    assert_eq!(n.receiver.replay_guard().len(), valid as usize);
}

#[test]
fn hostile_guests_flooding_future_stamped_calls_deny_neither_the_control_plane_nor_other_guests() {
    let _serial = serial();
    use sealrpc_core::security::ReplayConfig;
    use sealrpc_tests::flood::net_with_guests;
    // capacity 64, 16 reserved for the control plane, at most 16 ids per guest: four
    // hostile guests could hold all 64 places if nothing else applied.
    let config = ReplayConfig {
        capacity: 64,
        control_reserve: 16,
        per_guest: 16,
        ..ReplayConfig::default()
    };
    let hostile: Vec<String> = (0..4).map(|i| format!("hostile-{i}")).collect();
    let (n, senders) = net_with_guests(config, &hostile);
    let now = ms(n.now);
    let mut refused = 0;
    for round in 0..20 {
        for s in &senders {
            // Stamped as far in the future as the window allows: held 120 s each.
            match n.receiver.admit_at(call(s, now + 60_000), &served, n.now) {
                Ok(_) => {}
                Err(r) => {
                    assert_eq!(r.reason, RejectReason::ReplayGuardFull, "round {round}");
                    refused += 1;
                }
            }
        }
        if round % 3 == 0 {
            // The honest guest (7 ids, under its fair share of floor(48 / 5) = 9) and the
            // control plane are admitted throughout.
            n.receiver
                .admit_at(call(&n.guest, now), &served, n.now)
                .unwrap();
            n.receiver
                .admit_at(call(&n.api, now), &served, n.now)
                .unwrap();
        }
    }
    let usage = n.receiver.replay_guard().usage();
    eprintln!("hostile guests: {refused} of 80 refused; guard {usage:?}");
    assert!(refused > 0);
    assert!(usage.guests <= 48);
    assert_eq!(n.receiver.replay_guard().held_by("control:api"), 7);
    assert_eq!(
        n.receiver
            .replay_guard()
            .held_by(&format!("guest:{}", sealrpc_tests::flood::GUEST)),
        7
    );
}
