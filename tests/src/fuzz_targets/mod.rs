//! The bodies of the fuzz targets: one copy, shared by the cargo-fuzz crate in `fuzz/`
//! (which includes this file with `#[path]`, so it must only use `std`, `sealrpc_core`,
//! `sealrpc_signers`, `serde_json` and `hex`) and by the bounded smoke run in
//! `tests/tests/fuzz_smoke.rs`.
//!
//! Every target takes arbitrary bytes a peer controls. Beyond "no panic, no hang, no
//! unbounded allocation" (what libFuzzer watches), each one checks an oracle on what it
//! accepts:
//!
//! - decoders: whatever decodes re-encodes to bytes that decode to the same value, within the
//!   limits;
//! - key ids: whatever parses is canonical (rebuilding it from its parts gives the same text);
//! - the receive pipeline: an admitted message that claims a signature or a seal carries
//!   header and body bytes that a key holder produced (one of the seed envelopes): the
//!   fuzzer cannot forge, so anything else admitted as authenticated is a bug; what Enforce
//!   admits is authenticated, and a signer's principal is the header's `src`;
//! - opening: only the exact nonce, associated data and ciphertext sealed open, to the exact
//!   plaintext.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "fuzz targets report a broken invariant by panicking"
)]

mod files;
mod pipeline;

pub use files::*;
pub use pipeline::*;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::security::{Admitted, Auth, ClassPolicy, Mode, Opener, Policy};
use sealrpc_core::wire::{
    EnvelopeRef, Header, KeyId, Limits, ReplyBody, RequestBody, encode_envelope, signature_input,
};
use sealrpc_core::{Principal, Version};
use sealrpc_signers::xchacha::{TAG_LEN, XChaChaOpener, seal_with};
use sealrpc_signers::{
    ControlPlaneKeys, DerivedKeys, GuestBundle, GuestKeys, MasterSecret, RotationTable, derive_key,
    inspect,
};

/// Every target, by the name of its cargo-fuzz binary.
pub const TARGETS: [&str; 9] = [
    "envelope_decode",
    "header_decode",
    "body_decode",
    "key_id_parse",
    "admit_control",
    "admit_guest",
    "open_sealed",
    "bundle_parse",
    "inspect_envelope",
];

