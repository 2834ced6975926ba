#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! What a receiver allocates for hostile input stays small and does not grow with the input.
//!
//! Regression for a fuzzing finding: the strict MessagePack reader collected every entry of
//! a map (and every item of the `sig` array) into a `Vec` before looking at them, 32 bytes per
//! entry for entries as small as 2 bytes on the wire (`"": nil`). An 8 MiB envelope made of
//! unknown keys cost a single 128 MiB allocation (16x the input, 256 MiB at the 16 MiB
//! envelope limit), and the limit of 8 signature items was checked only after a `sig` array of
//! millions of items had been collected. Maps are now walked without collecting, and the
//! signature count is checked from the array's header.
//!
//! The request context (`ctx`, decoded by every server, and sent by anyone under Permissive
//! or Off) had the same flaw: its map, its `custom` and `secret` maps and its `corr_ids`
//! array were collected, and every entry was then copied. It is walked the same way now,
//! keeps at most `MAX_ENTRIES` entries and `MAX_CORRELATION_IDS` ids, and reads a repeated
//! key once.

use std::alloc::System;
use std::sync::{Arc, Mutex, MutexGuard};

use sealrpc_core::Context;
use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::RejectReason;
use sealrpc_core::wire::{CodecError, EnvelopeRef, Header, Limits, ReplyBody, RequestBody};
use sealrpc_signers::{ControlPlaneKeys, MasterSecret, RotationTable};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The allocator's counters are global: one test at a time (inputs are built under the
/// lock too, so that no other test's allocations land in a measurement).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most bytes a decode may allocate, whatever the input size.
const BOUND: usize = 64 * 1024;

fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let region = Region::new(GLOBAL);
    let r = f();
    (r, region.change().bytes_allocated)
}

/// A map32 of `n` entries `"": nil` (2 bytes each), with `prefix` entries first.
fn wide_map(prefix: &[u8], prefix_entries: u32, n: u32) -> Vec<u8> {
    let mut out = vec![0xdf];
    out.extend_from_slice(&(n + prefix_entries).to_be_bytes());
    out.extend_from_slice(prefix);
    for _ in 0..n {
        out.extend_from_slice(&[0xa0, 0xc0]);
    }
    out
}

/// A minimal valid-looking envelope prefix: `v: 1, h: {}, b: {}` (3 entries).
const VHB: &[u8] = b"\xa1v\x01\xa1h\xc4\x01\x80\xa1b\xc4\x01\x80";

#[test]
fn an_envelope_of_millions_of_unknown_keys_allocates_little() {
    let _serial = serial();
    let bytes = wide_map(VHB, 3, 1024 * 1024); // 2 MiB
    let (result, allocated) = allocated_by(|| EnvelopeRef::decode(&bytes, &Limits::default()));
    eprintln!("2 MiB envelope of unknown keys: {allocated} bytes allocated");
    assert!(result.is_ok(), "unknown keys are skipped: {result:?}");
    assert!(allocated <= BOUND, "decoding allocated {allocated} bytes");
}

