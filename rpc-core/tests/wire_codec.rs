//! Envelope, header and body codec: round trips, strictness rules, and robustness on
//! arbitrary, truncated and bit-flipped input (proptest).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use proptest::prelude::*;
use sealrpc_core::Version;
use sealrpc_core::wire::{
    CodecError, EnvelopeRef, Header, Kind, Limits, MessageId, ReplyBody, RequestBody, SealInfo,
    SignatureItem, encode_envelope,
};

fn header(kind: Kind, seal: bool) -> Header {
    Header {
        id: MessageId([7; 16]),
        kind,
        ts: 1_763_900_000_000,
        ttl: Some(30_000),
        src: "control:api".into(),
        dst: "conductor".into(),
        corr: (kind == Kind::Reply).then_some(MessageId([9; 16])),
        reply: (kind == Kind::Call).then(|| "reply.control:api".into()),
        seal: seal.then(|| SealInfo {
            key_id: "k1/control/1".into(),
            nonce: [3; 24],
        }),
    }
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 16]>(),
        prop_oneof![
            Just(Kind::Call),
            Just(Kind::Cast),
            Just(Kind::Reply),
            Just(Kind::Fanout)
        ],
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        "[a-z:0-9-]{1,40}",
        "[a-z._0-9-]{1,60}",
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of("[a-z._:0-9-]{1,40}"),
        proptest::option::of(("[a-z0-9/:]{1,60}", any::<[u8; 24]>())),
    )
        .prop_map(|(id, kind, ts, ttl, src, dst, corr, reply, seal)| Header {
            id: MessageId(id),
            kind,
            ts,
            ttl,
            src,
            dst,
            corr: corr.map(MessageId),
            reply,
            seal: seal.map(|(key_id, nonce)| SealInfo { key_id, nonce }),
        })
}

/// A header with what its kind requires (`corr` on replies, `reply` on calls).
fn arb_complete_header() -> impl Strategy<Value = Header> {
    arb_header().prop_map(|mut h| {
        match h.kind {
            Kind::Reply => h.corr = h.corr.or(Some(MessageId([1; 16]))),
            Kind::Call => h.reply = h.reply.or_else(|| Some("reply.x".into())),
            _ => {}
        }
        h
    })
}

#[test]
fn header_round_trips_and_is_compact() {
    for kind in [Kind::Call, Kind::Cast, Kind::Reply, Kind::Fanout] {
        let h = header(kind, true);
        let bytes = h.encode();
        assert_eq!(Header::decode(&bytes).unwrap(), h);
    }
    // Most compact integers: ts = 1763900000000 needs a uint64 (0xcf).
    let bytes = header(Kind::Cast, false).encode();
    let ts_at = bytes.windows(3).position(|w| w == b"\xa2ts").unwrap();
    assert_eq!(bytes[ts_at + 3], 0xcf);
}

#[test]
fn envelope_round_trips_with_signatures() {
    let h = header(Kind::Call, false).encode();
    let sigs = vec![
        SignatureItem {
            key_id: "sig/control:api/1".into(),
            algorithm: "ed25519-sha256".into(),
            signature: vec![1; 64],
        },
        SignatureItem {
            key_id: "sig/control:api/1".into(),
            algorithm: "ml-dsa-65".into(),
            signature: vec![2; 3309],
        },
    ];
    let bytes = encode_envelope(&h, b"\x80", &sigs);
    let env = EnvelopeRef::decode(&bytes, &Limits::default()).unwrap();
    assert_eq!(env.header, &h[..]);
    assert_eq!(env.body, b"\x80");
    assert_eq!(env.signatures, sigs);
}

