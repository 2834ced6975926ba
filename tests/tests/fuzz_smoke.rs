#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A bounded smoke run of every fuzz target in the normal test suite (no libFuzzer): the
//! seed inputs from `docs/vectors/`, a few thousand deterministic mutations of them (bit
//! flips, interesting bytes, huge length markers, truncations, splices), and proptest inputs
//! built as structured MessagePack, through the same target bodies as `fuzz/`
//! (`sealrpc_tests::fuzz_targets`).
//!
//! Write the seed corpus for cargo-fuzz with
//! `SEALRPC_FUZZ_CORPUS=fuzz/corpus cargo test -p sealrpc-tests --test fuzz_smoke seed_corpus`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use proptest::prelude::*;
use rmpv::Value;
use sealrpc_tests::fuzz_targets::{self, TARGETS};
use sealrpc_tests::mutate::{Rng, mutate};

/// Runs one input, printing it (hex) if the target panics, so a failure is reproducible.
fn run_one(target: &str, input: &[u8]) {
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| fuzz_targets::run(target, input))) {
        eprintln!("{target} failed on input {}", hex::encode(input));
        resume_unwind(e);
    }
}

/// Seeds, then `mutations` mutated inputs; mutants are kept as new bases now and then so
/// that mutations stack.
fn smoke(target: &str, mutations: usize) {
    let seeds = fuzz_targets::seeds(target);
    assert!(!seeds.is_empty(), "{target} has no seeds");
    let start = Instant::now();
    for s in &seeds {
        run_one(target, s);
    }
    let seed = target.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = Rng::new(seed);
    let mut pool = seeds.clone();
    for i in 0..mutations {
        let a = rng.below(pool.len());
        let b = rng.below(pool.len());
        let input = mutate(&mut rng, &pool[a], &pool[b]);
        run_one(target, &input);
        if i % 16 == 0 && pool.len() < 512 {
            pool.push(input);
        }
    }
    eprintln!(
        "fuzz smoke {target}: {} seeds + {mutations} mutated inputs in {:.2?}",
        seeds.len(),
        start.elapsed()
    );
}

#[test]
fn smoke_envelope_decode() {
    smoke("envelope_decode", 50_000);
}

#[test]
fn smoke_header_decode() {
    smoke("header_decode", 50_000);
}

#[test]
fn smoke_body_decode() {
    smoke("body_decode", 50_000);
}

#[test]
fn smoke_key_id_parse() {
    smoke("key_id_parse", 50_000);
}

#[test]
fn smoke_admit_control() {
    smoke("admit_control", 500);
}

#[test]
fn smoke_admit_guest() {
    smoke("admit_guest", 1_000);
}

#[test]
fn smoke_open_sealed() {
    smoke("open_sealed", 20_000);
}

#[test]
fn smoke_bundle_parse() {
    smoke("bundle_parse", 20_000);
}

#[test]
fn smoke_inspect_envelope() {
    smoke("inspect_envelope", 20_000);
}

#[test]
fn every_target_has_a_smoke_test_and_seeds() {
    let this = include_str!("fuzz_smoke.rs");
    for t in TARGETS {
        assert!(
            this.contains(&format!("fn smoke_{t}()")),
            "no smoke test for {t}"
        );
        assert!(!fuzz_targets::seeds(t).is_empty());
        let bin = format!("{}/../fuzz/fuzz_targets/{t}.rs", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(&bin).unwrap_or_else(|e| panic!("{bin}: {e}"));
        assert!(
            src.contains(&format!("targets::{t}(")),
            "{bin} does not run {t}"
        );
    }
}

/// The seeds reach the end of the pipeline: the vectors' valid envelopes are admitted by the
/// fuzzed receivers (otherwise the fuzzer would only ever explore rejections).
#[test]
fn seeds_reach_admission() {
    let seeds = fuzz_targets::seeds("admit_control");
    let control: usize = seeds
        .iter()
        .map(|s| fuzz_targets::admitted_by_control(s))
        .sum();
    let guests: usize = seeds
        .iter()
        .map(|s| fuzz_targets::admitted_by_guests(s))
        .sum();
    eprintln!("seed admissions: control {control}, guests {guests}");
    assert!(control >= 20, "control receivers admitted only {control}");
    assert!(guests >= 4, "guest receivers admitted only {guests}");
}

/// Writes the seeds to `$SEALRPC_FUZZ_CORPUS/<target>/` (cargo-fuzz's corpus layout).
#[test]
fn seed_corpus() {
    let Some(dir) = std::env::var_os("SEALRPC_FUZZ_CORPUS") else {
        return;
    };
    for t in TARGETS {
        let d = std::path::Path::new(&dir).join(t);
        std::fs::create_dir_all(&d).unwrap();
        for (i, s) in fuzz_targets::seeds(t).iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:03}")), s).unwrap();
        }
        eprintln!(
            "wrote {} seeds to {}",
            fuzz_targets::seeds(t).len(),
            d.display()
        );
    }
}

