//! The `notify` kind and the notification body on the wire (docs/wire-format.md §4.3):
//! pinned bytes, the decode rules, and property tests (round trip; no input panics).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use proptest::prelude::*;
use sealrpc_core::wire::{CodecError, Header, Kind, MessageId, NotificationBody};

/// `{event_type: "e", publisher_id: "p", payload: 1, ctx: {}}`, written by hand from §4.3.
const PINNED_BODY: &str = concat!(
    "84",
    "aa",
    "6576656e745f74797065",
    "a1",
    "65", // "event_type": "e"
    "ac",
    "7075626c69736865725f6964",
    "a1",
    "70", // "publisher_id": "p"
    "a7",
    "7061796c6f6164",
    "01", // "payload": 1
    "a3",
    "637478",
    "80", // "ctx": {}
);

fn map(entries: &[(&str, &[u8])]) -> Bytes {
    let mut out = vec![0x80 | entries.len() as u8];
    for (k, v) in entries {
        out.push(0xa0 | k.len() as u8);
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v);
    }
    Bytes::from(out)
}

const E: &[u8] = b"\xa1e";
const P: &[u8] = b"\xa1p";
const CTX: &[u8] = b"\x80";

#[test]
fn the_body_encodes_to_the_pinned_bytes() {
    let body = NotificationBody::encode("e", "p", &[0x01], &[0x80]);
    assert_eq!(hex::encode(&body), PINNED_BODY);
    let decoded = NotificationBody::decode(&Bytes::from(body)).unwrap();
    assert_eq!(
        (decoded.event_type.as_str(), decoded.publisher_id.as_str()),
        ("e", "p")
    );
    assert_eq!(
        (&decoded.payload[..], &decoded.ctx[..]),
        (&[0x01][..], &[0x80][..])
    );
}

#[test]
fn the_header_kind_is_notify() {
    let h = Header {
        id: MessageId([7; 16]),
        kind: Kind::Notify,
        ts: 1,
        ttl: None,
        src: "guest:g".into(),
        dst: "notifications.info".into(),
        corr: None,
        reply: None,
        seal: None,
    };
    let bytes = h.encode();
    // "kind": "notify"
    assert!(hex::encode(&bytes).contains("a46b696e64a66e6f74696679"));
    assert_eq!(Header::decode(&bytes).unwrap(), h);
    // An unknown kind stays malformed (what a receiver older than `notify` does with it).
    let other = hex::encode(&bytes).replace("a66e6f74696679", "a66e6f74696365"); // "notice"
    assert!(matches!(
        Header::decode(&hex::decode(other).unwrap()),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn decode_rules() {
    let ok = |b: Bytes| NotificationBody::decode(&b);
    // payload absent: nil; unknown keys skipped.
    let n = ok(map(&[
        ("event_type", E),
        ("publisher_id", P),
        ("ctx", CTX),
        ("zz", b"\x01"),
    ]))
    .unwrap();
    assert_eq!(&n.payload[..], &[0xc0]);
    // ctx is required and a map.
    assert!(ok(map(&[("event_type", E), ("publisher_id", P)])).is_err());
    assert!(
        ok(map(&[
            ("event_type", E),
            ("publisher_id", P),
            ("ctx", b"\x01")
        ]))
        .is_err()
    );
    // event_type and publisher_id: required, str, non-empty.
    assert!(ok(map(&[("publisher_id", P), ("ctx", CTX)])).is_err());
    assert!(
        ok(map(&[
            ("event_type", b"\xa0"),
            ("publisher_id", P),
            ("ctx", CTX)
        ]))
        .is_err()
    );
    assert!(
        ok(map(&[
            ("event_type", E),
            ("publisher_id", b"\xc4\x01p"),
            ("ctx", CTX)
        ]))
        .is_err()
    );
    // a duplicate known key, and a non-str key inside payload.
    assert!(
        ok(map(&[
            ("event_type", E),
            ("event_type", E),
            ("publisher_id", P),
            ("ctx", CTX)
        ]))
        .is_err()
    );
    let int_key = b"\x81\x00\x01";
    assert!(matches!(
        ok(map(&[
            ("event_type", E),
            ("publisher_id", P),
            ("payload", int_key),
            ("ctx", CTX)
        ])),
        Err(CodecError::NonStringKey(_))
    ));
    // trailing bytes
    let mut t = NotificationBody::encode("e", "p", &[0x01], &[0x80]);
    t.push(0xc0);
    assert!(ok(Bytes::from(t)).is_err());
}

proptest! {
    #[test]
    fn round_trip(event in "[a-z.*]{1,40}", publisher in "[ -~]{1,40}", n in any::<u32>()) {
        let payload = rmp_serde::to_vec(&n).unwrap();
        let body = NotificationBody::encode(&event, &publisher, &payload, &[0x80]);
        let d = NotificationBody::decode(&Bytes::from(body)).unwrap();
        prop_assert_eq!(d.event_type, event);
        prop_assert_eq!(d.publisher_id, publisher);
        prop_assert_eq!(&d.payload[..], &payload[..]);
    }

    #[test]
    fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = NotificationBody::decode(&Bytes::from(bytes));
    }
}
