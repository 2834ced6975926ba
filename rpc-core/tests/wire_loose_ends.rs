//! The spec's loose ends, closed: a reply without `corr` and a call without `reply` are
//! malformed; a guest refuses a unicast sealed under `kb`; a non-`str` key anywhere in
//! `args` is malformed; a signature item of an unknown algorithm is skipped whatever its
//! `k` and `s` hold (only `a` must be a `str`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod forged;
mod msgpack;

use forged::{Msg, now, receiver};
use msgpack::Writer;
use proptest::prelude::*;
use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::{ClassPolicy, Policy, RejectReason};
use sealrpc_core::wire::{CodecError, EnvelopeRef, Header, Kind, Limits, RequestBody};

fn conductor() -> std::sync::Arc<sealrpc_core::security::Security> {
    receiver("control:conductor", Policy::default())
}

fn reason(security: &sealrpc_core::security::Security, bytes: &Bytes) -> Option<RejectReason> {
    security
        .admit_at(bytes, &|_| true, now())
        .err()
        .map(|r| r.reason)
}

// --- corr and reply, per kind -------------------------------------------------------

fn guest_msg(kind: Kind) -> Msg {
    Msg::cast("guest:g1", "conductor")
        .kind(kind)
        .signed("sig/guest:g1/1")
        .sealed("k3/guest:g1/1")
}

#[test]
fn a_reply_without_corr_is_malformed() {
    let m = guest_msg(Kind::Reply);
    let header = Header {
        corr: None,
        ..m.header()
    };
    assert_eq!(
        Header::decode(&header.encode()),
        Err(CodecError::MissingKey("corr"))
    );
    let bytes = m.envelope(&header, &m.body());
    assert_eq!(reason(&conductor(), &bytes), Some(RejectReason::Malformed));
    // With its corr, the same reply is admitted.
    assert_eq!(reason(&conductor(), &m.build()), None);
}

#[test]
fn a_call_without_reply_is_malformed() {
    let m = guest_msg(Kind::Call);
    let header = Header {
        reply: None,
        ..m.header()
    };
    assert_eq!(
        Header::decode(&header.encode()),
        Err(CodecError::MissingKey("reply"))
    );
    let bytes = m.envelope(&header, &m.body());
    assert_eq!(reason(&conductor(), &bytes), Some(RejectReason::Malformed));
    assert_eq!(reason(&conductor(), &m.build()), None);
}

#[test]
fn corr_and_reply_are_optional_on_other_kinds() {
    for kind in [Kind::Cast, Kind::Fanout] {
        let h = Header {
            corr: None,
            reply: None,
            ..guest_msg(kind).header()
        };
        assert_eq!(Header::decode(&h.encode()), Ok(h));
    }
}

// --- kb on unicast ----------------------------------------------------------------

#[test]
fn a_guest_refuses_a_unicast_sealed_under_kb() {
    let policies = [
        Policy::default(),
        Policy::uniform(ClassPolicy::permissive()),
        Policy::uniform(ClassPolicy::off()),
    ];
    for policy in policies {
        let guest = receiver("guest:g1", policy);
        for kind in [Kind::Call, Kind::Cast, Kind::Reply] {
            for signed in [true, false] {
                let mut m = Msg::cast("control:taskmanager", "guestagent.g1")
                    .kind(kind)
                    .sealed("kb/guests/1");
                if signed {
                    m = m.signed("sig/control:taskmanager/1");
                }
                assert_eq!(
                    reason(&guest, &m.build()),
                    Some(RejectReason::WrongDirection),
                    "{kind:?} signed={signed} under {policy:?}"
                );
            }
        }
        // A fanout under kb, signed by the control plane, is what kb is for.
        let fanout = Msg::cast("control:taskmanager", "guestagent_fanout")
            .kind(Kind::Fanout)
            .signed("sig/control:taskmanager/1")
            .sealed("kb/guests/1");
        assert_eq!(reason(&guest, &fanout.build()), None, "{policy:?}");
    }
}

// --- str keys in args ---------------------------------------------------------------

fn body_with_args(args: &[u8]) -> Bytes {
    Bytes::from(RequestBody::encode(
        "m",
        sealrpc_core::Version::new(1, 0),
        None,
        args,
        b"\x80",
    ))
}