// ---------------------------------------------------------------------------------------
// proptest: structured MessagePack, mostly with the wire's own keys and values

const KEYS: &[&str] = &[
    "v", "h", "b", "sig", "k", "a", "s", "id", "kind", "ts", "ttl", "src", "dst", "corr", "reply",
    "seal", "n", "method", "ver", "ns", "args", "ctx", "ok", "err", "code", "msg", "data",
    "x-future",
];

const STRS: &[&str] = &[
    "",
    "call",
    "cast",
    "reply",
    "fanout",
    "xchacha20poly1305",
    "ed25519-sha256",
    "1.0",
    "01.0",
    "control",
    "control:conductor",
    "guest:5f0e4a1c-1111-4222-8333-444455556666",
    "guests",
    "conductor",
    "k3/guest:5f0e4a1c-1111-4222-8333-444455556666/1",
    "sig/guest:5f0e4a1c-1111-4222-8333-444455556666/1",
    "k1/control/1",
    "kb/guests/1",
    "sig/control:conductor/1",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..2_000_000_000_000_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(STRS).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        prop::sample::select(&[0usize, 15, 16, 17, 24, 32, 64][..])
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
            .prop_map(Value::from),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..4)).prop_map(|(t, d)| Value::Ext(t, d)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(Value::from), inner),
                0..9
            )
            .prop_map(Value::Map),
        ]
    })
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

/// A map whose keys are drawn from the wire's keys (what a decoder looks for).
fn wire_map() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..10).prop_map(|entries| {
        encode(&Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        ))
    })
}

fn envelope() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(Value::from(1)), leaf()],
        wire_map(),
        wire_map(),
        prop::collection::vec(
            (
                prop::sample::select(STRS),
                prop::sample::select(&["ed25519-sha256", "slh-dsa", ""][..]),
                prop::collection::vec(any::<u8>(), 60..68),
            ),
            0..4,
        ),
    )
        .prop_map(|(v, h, b, sigs)| {
            let mut entries = vec![
                (Value::from("v"), v),
                (Value::from("h"), Value::from(h)),
                (Value::from("b"), Value::from(b)),
            ];
            if !sigs.is_empty() {
                let items = sigs
                    .into_iter()
                    .map(|(k, a, s)| {
                        Value::Map(vec![
                            (Value::from("k"), Value::from(k)),
                            (Value::from("a"), Value::from(a)),
                            (Value::from("s"), Value::from(s)),
                        ])
                    })
                    .collect();
                entries.push((Value::from("sig"), Value::Array(items)));
            }
            encode(&Value::Map(entries))
        })
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    // The pipeline targets verify signatures (slow in a debug build): fewer cases.
    #![proptest_config(config(300))]

    #[test]
    fn proptest_envelopes(bytes in envelope()) {
        for t in ["envelope_decode", "admit_control", "admit_guest", "inspect_envelope"] {
            run_one(t, &bytes);
        }
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn proptest_headers_and_bodies(bytes in wire_map()) {
        for t in ["header_decode", "body_decode", "envelope_decode"] {
            run_one(t, &bytes);
        }
    }

    #[test]
    fn proptest_any_value(bytes in value().prop_map(|v| encode(&v))) {
        for t in ["envelope_decode", "header_decode", "body_decode"] {
            run_one(t, &bytes);
        }
    }

    #[test]
    fn proptest_key_ids(
        text in "(k1|k2|k3|kb|sig|K1|)/(control|guests|guest:[a-z0-9./:-]{0,6}|control:[a-z ]{0,4}|)/(0|[1-9][0-9]{0,20}|0[0-9]|-1|\\+1)(/x)?"
    ) {
        run_one("key_id_parse", text.as_bytes());
    }

    #[test]
    fn proptest_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for t in ["envelope_decode", "header_decode", "body_decode", "key_id_parse", "open_sealed", "bundle_parse"] {
            run_one(t, &bytes);
        }
    }
}