#[test]
fn a_sig_array_over_the_limit_is_refused_before_it_is_collected() {
    let _serial = serial();
    let n: u32 = 2 * 1024 * 1024;
    let mut bytes = b"\x84".to_vec();
    bytes.extend_from_slice(VHB);
    bytes.extend_from_slice(b"\xa3sig\xdd");
    bytes.extend_from_slice(&n.to_be_bytes());
    bytes.resize(bytes.len() + n as usize, 0xc0);
    let (result, allocated) = allocated_by(|| EnvelopeRef::decode(&bytes, &Limits::default()));
    eprintln!("sig array of {n} items: {allocated} bytes allocated");
    assert!(
        matches!(
            result,
            Err(CodecError::TooLarge {
                what: "signature list",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(allocated <= BOUND, "decoding allocated {allocated} bytes");
}

#[test]
fn header_and_bodies_of_millions_of_unknown_keys_allocate_little() {
    let _serial = serial();
    let header = wide_map(b"", 0, 1024 * 1024);
    let (result, allocated) = allocated_by(|| Header::decode(&header));
    assert!(
        matches!(result, Err(CodecError::MissingKey(_))),
        "{result:?}"
    );
    assert!(
        allocated <= BOUND,
        "header decode allocated {allocated} bytes"
    );

    let body = Bytes::from(wide_map(
        b"\xa6method\xa1m\xa3ver\xa31.0\xa3ctx\x80",
        3,
        1024 * 1024,
    ));
    let (result, allocated) = allocated_by(|| RequestBody::decode(&body));
    assert!(result.is_ok(), "{result:?}");
    assert!(
        allocated <= BOUND,
        "request body decode allocated {allocated} bytes"
    );

    let reply = Bytes::from(wide_map(b"\xa2ok\xc0", 1, 1024 * 1024));
    let (result, allocated) = allocated_by(|| ReplyBody::decode(&reply));
    assert!(matches!(result, Ok(ReplyBody::Ok(_))), "{result:?}");
    assert!(
        allocated <= BOUND,
        "reply body decode allocated {allocated} bytes"
    );

    // Two `ok` keys are still a duplicate, however far apart.
    let mut twice = wide_map(b"\xa2ok\xc0", 1, 1000);
    twice[4] += 1;
    twice.extend_from_slice(b"\xa2ok\x01");
    assert_eq!(
        ReplyBody::decode(&Bytes::from(twice)),
        Err(CodecError::DuplicateKey("ok"))
    );
}

#[test]
fn the_receive_pipeline_rejects_a_wide_envelope_with_little_allocation() {
    let _serial = serial();
    let master = Arc::new(MasterSecret::from_bytes([7; 32]));
    let keys = ControlPlaneKeys::new(master, Arc::new(RotationTable::new()), "conductor").unwrap();
    let security = keys.security().build();
    let bytes = Bytes::from(wide_map(VHB, 3, 1024 * 1024));
    let (result, allocated) = allocated_by(|| security.admit(&bytes, &|_| true));
    eprintln!("pipeline, 2 MiB envelope of unknown keys: {allocated} bytes allocated");
    assert_eq!(result.unwrap_err().reason, RejectReason::Malformed);
    assert!(allocated <= BOUND, "admit allocated {allocated} bytes");
}

/// A context map of one `key` whose value is a map of `n` distinct entries `kN: nil`.
fn ctx_with_wide(key: &str, n: u32) -> Vec<u8> {
    let mut out = vec![0x81, 0xa0 | key.len() as u8];
    out.extend_from_slice(key.as_bytes());
    out.push(0xdf);
    out.extend_from_slice(&n.to_be_bytes());
    for i in 0..n {
        let name = format!("k{i}");
        out.push(0xa0 | name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(0xc0);
    }
    out
}

#[test]
fn a_context_of_millions_of_entries_allocates_little() {
    let _serial = serial();
    // Millions of unknown keys.
    let unknown = wide_map(b"", 0, 1024 * 1024);
    let (ctx, allocated) = allocated_by(|| Context::decode(&unknown));
    eprintln!("ctx of 1 Mi unknown keys: {allocated} bytes allocated");
    assert!(ctx.request_id().starts_with("req-"));
    assert!(allocated <= BOUND, "ctx decode allocated {allocated} bytes");
    drop(ctx);

    // Millions of distinct custom, then secret, entries.
    for key in ["custom", "secret"] {
        let bytes = ctx_with_wide(key, 1024 * 1024);
        let (ctx, allocated) = allocated_by(|| Context::decode(&bytes));
        eprintln!("ctx with 1 Mi {key} entries: {allocated} bytes allocated");
        let kept = ctx.entry_names().count() + ctx.secret_names().count();
        assert_eq!(kept, sealrpc_core::Context::MAX_ENTRIES);
        assert!(
            allocated <= BOUND,
            "{key}: ctx decode allocated {allocated} bytes"
        );
    }

    // A corr_ids array of millions of items.
    let n: u32 = 1024 * 1024;
    let mut bytes = b"\x81\xa8corr_ids\xdd".to_vec();
    bytes.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        bytes.extend_from_slice(b"\xa1c");
    }
    let (ctx, allocated) = allocated_by(|| Context::decode(&bytes));
    eprintln!("ctx with 1 Mi correlation ids: {allocated} bytes allocated");
    assert_eq!(
        ctx.correlation_ids().len(),
        sealrpc_core::Context::MAX_CORRELATION_IDS
    );
    assert!(
        allocated <= BOUND,
        "corr_ids: ctx decode allocated {allocated} bytes"
    );

    // One known key repeated millions of times.
    let mut bytes = vec![0xdf];
    bytes.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        bytes.extend_from_slice(b"\xaarequest_id\xa1r");
    }
    let (ctx, allocated) = allocated_by(|| Context::decode(&bytes));
    assert_eq!(ctx.request_id(), "r");
    assert!(
        allocated <= BOUND,
        "repeated key: ctx decode allocated {allocated} bytes"
    );
}