#[test]
fn strictness_rules() {
    let limits = Limits::default();
    let ok = encode_envelope(b"\x80", b"\x80", &[]);
    assert!(EnvelopeRef::decode(&ok, &limits).is_ok());
    // trailing bytes
    let mut trailing = ok.clone();
    trailing.push(0xc0);
    assert_eq!(
        EnvelopeRef::decode(&trailing, &limits),
        Err(CodecError::TrailingBytes("envelope"))
    );
    // array where the map belongs: [1, h, b]
    let arr = [0x93, 0x01, 0xc4, 0x01, 0x80, 0xc4, 0x01, 0x80];
    assert_eq!(
        EnvelopeRef::decode(&arr, &limits),
        Err(CodecError::NotAMap("envelope"))
    );
    // v missing, v = 0, v = 2, v as bool, v as a negative-width non-negative int (accepted)
    let env = |v: &[u8]| {
        let mut e = vec![0x83, 0xa1, b'v'];
        e.extend_from_slice(v);
        e.extend_from_slice(&[0xa1, b'h', 0xc4, 0x01, 0x80, 0xa1, b'b', 0xc4, 0x00]);
        e
    };
    assert!(EnvelopeRef::decode(&env(&[0x01]), &limits).is_ok());
    assert!(
        EnvelopeRef::decode(&env(&[0xd0, 0x01]), &limits).is_ok(),
        "int8 1 is a non-negative integer"
    );
    assert!(EnvelopeRef::decode(&env(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 1]), &limits).is_ok());
    assert!(matches!(
        EnvelopeRef::decode(&env(&[0x00]), &limits),
        Err(CodecError::Malformed(_))
    ));
    assert_eq!(
        EnvelopeRef::decode(&env(&[0x02]), &limits),
        Err(CodecError::UnsupportedEnvelope(2))
    );
    assert_eq!(
        EnvelopeRef::decode(&env(&[0xc3]), &limits),
        Err(CodecError::WrongType("v"))
    );
    assert_eq!(
        EnvelopeRef::decode(&env(&[0xca, 0x3f, 0x80, 0, 0]), &limits),
        Err(CodecError::WrongType("v"))
    );
    assert_eq!(
        EnvelopeRef::decode(&env(&[0xc0]), &limits),
        Err(CodecError::MissingKey("v"))
    );
    // h as str instead of bin
    let str_h = [
        0x83, 0xa1, b'v', 0x01, 0xa1, b'h', 0xa1, 0x80, 0xa1, b'b', 0xc4, 0x00,
    ];
    assert!(EnvelopeRef::decode(&str_h, &limits).is_err());
    // duplicate known key
    let dup = [
        0x84, 0xa1, b'v', 0x01, 0xa1, b'v', 0x01, 0xa1, b'h', 0xc4, 0x01, 0x80, 0xa1, b'b', 0xc4,
        0x00,
    ];
    assert_eq!(
        EnvelopeRef::decode(&dup, &limits),
        Err(CodecError::DuplicateKey("v"))
    );
    // non-string key
    let nskey = [
        0x84, 0x01, 0x01, 0xa1, b'v', 0x01, 0xa1, b'h', 0xc4, 0x01, 0x80, 0xa1, b'b', 0xc4, 0x00,
    ];
    assert_eq!(
        EnvelopeRef::decode(&nskey, &limits),
        Err(CodecError::NonStringKey("envelope"))
    );
    // unknown key holding an ext value is skipped
    let ext = [
        0x84, 0xa1, b'x', 0xd4, 0x05, 0x01, 0xa1, b'v', 0x01, 0xa1, b'h', 0xc4, 0x01, 0x80, 0xa1,
        b'b', 0xc4, 0x00,
    ];
    assert!(EnvelopeRef::decode(&ext, &limits).is_ok());
    // invalid UTF-8 in an unknown key's value
    let bad_utf8 = [
        0x84, 0xa1, b'x', 0xa1, 0xff, 0xa1, b'v', 0x01, 0xa1, b'h', 0xc4, 0x01, 0x80, 0xa1, b'b',
        0xc4, 0x00,
    ];
    assert_eq!(
        EnvelopeRef::decode(&bad_utf8, &limits),
        Err(CodecError::InvalidUtf8)
    );
    // the reserved byte
    let reserved = [
        0x84, 0xa1, b'x', 0xc1, 0xa1, b'v', 0x01, 0xa1, b'h', 0xc4, 0x01, 0x80, 0xa1, b'b', 0xc4,
        0x00,
    ];
    assert!(EnvelopeRef::decode(&reserved, &limits).is_err());
}

#[test]
fn limits_are_checked_before_decoding() {
    let limits = Limits {
        max_envelope: 100,
        ..Limits::default()
    };
    let big = encode_envelope(b"\x80", &[0u8; 200], &[]);
    assert!(matches!(
        EnvelopeRef::decode(&big, &limits),
        Err(CodecError::TooLarge {
            what: "envelope",
            ..
        })
    ));
    let big_header = encode_envelope(&[0x80; 5000], b"", &[]);
    assert!(matches!(
        EnvelopeRef::decode(&big_header, &Limits::default()),
        Err(CodecError::TooLarge { what: "header", .. })
    ));
    let many: Vec<_> = (0..9)
        .map(|_| SignatureItem {
            key_id: "sig/control/1".into(),
            algorithm: "x".into(),
            signature: vec![],
        })
        .collect();
    assert!(matches!(
        EnvelopeRef::decode(&encode_envelope(b"\x80", b"", &many), &Limits::default()),
        Err(CodecError::TooLarge {
            what: "signature list",
            ..
        })
    ));
    let deep = [[0x91u8; 40].as_slice(), &[0xc0]].concat();
    let mut env = vec![0x84, 0xa1, b'x'];
    env.extend_from_slice(&deep);
    env.extend_from_slice(&[
        0xa1, b'v', 0x01, 0xa1, b'h', 0xc4, 0x01, 0x80, 0xa1, b'b', 0xc4, 0x00,
    ]);
    assert_eq!(
        EnvelopeRef::decode(&env, &Limits::default()),
        Err(CodecError::TooDeep)
    );
}

