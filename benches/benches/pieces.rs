//! Micro-benchmarks of every piece of the security pipeline, so that a regression in one
//! piece is visible: codec, digest, sign, verify, seal, open, derive, replay-guard check,
//! and the whole pipeline (both directions of a call, no transport) per mode and size.
//!
//! `cargo bench -p sealrpc-benches --bench pieces` (a few minutes); filter with a name,
//! e.g. `-- pipeline/`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, SigningKey};
use sealrpc_benches::SIZES;
use sealrpc_benches::modes::{BenchKeys, SecMode};
use sealrpc_benches::pipeline::{self, EMPTY_CTX, echo_args, payload, request_outbound};
use sealrpc_core::security::{ReplayConfig, ReplayGuard, Signer as _, Verifier as _, now_ms};
use sealrpc_core::wire::{
    EnvelopeRef, Header, KeyId, Limits, MessageId, RequestBody, Role, SignatureItem,
    encode_envelope, signature_input,
};
use sealrpc_core::{Principal, Version};
use sealrpc_signers::xchacha::{open_with, seal_with};
use sealrpc_signers::{
    ControlPlaneKeys, DerivedKeys, Ed25519Signer, Ed25519Verifier, MasterSecret, RotationTable,
    SecretKey, derive_key,
};

fn sample_header() -> Header {
    let mut out = request_outbound("0123456789abcdef", Bytes::from_static(b"\x80"));
    out.header.src = "control:api".into();
    out.header.seal = Some(sealrpc_core::wire::SealInfo {
        key_id: "k2/guest:0123456789abcdef/1".into(),
        nonce: [7; 24],
    });
    out.header
}

fn sample_sig() -> SignatureItem {
    SignatureItem {
        key_id: "sig/control:api/1".into(),
        algorithm: "ed25519-sha256".into(),
        signature: vec![9; 64],
    }
}

fn codec(c: &mut Criterion) {
    let header = sample_header();
    let h = header.encode();
    let mut g = c.benchmark_group("codec");
    g.bench_function("header_encode", |b| b.iter(|| black_box(&header).encode()));
    g.bench_function("header_decode", |b| {
        b.iter(|| Header::decode(black_box(&h)).unwrap())
    });
    let limits = Limits::default();
    let sig = [sample_sig()];
    for (name, size) in SIZES {
        let args = echo_args(&payload(size));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("body_encode", name), |b| {
            b.iter(|| {
                RequestBody::encode(
                    "echo",
                    Version::new(1, 0),
                    None,
                    black_box(&args),
                    EMPTY_CTX,
                )
            })
        });
        let body = Bytes::from(RequestBody::encode(
            "echo",
            Version::new(1, 0),
            None,
            &args,
            EMPTY_CTX,
        ));
        g.bench_function(BenchmarkId::new("body_decode", name), |b| {
            b.iter(|| RequestBody::decode(black_box(&body)).unwrap())
        });
        g.bench_function(BenchmarkId::new("envelope_encode", name), |b| {
            b.iter(|| encode_envelope(black_box(&h), black_box(&body), &sig))
        });
        let env = encode_envelope(&h, &body, &sig);
        g.bench_function(BenchmarkId::new("envelope_decode", name), |b| {
            b.iter(|| {
                EnvelopeRef::decode(black_box(&env), &limits)
                    .unwrap()
                    .body
                    .len()
            })
        });
    }
    g.finish();
}

fn digest(c: &mut Criterion) {
    let h = sample_header().encode();
    let mut g = c.benchmark_group("digest");
    for (name, size) in SIZES {
        let body = payload(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("signature_input", name), |b| {
            b.iter(|| signature_input(black_box(&h), black_box(&body)))
        });
    }
    g.finish();
}

struct SigKeys {
    control: ControlPlaneKeys,
    signer: Ed25519Signer,
    raw: SigningKey,
    verifier: Ed25519Verifier,
    key_id: KeyId,
}

fn sig_keys() -> SigKeys {
    let master = Arc::new(MasterSecret::generate().unwrap());
    let table = Arc::new(RotationTable::new());
    let control = ControlPlaneKeys::new(Arc::clone(&master), table, "api").unwrap();
    let key_id = control.signing_key_id();
    let seed = derive_key(&master, &key_id);
    let signer = Ed25519Signer::new(key_id.clone(), &seed).unwrap();
    let raw = SigningKey::from_bytes(seed.as_bytes());
    let derived = Arc::new(DerivedKeys::new(master));
    let verifier = Ed25519Verifier::new(derived, Arc::new(control.clone()));
    SigKeys {
        control,
        signer,
        raw,
        verifier,
        key_id,
    }
}

