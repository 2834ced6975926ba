#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Checking that every key inside `args` is a `str` (at any depth) costs no allocation per
//! entry: a request body whose `args` hold millions of entries, flat or nested, decodes
//! (or is refused for one integer key at the very end) within a small fixed allocation.

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};

use sealrpc_core::bytes::Bytes;
use sealrpc_core::wire::{CodecError, RequestBody};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One measurement at a time (the allocator's counters are global).
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

/// A body `{method, ver, ctx, args}` with `args` as given.
fn body(args: &[u8]) -> Bytes {
    let mut out = b"\x84\xa6method\xa1m\xa3ver\xa31.0\xa3ctx\x80\xa4args".to_vec();
    out.extend_from_slice(args);
    Bytes::from(out)
}

/// A map32 of `n` entries `"": nil`, then `tail` entries (raw) counted in.
fn wide_args(n: u32, tail: &[u8], tail_entries: u32) -> Vec<u8> {
    let mut out = vec![0xdf];
    out.extend_from_slice(&(n + tail_entries).to_be_bytes());
    for _ in 0..n {
        out.extend_from_slice(&[0xa0, 0xc0]);
    }
    out.extend_from_slice(tail);
    out
}

#[test]
fn wide_args_are_checked_without_allocating_per_entry() {
    let _serial = serial();
    let ok = body(&wide_args(1024 * 1024, b"", 0));
    let (result, allocated) = allocated_by(|| RequestBody::decode(&ok));
    eprintln!("args of 1M str-keyed entries: {allocated} bytes allocated");
    assert!(result.is_ok(), "{result:?}");
    assert!(allocated <= BOUND, "decode allocated {allocated} bytes");

    let bad = body(&wide_args(1024 * 1024, b"\x07\xc0", 1));
    let (result, allocated) = allocated_by(|| RequestBody::decode(&bad));
    assert_eq!(result, Err(CodecError::NonStringKey("args")));
    assert!(allocated <= BOUND, "decode allocated {allocated} bytes");
}

#[test]
fn nested_args_are_checked_without_allocating_per_entry() {
    let _serial = serial();
    // {"a": [{"a": [... {"": nil} x 256K]}]}: 14 map+array pairs, 30 levels with the body.
    let mut inner = wide_args(256 * 1024, b"", 0);
    for _ in 0..14 {
        let mut wrapped = b"\x81\xa1a\x91".to_vec();
        wrapped.extend_from_slice(&inner);
        inner = wrapped;
    }
    let ok = body(&inner);
    let (result, allocated) = allocated_by(|| RequestBody::decode(&ok));
    eprintln!("nested args: {allocated} bytes allocated");
    assert!(result.is_ok(), "{result:?}");
    assert!(allocated <= BOUND, "decode allocated {allocated} bytes");
}