#[test]
fn a_non_str_key_anywhere_in_args_is_malformed() {
    let cases: [&[u8]; 6] = [
        b"\x81\x01\xa1x",                          // {1: "x"}
        b"\x81\xa1a\x81\x00\xc0",                  // {"a": {0: nil}}
        b"\x81\xa1a\x92\x01\x81\xc3\x01",          // {"a": [1, {true: 1}]}
        b"\x81\xa1a\x81\xa1b\x81\xc4\x01k\x02",    // {"a": {"b": {bin "k": 2}}}
        b"\x81\xa1a\x81\xa1b\x91\x81\xd0\xff\x00", // {"a": {"b": [{-1: 0}]}}
        b"\x81\xc0\x01",                           // {nil: 1}
    ];
    for args in cases {
        assert_eq!(
            RequestBody::decode(&body_with_args(args)),
            Err(CodecError::NonStringKey("args")),
            "{args:02x?}"
        );
        let m = Msg {
            args: args.to_vec(),
            ..guest_msg(Kind::Cast)
        };
        assert_eq!(
            reason(&conductor(), &m.build()),
            Some(RejectReason::Malformed)
        );
    }
}

#[test]
fn str_keys_at_every_depth_and_other_levels_stay_accepted() {
    // {"a": {"b": [1, {"c": bin}]}, "d": []}
    let args = b"\x82\xa1a\x81\xa1b\x92\x01\x81\xa1c\xc4\x00\xa1d\x90";
    assert!(RequestBody::decode(&body_with_args(args)).is_ok());
    // An unknown body key may hold any value, integer-keyed maps included.
    let mut w = Writer::default();
    w.map(5).str("method").str("m").str("ver").str("1.0");
    w.str("args").map(0).str("ctx").map(0);
    w.str("x-future").map(1).uint(1).uint(2);
    assert!(RequestBody::decode(&Bytes::from(w.into_bytes())).is_ok());
}

/// A MessagePack value with `str` keys only, nested.
fn arb_value() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(|v| {
            let mut w = Writer::default();
            w.uint(v);
            w.into_bytes()
        }),
        "[a-z]{0,6}".prop_map(|s| {
            let mut w = Writer::default();
            w.str(&s);
            w.into_bytes()
        }),
        Just(vec![0xc0]),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                let mut w = Writer::default();
                w.array(items.len());
                for i in &items {
                    w.raw(i);
                }
                w.into_bytes()
            }),
            proptest::collection::vec(("[a-z]{1,4}", inner), 0..4).prop_map(|entries| {
                let mut w = Writer::default();
                w.map(entries.len());
                for (k, v) in &entries {
                    w.str(k).raw(v);
                }
                w.into_bytes()
            }),
        ]
    })
}