fn sign_verify(c: &mut Criterion) {
    let k = sig_keys();
    let h = sample_header().encode();
    let input = signature_input(&h, &payload(1024));
    let sig = k.signer.sign(&input).unwrap();
    let vk = k.raw.verifying_key();
    let dsig = ed25519_dalek::Signature::from_slice(&sig).unwrap();

    let mut g = c.benchmark_group("sign");
    // What the pipeline signs: the 47-byte digest input, whatever the body size.
    g.bench_function("ed25519_digest_input", |b| {
        b.iter(|| k.signer.sign(black_box(&input)).unwrap())
    });
    // For comparison: pure ed25519 over the whole message (hashed twice with SHA-512).
    for (name, size) in SIZES {
        let msg = payload(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("ed25519_whole_message", name), |b| {
            b.iter(|| k.raw.sign(black_box(&msg)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("verify");
    g.bench_function("dalek_verify_strict_digest_input", |b| {
        b.iter(|| vk.verify_strict(black_box(&input), &dsig).unwrap())
    });
    // Through the plugin: key-id checks against the rotation table, cached public key.
    g.bench_function("verifier_digest_input", |b| {
        b.iter(|| {
            k.verifier
                .verify(&k.key_id, black_box(&input), &sig)
                .unwrap()
        })
    });
    for (name, size) in SIZES {
        let msg = payload(size);
        let s = k.raw.sign(&msg);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(
            BenchmarkId::new("dalek_verify_strict_whole_message", name),
            |b| b.iter(|| vk.verify_strict(black_box(&msg), &s).unwrap()),
        );
    }
    g.finish();
    black_box(&k.control);
}

fn seal_open(c: &mut Criterion) {
    let key = SecretKey::from_bytes([3; 32]);
    let nonce = [5u8; 24];
    let h = sample_header().encode();
    let mut g = c.benchmark_group("aead");
    for (name, size) in SIZES {
        let body = payload(size);
        let sealed = seal_with(&key, &nonce, &h, &body).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("seal", name), |b| {
            b.iter(|| seal_with(&key, &nonce, black_box(&h), black_box(&body)).unwrap())
        });
        g.bench_function(BenchmarkId::new("open", name), |b| {
            b.iter(|| open_with(&key, &nonce, black_box(&h), black_box(&sealed)).unwrap())
        });
    }
    g.finish();
}

fn derive(c: &mut Criterion) {
    let master = MasterSecret::generate().unwrap();
    let id = KeyId::new(Role::K2, Principal::guest("0123456789abcdef").unwrap(), 1);
    let mut g = c.benchmark_group("derive");
    g.bench_function("hkdf_sha256", |b| {
        b.iter(|| derive_key(&master, black_box(&id)))
    });
    g.finish();
}

fn replay(c: &mut Criterion) {
    // A synthetic clock advancing 1 ms every 10 checks with a 1 s window keeps ~20k ids
    // live: the steady state of a busy server.
    let guard = ReplayGuard::new(ReplayConfig {
        skew_ms: 1_000,
        capacity: 1_000_000,
        ..ReplayConfig::default()
    });
    let base = now_ms();
    let mut n: u64 = 0;
    let mut g = c.benchmark_group("replay");
    g.bench_function("check_and_record", |b| {
        b.iter(|| {
            n += 1;
            let now = base + n / 10;
            guard.check_time(now, Some(30_000), now).unwrap();
            guard
                .check_and_record("control:api", MessageId::random(), now, now)
                .unwrap()
        })
    });
    g.bench_function("message_id_random", |b| b.iter(MessageId::random));
    g.finish();
}

fn whole_pipeline(c: &mut Criterion) {
    let keys = BenchKeys::new("0123456789abcdef").unwrap();
    let mut g = c.benchmark_group("pipeline");
    for (name, size) in SIZES {
        let args = echo_args(&payload(size));
        g.throughput(Throughput::Bytes(size as u64));
        for mode in SecMode::ALL {
            let pair = keys.pair(mode);
            // Check once that the mode works end to end before timing it.
            pipeline::round_trip(&pair, keys.guest_id(), &args).unwrap();
            g.bench_function(BenchmarkId::new(mode.name(), name), |b| {
                b.iter(|| pipeline::round_trip(&pair, keys.guest_id(), black_box(&args)).unwrap())
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = codec, digest, sign_verify, seal_open, derive, replay, whole_pipeline
}
criterion_main!(benches);
