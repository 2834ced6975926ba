//! Targets (address and peer mapping) and payload helpers (args must be maps; error
//! messages redact values).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealrpc_core::payload::{encode_args, encode_value, redact};
use sealrpc_core::security::Peer;
use sealrpc_core::transport::Address;
use sealrpc_core::{Context, Secret};
use sealrpc_core::{Target, Version};

#[test]
fn target_addresses_and_peers() {
    let t = Target::new("conductor");
    assert_eq!(t.address(), Address::Topic("conductor".into()));
    assert_eq!(t.effective_peer(), Peer::ControlPlane);
    assert_eq!(t.version, Version::new(1, 0));

    let s = Target::new("conductor")
        .server("host-1")
        .namespace("ns")
        .version(Version::new(2, 3));
    assert_eq!(
        s.address(),
        Address::Server {
            topic: "conductor".into(),
            server: "host-1".into()
        }
    );
    assert_eq!(s.address().dst(), "conductor.host-1");
    assert_eq!(s.namespace.as_deref(), Some("ns"));

    let g = Target::guest("guestagent", "7f3a");
    assert_eq!(g.address().dst(), "guestagent.7f3a");
    assert_eq!(g.effective_peer(), Peer::Guest("7f3a".into()));

    let f = Target::new("guestagent").fanout(true);
    assert_eq!(f.address(), Address::Fanout("guestagent".into()));
    assert_eq!(f.effective_peer(), Peer::Guests);
    let f = f.peer(Peer::ControlPlane);
    assert_eq!(f.effective_peer(), Peer::ControlPlane);
}

#[test]
fn args_are_maps() {
    #[derive(serde::Serialize)]
    struct A {
        x: u8,
    }
    assert_eq!(encode_args(&()).unwrap().bytes(), [0x80]);
    assert_eq!(encode_args(&None::<A>).unwrap().bytes(), [0x80]);
    assert_eq!(
        encode_args(&A { x: 1 }).unwrap().bytes(),
        [0x81, 0xa1, b'x', 1]
    );
    let map: std::collections::BTreeMap<String, u8> = [("k".to_owned(), 1)].into();
    assert!(encode_args(&map).is_ok());
    assert!(encode_args(&7u32).is_err());
    assert!(encode_args(&(1, 2)).is_err());
    assert!(encode_args("text").is_err());
}

#[test]
fn redaction_keeps_field_names_only() {
    assert_eq!(
        redact(&r#"invalid type: string "hunter2", expected u32"#),
        r#"invalid type: string "…", expected u32"#
    );
    assert_eq!(
        redact(&"missing field `password`"),
        "missing field `password`"
    );
    assert_eq!(
        redact(&"invalid value: integer `42`, expected x"),
        "invalid value: integer `…`, expected x"
    );
    assert_eq!(
        redact(&"char 'x' and unterminated \"abc"),
        "char '…' and unterminated \"…\""
    );
}

#[test]
fn encoded_payloads_and_contexts_are_shared_not_copied_by_a_clone() {
    // A retry layer clones its request: the 64 KiB payload must not be copied.
    let big = serde_bytes::ByteBuf::from(vec![7u8; 64 * 1024]);
    let args = encode_value(&big, "args").unwrap();
    let again = args.clone();
    assert_eq!(args.bytes().as_ptr(), again.bytes().as_ptr());
    assert_eq!(args.bytes(), again.bytes());

    let mut ctx = Context::new();
    ctx.insert_secret("token", &Secret::new("s3cret".to_owned()))
        .unwrap();
    let enc = ctx.encode();
    assert!(enc.carries_secret());
    let shared = enc.clone();
    assert_eq!(enc.bytes().as_ptr(), shared.bytes().as_ptr());
    drop(enc);
    // The last clone still reads the secret-bearing map (it is wiped only when it goes).
    assert!(shared.bytes().windows(6).any(|w| w == b"s3cret"));
}
