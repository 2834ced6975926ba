//! Context encoding: round trip, lenient decoding, the principal never taken from the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealrpc_core::wire::write::Writer;
use sealrpc_core::{Context, Secret};

#[test]
fn round_trip() {
    let mut ctx = Context::new()
        .with_request_id("req-a")
        .with_global_request_id("greq-g")
        .with_correlation_id("c1")
        .with_correlation_id("c2")
        .with("tenant", "acme")
        .unwrap()
        .with("quota", &vec![1u32, 2, 3])
        .unwrap();
    ctx.insert_secret("pw", &Secret::new("x".to_owned()))
        .unwrap();
    let enc = ctx.encode();
    assert!(enc.carries_secret());
    let back = Context::decode(enc.bytes());
    assert_eq!(back.request_id(), "req-a");
    assert_eq!(back.global_request_id(), Some("greq-g"));
    assert_eq!(back.correlation_ids(), ["c1", "c2"]);
    assert_eq!(
        back.get::<String>("tenant").unwrap().as_deref(),
        Some("acme")
    );
    assert_eq!(back.get::<Vec<u32>>("quota").unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(back.secret::<String>("pw").unwrap().unwrap().expose(), "x");
    assert!(back.principal().is_none());
    assert!(
        back.deadline().is_none(),
        "the deadline travels in the header's ttl"
    );
    // A type mismatch is an error, not a panic.
    assert!(back.get::<u64>("tenant").is_err());
}

#[test]
fn request_id_is_generated() {
    let a = Context::new();
    let b = Context::new();
    assert!(a.request_id().starts_with("req-"));
    assert_ne!(a.request_id(), b.request_id());
    let empty = Context::decode(&[0x80]);
    assert!(empty.request_id().starts_with("req-"));
}

#[test]
fn decoding_is_lenient_and_never_panics() {
    for garbage in [
        &b""[..],
        &[0xc1],
        &[0x91, 0x01],
        &[0xde, 0xff],
        b"\x81\xa1x",
        &[0xc0],
    ] {
        let ctx = Context::decode(garbage);
        assert!(ctx.request_id().starts_with("req-"));
    }
    // Unknown keys, wrong types, and a `principal` a sender made up.
    let mut w = Writer::default();
    w.map(6);
    w.str("request_id").uint(7); // wrong type: ignored
    w.str("principal").str("control:admin");
    w.str("future_key").array(1).str("x");
    w.str("corr_ids").array(3).str("a").uint(1).str("b");
    w.str("custom").map(1).str("k").str("v");
    w.str("secret").str("not a map");
    let ctx = Context::decode(&w.into_bytes());
    assert!(ctx.request_id().starts_with("req-"));
    assert!(
        ctx.principal().is_none(),
        "a principal on the wire is never trusted"
    );
    assert_eq!(ctx.correlation_ids(), ["a", "b"]);
    assert_eq!(ctx.get::<String>("k").unwrap().as_deref(), Some("v"));
    assert!(!ctx.carries_secret());
}

#[test]
fn child_contexts_chain_ids_and_keep_the_deadline() {
    let parent = Context::new()
        .with_timeout(Duration::from_secs(5))
        .with("tenant", "acme")
        .unwrap();
    let child = parent.child();
    assert_ne!(child.request_id(), parent.request_id());
    assert_eq!(child.global_request_id(), Some(parent.request_id()));
    assert_eq!(child.correlation_ids(), [parent.request_id().to_owned()]);
    assert_eq!(child.deadline(), parent.deadline());
    assert_eq!(
        child.get::<String>("tenant").unwrap().as_deref(),
        Some("acme")
    );
    let grandchild = child.child();
    assert_eq!(grandchild.global_request_id(), Some(parent.request_id()));
    assert_eq!(grandchild.correlation_ids().len(), 2);
    assert!(!parent.is_expired());
    assert!(parent.remaining().is_some());
}