/// Runs target `name` on `data` (panics on an unknown name).
pub fn run(name: &str, data: &[u8]) {
    match name {
        "envelope_decode" => envelope_decode(data),
        "header_decode" => header_decode(data),
        "body_decode" => body_decode(data),
        "key_id_parse" => key_id_parse(data),
        "admit_control" => admit_control(data),
        "admit_guest" => admit_guest(data),
        "open_sealed" => open_sealed(data),
        "bundle_parse" => bundle_parse(data),
        "inspect_envelope" => inspect_envelope(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

const GOLDEN: &str = include_str!("../../../docs/vectors/golden.json");
const CONFORMANCE: &str = include_str!("../../../docs/vectors/conformance.json");

/// Small limits, so that the "over a limit" paths are reached by small inputs too.
const TIGHT: Limits = Limits {
    max_envelope: 1024,
    max_header: 128,
    max_signatures: 2,
    max_key_id: 24,
};

// ---------------------------------------------------------------------------------------
// Decoders

/// `EnvelopeRef::decode` under the default and under tight limits.
pub fn envelope_decode(data: &[u8]) {
    for limits in [Limits::default(), TIGHT] {
        let Ok(env) = EnvelopeRef::decode(data, &limits) else {
            continue;
        };
        assert!(data.len() <= limits.max_envelope);
        assert!(env.header.len() <= limits.max_header);
        assert!(env.signatures.len() <= limits.max_signatures);
        assert!(
            env.signatures
                .iter()
                .all(|s| s.key_id.len() <= limits.max_key_id)
        );
        assert!(within(data, env.header) && within(data, env.body));
        // Compact re-encoding never grows (unknown keys dropped, shortest forms) and
        // decodes to the same envelope.
        let again = encode_envelope(env.header, env.body, &env.signatures);
        assert!(again.len() <= data.len(), "re-encoding grew the envelope");
        // (Items of which only the algorithm reads are not re-encoded.)
        let readable = EnvelopeRef {
            opaque_signatures: Vec::new(),
            ..env.clone()
        };
        assert_eq!(EnvelopeRef::decode(&again, &limits).as_ref(), Ok(&readable));
        header_decode(env.header);
    }
}

/// `Header::decode`: whatever decodes round-trips through `Header::encode`.
pub fn header_decode(data: &[u8]) {
    if let Ok(h) = Header::decode(data) {
        let again = h.encode();
        assert_eq!(Header::decode(&again).as_ref(), Ok(&h));
        if let Some(seal) = &h.seal {
            let _ = KeyId::parse(&seal.key_id);
        }
    }
}

/// `RequestBody::decode` and `ReplyBody::decode` of the same bytes: whatever decodes
/// round-trips through `encode`.
pub fn body_decode(data: &[u8]) {
    let plain = Bytes::copy_from_slice(data);
    if let Ok(r) = RequestBody::decode(&plain) {
        assert!(r.namespace.as_deref() != Some(""));
        let again = RequestBody::encode(
            &r.method,
            r.version,
            r.namespace.as_deref(),
            &r.args,
            &r.ctx,
        );
        assert_eq!(RequestBody::decode(&Bytes::from(again)).as_ref(), Ok(&r));
        assert_eq!(Version::parse(&r.version.to_string()), Some(r.version));
    }
    if let Ok(r) = ReplyBody::decode(&plain) {
        assert_eq!(ReplyBody::decode(&Bytes::from(r.encode())).as_ref(), Ok(&r));
    }
}

/// `KeyId::parse` (and `Principal::parse`, `Version::parse`) of the input as text.
pub fn key_id_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = KeyId::parse(text) {
        assert_eq!(id.as_str(), text);
        let rebuilt = KeyId::new(id.role(), id.principal().clone(), id.epoch());
        assert_eq!(
            rebuilt.as_str(),
            text,
            "a key id that is not canonical parsed"
        );
        assert_eq!(rebuilt, id);
    }
    if let Some(p) = Principal::parse(text) {
        assert_eq!(p.as_str(), text);
        assert!(!text.contains('/'));
    }
    if let Some(v) = Version::parse(text) {
        assert_eq!(
            v.to_string(),
            text,
            "a version that is not canonical parsed"
        );
    }
}

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

// ---------------------------------------------------------------------------------------
// Seeds

/// The seed inputs of target `name`, built from `docs/vectors/*.json`.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    let w = world();
    let envelopes = || w.seed_envelopes.clone();
    let decoded = || {
        w.seed_envelopes
            .iter()
            .filter_map(|e| EnvelopeRef::decode(e, &Limits::default()).ok())
            .collect::<Vec<_>>()
    };
    match name {
        "envelope_decode" | "admit_control" | "admit_guest" | "inspect_envelope" => envelopes(),
        "header_decode" => decoded().iter().map(|e| e.header.to_vec()).collect(),
        "body_decode" => opened_bodies(),
        "key_id_parse" => {
            let mut ids: BTreeSet<String> = BTreeSet::new();
            for e in decoded() {
                ids.extend(e.signatures.iter().map(|s| s.key_id.clone()));
                if let Ok(Header {
                    seal: Some(seal), ..
                }) = Header::decode(e.header)
                {
                    ids.insert(seal.key_id);
                }
            }
            ids.extend(["k1/control/1", "kb/guests/18446744073709551615", "1.0"].map(String::from));
            ids.into_iter().map(String::into_bytes).collect()
        }
        "open_sealed" => {
            let s = fixed_seal();
            vec![open_sealed_input(&s.nonce, &s.aad, &s.sealed)]
        }
        "bundle_parse" => w
            .bundles
            .iter()
            .chain(&w.rotation_tables)
            .map(|t| t.clone().into_bytes())
            .collect(),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// The plaintext bodies of the seed envelopes (sealed ones opened with the vector masters).
fn opened_bodies() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for file in [vector_file(GOLDEN), vector_file(CONFORMANCE)] {
        let master = MasterSecret::from_hex(&file.master_hex).expect("master");
        for e in &file.envelopes {
            let Ok(env) = EnvelopeRef::decode(e, &Limits::default()) else {
                continue;
            };
            let Ok(h) = Header::decode(env.header) else {
                continue;
            };
            match &h.seal {
                None => out.push(env.body.to_vec()),
                Some(seal) => {
                    let Ok(id) = KeyId::parse(&seal.key_id) else {
                        continue;
                    };
                    let key = derive_key(&master, &id);
                    if let Ok(plain) =
                        sealrpc_signers::xchacha::open_with(&key, &seal.nonce, env.header, env.body)
                    {
                        out.push(plain);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