#[test]
fn body_rules() {
    let v = Version::new(1, 3);
    let body = Bytes::from(RequestBody::encode(
        "heartbeat",
        v,
        Some("ns"),
        b"\x81\xa1a\x01",
        b"\x80",
    ));
    let decoded = RequestBody::decode(&body).unwrap();
    assert_eq!(
        (
            decoded.method.as_str(),
            decoded.version,
            decoded.namespace.as_deref()
        ),
        ("heartbeat", v, Some("ns"))
    );
    assert_eq!(&decoded.args[..], b"\x81\xa1a\x01");
    // args absent -> {}; ns "" -> malformed; ver not N.N -> malformed
    let no_args = Bytes::from_static(b"\x83\xa6method\xa1m\xa3ver\xa31.0\xa3ctx\x80");
    assert_eq!(&RequestBody::decode(&no_args).unwrap().args[..], b"\x80");
    let empty_ns = Bytes::from(RequestBody::encode("m", v, Some(""), b"\x80", b"\x80"));
    assert!(RequestBody::decode(&empty_ns).is_err());
    for bad in ["1", "1.", "01.0", "1.0.0", "a.b", "-1.0"] {
        let mut b = b"\x83\xa6method\xa1m\xa3ctx\x80\xa3ver".to_vec();
        b.push(0xa0 | bad.len() as u8);
        b.extend_from_slice(bad.as_bytes());
        assert!(RequestBody::decode(&Bytes::from(b)).is_err(), "{bad}");
    }
    // replies: ok may be nil; exactly one of ok / err
    let ok_nil = Bytes::from(ReplyBody::Ok(Bytes::from_static(b"\xc0")).encode());
    assert_eq!(
        ReplyBody::decode(&ok_nil).unwrap(),
        ReplyBody::Ok(Bytes::from_static(b"\xc0"))
    );
    let both = Bytes::from_static(b"\x82\xa2ok\x01\xa3err\x82\xa4code\xa1x\xa3msg\xa1y");
    assert!(ReplyBody::decode(&both).is_err());
    let neither = Bytes::from_static(b"\x80");
    assert!(ReplyBody::decode(&neither).is_err());
    let err_nil_ok = Bytes::from_static(b"\x82\xa2ok\x01\xa3err\xc0");
    assert!(matches!(
        ReplyBody::decode(&err_nil_ok),
        Ok(ReplyBody::Ok(_))
    ));
}

/// Adds an unknown key with an arbitrary value to an encoded map (the first byte a fixmap).
fn with_unknown_key(map: &[u8], key: &str, value: &[u8]) -> Vec<u8> {
    assert!(map[0] & 0xf0 == 0x80 && map[0] & 0x0f < 15);
    let mut out = vec![map[0] + 1, 0xa0 | key.len() as u8];
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(&map[1..]);
    out
}

proptest! {
    #[test]
    fn header_round_trip(h in arb_header()) {
        // A reply without `corr` and a call without `reply` are malformed; all else returns.
        let want = match h.kind {
            Kind::Reply if h.corr.is_none() => Err(CodecError::MissingKey("corr")),
            Kind::Call if h.reply.is_none() => Err(CodecError::MissingKey("reply")),
            _ => Ok(h.clone()),
        };
        prop_assert_eq!(Header::decode(&h.encode()), want);
    }

    #[test]
    fn unknown_keys_never_change_meaning(h in arb_complete_header(), key in "x-[a-z]{1,8}", value in prop_oneof![
        Just(vec![0xc0]), Just(vec![0x92, 0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0]), Just(vec![0xd4, 0x01, 0x02]),
        Just(vec![0x81, 0xa1, b'k', 0xc4, 0x01, 0x00]), Just(vec![0xc3])
    ]) {
        let plain = h.encode();
        let extended = with_unknown_key(&plain, &key, &value);
        prop_assert_eq!(Header::decode(&extended).unwrap(), h);
        let env = encode_envelope(&extended, b"body", &[]);
        let env_ext = with_unknown_key(&env, &key, &value);
        let decoded = EnvelopeRef::decode(&env_ext, &Limits::default()).unwrap();
        prop_assert_eq!(decoded.header, &extended[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = EnvelopeRef::decode(&bytes, &Limits::default());
        let _ = Header::decode(&bytes);
        let b = Bytes::from(bytes);
        let _ = RequestBody::decode(&b);
        let _ = ReplyBody::decode(&b);
    }

    #[test]
    fn truncations_and_bit_flips_are_errors_not_panics(h in arb_complete_header(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let env = encode_envelope(&h.encode(), &RequestBody::encode("m", Version::new(1, 0), None, b"\x80", b"\x80"), &[]);
        let n = cut.index(env.len());
        prop_assert!(EnvelopeRef::decode(&env[..n], &Limits::default()).is_err());
        let mut flipped = env.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 1 << bit;
        if let Ok(e) = EnvelopeRef::decode(&flipped, &Limits::default()) {
            let _ = Header::decode(e.header);
            let _ = RequestBody::decode(&Bytes::copy_from_slice(e.body));
        }
    }
}
