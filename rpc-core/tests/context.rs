//! Context encoding: round trip, lenient decoding, the principal never taken from the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod msgpack;

use std::time::Duration;

use msgpack::Writer;
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

fn with_secrets() -> Context {
    let mut ctx = Context::new().with("tenant", "acme").unwrap();
    ctx.insert_secret("db_password", &Secret::new("pw".to_owned()))
        .unwrap();
    ctx.insert_secret("admin_token", &Secret::new("tok".to_owned()))
        .unwrap();
    ctx
}

#[test]
fn a_child_starts_without_secrets_and_keeps_plain_entries() {
    let parent = with_secrets();
    let child = parent.child();
    assert_eq!(child.secret_names().count(), 0);
    assert!(!child.carries_secret());
    assert!(child.secret::<String>("db_password").unwrap().is_none());
    assert_eq!(
        child.get::<String>("tenant").unwrap().as_deref(),
        Some("acme")
    );
    let back = Context::decode(child.encode().bytes());
    assert_eq!(back.secret_names().count(), 0);
    assert!(!child.encode().carries_secret());
}

#[test]
fn received_secrets_are_readable_but_never_sent_on() {
    let received = Context::decode(with_secrets().encode().bytes());
    assert_eq!(
        received
            .secret::<String>("db_password")
            .unwrap()
            .unwrap()
            .expose(),
        "pw"
    );
    assert_eq!(received.secret_names().count(), 2);
    assert_eq!(received.sent_secret_names().count(), 0);
    assert!(!received.carries_secret());
    // Not as is, not cloned.
    for ctx in [&received, &received.clone()] {
        let enc = ctx.encode();
        assert!(!enc.carries_secret());
        assert_eq!(Context::decode(enc.bytes()).secret_names().count(), 0);
        assert_eq!(
            Context::decode(enc.bytes())
                .get::<String>("tenant")
                .unwrap()
                .as_deref(),
            Some("acme")
        );
    }
}

#[test]
fn a_secret_forwarded_by_name_is_sent_and_only_that_one() {
    for parent in [
        with_secrets(),
        Context::decode(with_secrets().encode().bytes()),
    ] {
        let out = parent
            .child()
            .forward_secret(&parent, "db_password")
            .forward_secret(&parent, "no_such_entry");
        assert_eq!(out.sent_secret_names().collect::<Vec<_>>(), ["db_password"]);
        assert!(out.carries_secret());
        let enc = out.encode();
        assert!(enc.carries_secret());
        let there = Context::decode(enc.bytes());
        assert_eq!(there.secret_names().collect::<Vec<_>>(), ["db_password"]);
        assert_eq!(
            there
                .secret::<String>("db_password")
                .unwrap()
                .unwrap()
                .expose(),
            "pw"
        );
    }
}

#[test]
fn a_secret_inserted_on_a_received_context_is_sent() {
    let mut received = Context::decode(with_secrets().encode().bytes());
    received
        .insert_secret("own", &Secret::new("mine".to_owned()))
        .unwrap();
    let there = Context::decode(received.encode().bytes());
    assert_eq!(there.secret_names().collect::<Vec<_>>(), ["own"]);
}

#[test]
fn decoding_keeps_bounded_counts_and_the_first_of_duplicate_keys() {
    const MAX_CORRELATION_IDS: usize = Context::MAX_CORRELATION_IDS;
    const MAX_ENTRIES: usize = Context::MAX_ENTRIES;
    let mut w = Writer::default();
    w.map(5);
    w.str("request_id").str("first");
    w.str("request_id").str("second");
    w.str("corr_ids").array(MAX_CORRELATION_IDS + 10);
    for i in 0..MAX_CORRELATION_IDS + 10 {
        w.str(&format!("c{i}"));
    }
    w.str("custom").map(MAX_ENTRIES + 10);
    for i in 0..MAX_ENTRIES + 10 {
        w.str(&format!("k{i}")).uint(i as u64);
    }
    w.str("secret").map(1);
    w.str("s").str("v");
    let ctx = Context::decode(&w.into_bytes());
    assert_eq!(ctx.request_id(), "first");
    assert_eq!(ctx.correlation_ids().len(), MAX_CORRELATION_IDS);
    assert_eq!(ctx.correlation_ids()[0], "c0");
    assert_eq!(ctx.entry_names().count(), MAX_ENTRIES);
    // The budget is shared by custom and secret entries.
    assert_eq!(ctx.secret_names().count(), 0);
}