/// Positions of the key strings of every fixmap inside `value` (keys are fixstr here).
fn key_positions(value: &[u8]) -> Vec<usize> {
    fn walk(buf: &[u8], pos: &mut usize, out: &mut Vec<usize>) {
        let m = buf[*pos];
        *pos += 1;
        match m {
            0x80..=0x8f => {
                for _ in 0..(m & 0x0f) {
                    out.push(*pos);
                    walk(buf, pos, out);
                    walk(buf, pos, out);
                }
            }
            0x90..=0x9f => {
                for _ in 0..(m & 0x0f) {
                    walk(buf, pos, out);
                }
            }
            0xa0..=0xbf => *pos += usize::from(m & 0x1f),
            0xcc => *pos += 1,
            0xcd => *pos += 2,
            0xce => *pos += 4,
            0xcf => *pos += 8,
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut 0, &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn args_are_accepted_exactly_when_every_key_is_a_str(
        value in arb_value(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut w = Writer::default();
        w.map(1).str("v").raw(&value);
        let args = w.into_bytes();
        prop_assert!(RequestBody::decode(&body_with_args(&args)).is_ok());
        // Replace one key (a fixstr "k..") by an integer of the same length: 0xa1 'x' ->
        // 0xcc 'x' (uint8), so the rest of the value is untouched.
        let keys: Vec<usize> = key_positions(&args)
            .into_iter()
            .filter(|p| args[*p] == 0xa1)
            .collect();
        if !keys.is_empty() {
            let mut bad = args.clone();
            bad[keys[pick.index(keys.len())]] = 0xcc;
            prop_assert_eq!(
                RequestBody::decode(&body_with_args(&bad)),
                Err(CodecError::NonStringKey("args"))
            );
        }
    }
}

// --- signature items of unknown algorithms -------------------------------------------

/// `m`'s envelope with one more signature item, written as `item` (raw map bytes), first.
fn with_item(m: &Msg, item: &[u8]) -> Bytes {
    let bytes = m.build();
    let env = EnvelopeRef::decode(&bytes, &Limits::default()).unwrap();
    let mut w = Writer::default();
    w.map(4)
        .str("v")
        .uint(1)
        .str("h")
        .bin(env.header)
        .str("b")
        .bin(env.body);
    w.str("sig").array(1 + env.signatures.len()).raw(item);
    for s in &env.signatures {
        w.map(3).str("k").str(&s.key_id).str("a").str(&s.algorithm);
        w.str("s").bin(&s.signature);
    }
    Bytes::from(w.into_bytes())
}

fn item(k: Option<&[u8]>, a: &[u8], s: Option<&[u8]>) -> Vec<u8> {
    let mut w = Writer::default();
    w.map(1 + usize::from(k.is_some()) + usize::from(s.is_some()));
    if let Some(k) = k {
        w.str("k").raw(k);
    }
    w.str("a").raw(a);
    if let Some(s) = s {
        w.str("s").raw(s);
    }
    w.into_bytes()
}

const FUTURE_ALG: &[u8] = b"\xb1slh-dsa-sha2-128s";
const TOY_ALG: &[u8] = b"\xaatoy-sha256";

/// An item's `k` and `s`, as raw values (`None`: absent).
type Shape = (Option<&'static [u8]>, Option<&'static [u8]>);

fn odd_shapes() -> Vec<Shape> {
    let key: &[u8] = b"\xa3k/x";
    let sig: &[u8] = b"\xc4\x02\x01\x02";
    vec![
        (Some(b"\x07"), Some(sig)),                     // k an integer
        (Some(b"\xc4\x01k"), Some(sig)),                // k a bin
        (None, Some(sig)),                              // k absent
        (Some(b"\xc0"), Some(sig)),                     // k nil
        (Some(key), Some(b"\xa2no")),                   // s a str
        (Some(key), None),                              // s absent
        (Some(key), Some(b"\x92\x01\x02")),             // s an array
        (Some(b"\x81\x01\x02"), Some(b"\xd4\x01\x02")), // both odd (a map, an ext)
    ]
}

#[test]
fn an_unknown_algorithm_item_is_skipped_whatever_its_k_and_s() {
    let m = guest_msg(Kind::Cast);
    for (k, s) in odd_shapes() {
        let bytes = with_item(&m, &item(k, FUTURE_ALG, s));
        let env = EnvelopeRef::decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(env.opaque_signatures, vec!["slh-dsa-sha2-128s"]);
        let security = conductor();
        let a = security.admit_at(&bytes, &|_| true, now()).unwrap();
        assert_eq!(
            a.principal.unwrap().as_str(),
            "guest:g1",
            "{k:02x?} {s:02x?}"
        );
        assert_eq!(security.counters().skipped_unknown_algorithm, 1);
    }
}

#[test]
fn a_known_algorithm_item_of_the_wrong_shape_is_a_bad_signature() {
    let m = guest_msg(Kind::Cast);
    for (k, s) in odd_shapes() {
        let bytes = with_item(&m, &item(k, TOY_ALG, s));
        assert_eq!(
            reason(&conductor(), &bytes),
            Some(RejectReason::BadSignature),
            "{k:02x?} {s:02x?}"
        );
    }
}

#[test]
fn an_item_without_a_str_algorithm_is_malformed() {
    let m = guest_msg(Kind::Cast);
    let key: &[u8] = b"\xa3k/x";
    let sig: &[u8] = b"\xc4\x02\x01\x02";
    for a in [&b"\x01"[..], b"\xc4\x01a", b"\xc0"] {
        let bytes = with_item(&m, &item(Some(key), a, Some(sig)));
        assert!(EnvelopeRef::decode(&bytes, &Limits::default()).is_err());
        assert_eq!(reason(&conductor(), &bytes), Some(RejectReason::Malformed));
    }
    // An item that is not a map at all.
    let bytes = with_item(&m, b"\x01");
    assert_eq!(reason(&conductor(), &bytes), Some(RejectReason::Malformed));
}
