//! `EnvelopeWriter` writes the header and the body map straight into one buffer (the body
//! then sealed in place). Its bytes are exactly those of the encode functions and
//! `encode_envelope`, and of an independent encoder (rmp), for arbitrary headers and
//! bodies (proptest); and it hands itself back when its lengths do not add up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use proptest::prelude::*;
use sealrpc_core::Version;
use sealrpc_core::wire::{
    Body, EnvelopeRef, EnvelopeWriter, ErrorBody, Header, Kind, Limits, MessageId,
    NotificationBody, ReplyBody, RequestBody, SealInfo, SignatureItem, encode_envelope,
};

fn sig(n: usize) -> Vec<SignatureItem> {
    (0..n)
        .map(|i| SignatureItem {
            key_id: format!("sig/control:api/{i}"),
            algorithm: "ed25519-sha256".into(),
            signature: vec![i as u8; 64],
        })
        .collect()
}

/// Lengths around every MessagePack `str`/`bin` length boundary, and some in between.
fn arb_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..300,
        0xff - 20..0xff + 20usize,
        0xffff - 40..0xffff + 20usize,
        0usize..70_000,
    ]
}

/// Text of lengths around the `str` length boundaries (31, 255), some of it not ASCII.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z._:0-9-]{1,40}", ".{1,80}", "[a-z]{250,260}"]
}

/// `{"data": bin(len)}`: one encoded map, as a client's `args` or a handler's result.
fn data_map(len: usize) -> Bytes {
    let mut out = Vec::new();
    rmp::encode::write_map_len(&mut out, 1).unwrap();
    rmp::encode::write_str(&mut out, "data").unwrap();
    rmp::encode::write_bin(&mut out, &vec![0xa5; len]).unwrap();
    Bytes::from(out)
}

fn arb_value() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::from_static(&[0xc0])),
        arb_len().prop_map(data_map)
    ]
}

fn ctx() -> Bytes {
    Bytes::from_static(b"\x81\xaarequest_id\xa3r-1")
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 16]>(),
        prop_oneof![
            Just(Kind::Call),
            Just(Kind::Cast),
            Just(Kind::Reply),
            Just(Kind::Fanout),
            Just(Kind::Notify)
        ],
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        (arb_text(), arb_text()),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of(arb_text()),
        proptest::option::of(("[a-z0-9/:]{1,60}", any::<[u8; 24]>())),
    )
        .prop_map(
            |(id, kind, ts, ttl, (src, dst), corr, reply, seal)| Header {
                id: MessageId(id),
                kind,
                ts,
                ttl,
                src,
                dst,
                corr: corr.map(MessageId),
                reply,
                seal: seal.map(|(key_id, nonce)| SealInfo { key_id, nonce }),
            },
        )
}

fn arb_body() -> impl Strategy<Value = Body> {
    let request = (
        arb_text(),
        any::<(u32, u32)>(),
        proptest::option::of(arb_text()),
        arb_len(),
        proptest::option::of(1u64..),
    )
        .prop_map(|(method, (major, minor), namespace, len, monitor)| {
            Body::Request(RequestBody {
                method,
                version: Version::new(major, minor),
                namespace,
                args: data_map(len),
                ctx: ctx(),
                monitor,
            })
        });
    let reply = prop_oneof![
        arb_value().prop_map(ReplyBody::Ok),
        // (A nil `data` reads back as absent: not generated, to compare round trips.)
        (
            arb_text(),
            arb_text(),
            proptest::option::of(arb_len().prop_map(data_map))
        )
            .prop_map(|(code, msg, data)| ReplyBody::Err(ErrorBody { code, msg, data })),
        Just(ReplyBody::Heartbeat),
    ]
    .prop_map(Body::Reply);
    let notification =
        (arb_text(), arb_text(), arb_value()).prop_map(|(event_type, publisher_id, payload)| {
            Body::Notification(NotificationBody {
                event_type,
                publisher_id,
                payload,
                ctx: ctx(),
            })
        });
    prop_oneof![request, reply, notification]
}

/// The body as the encode functions write it (a request's `monitor` has none: it is
/// appended here as the last key, where the map puts it).
fn encode_functions(body: &Body) -> Vec<u8> {
    match body {
        Body::Request(r) => {
            let mut out = RequestBody::encode(
                &r.method,
                r.version,
                r.namespace.as_deref(),
                &r.args,
                &r.ctx,
            );
            if let Some(ms) = r.monitor {
                out[0] += 1;
                rmp::encode::write_str(&mut out, "monitor").unwrap();
                rmp::encode::write_uint(&mut out, ms).unwrap();
            }
            out
        }
        Body::Reply(r) => r.encode(),
        Body::Notification(n) => {
            NotificationBody::encode(&n.event_type, &n.publisher_id, &n.payload, &n.ctx)
        }
    }
}

/// The body as an independent encoder writes it (rmp: most compact forms, `str` for text).
fn rmp_body(body: &Body) -> Vec<u8> {
    use rmp::encode::{write_map_len, write_str, write_uint};
    let mut out = Vec::new();
    match body {
        Body::Request(r) => {
            let n = 4 + u32::from(r.namespace.is_some()) + u32::from(r.monitor.is_some());
            write_map_len(&mut out, n).unwrap();
            write_str(&mut out, "method").unwrap();
            write_str(&mut out, &r.method).unwrap();
            write_str(&mut out, "ver").unwrap();
            write_str(&mut out, &r.version.to_string()).unwrap();
            if let Some(ns) = &r.namespace {
                write_str(&mut out, "ns").unwrap();
                write_str(&mut out, ns).unwrap();
            }
            write_str(&mut out, "args").unwrap();
            out.extend_from_slice(&r.args);
            write_str(&mut out, "ctx").unwrap();
            out.extend_from_slice(&r.ctx);
            if let Some(ms) = r.monitor {
                write_str(&mut out, "monitor").unwrap();
                write_uint(&mut out, ms).unwrap();
            }
        }
        Body::Reply(ReplyBody::Ok(v)) => {
            write_map_len(&mut out, 1).unwrap();
            write_str(&mut out, "ok").unwrap();
            out.extend_from_slice(v);
        }
        Body::Reply(ReplyBody::Err(e)) => {
            write_map_len(&mut out, 1).unwrap();
            write_str(&mut out, "err").unwrap();
            write_map_len(&mut out, 2 + u32::from(e.data.is_some())).unwrap();
            write_str(&mut out, "code").unwrap();
            write_str(&mut out, &e.code).unwrap();
            write_str(&mut out, "msg").unwrap();
            write_str(&mut out, &e.msg).unwrap();
            if let Some(d) = &e.data {
                write_str(&mut out, "data").unwrap();
                out.extend_from_slice(d);
            }
        }
        Body::Reply(ReplyBody::Heartbeat) => {
            write_map_len(&mut out, 1).unwrap();
            write_str(&mut out, "hb").unwrap();
            rmp::encode::write_bool(&mut out, true).unwrap();
        }
        Body::Notification(n) => {
            write_map_len(&mut out, 4).unwrap();
            for (k, v) in [
                ("event_type", &n.event_type),
                ("publisher_id", &n.publisher_id),
            ] {
                write_str(&mut out, k).unwrap();
                write_str(&mut out, v).unwrap();
            }
            write_str(&mut out, "payload").unwrap();
            out.extend_from_slice(&n.payload);
            write_str(&mut out, "ctx").unwrap();
            out.extend_from_slice(&n.ctx);
        }
    }
    out
}

/// The body decoded back, as a receiver reads it.
fn decoded(body: &Body, plain: &[u8]) -> Body {
    let plain = Bytes::copy_from_slice(plain);
    match body {
        Body::Request(_) => Body::Request(RequestBody::decode(&plain).unwrap()),
        Body::Reply(_) => Body::Reply(ReplyBody::decode(&plain).unwrap()),
        Body::Notification(_) => Body::Notification(NotificationBody::decode(&plain).unwrap()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn same_bytes_as_the_encode_functions_and_encode_envelope(
        header in arb_header(),
        body in arb_body(),
        tag in proptest::option::of(any::<[u8; 16]>()),
        sigs in 0usize..3,
    ) {
        let h = header.encode();
        let b = encode_functions(&body);
        prop_assert_eq!(&b, &rmp_body(&body), "an independent encoder disagrees");
        prop_assert_eq!(body.encode(), b.clone());
        prop_assert_eq!(body.encoded_len(), b.len());

        let tag_len = tag.map_or(0, |t| t.len());
        let mut w = EnvelopeWriter::new(&header, &body, tag_len, sigs > 0);
        prop_assert_eq!(w.header(), &h[..]);
        let (aad, in_place) = w.body_mut();
        prop_assert_eq!(aad, &h[..]);
        prop_assert_eq!(&*in_place, &b[..]);
        let mut wire_body = b.clone();
        if let Some(t) = tag {
            w.push_tag(&t);
            wire_body.extend_from_slice(&t);
        }
        prop_assert_eq!(w.body(), &wire_body[..]);
        let signatures = sig(sigs);
        let got = w.finish(&signatures).map_err(|_| "refused").unwrap();
        prop_assert_eq!(&got, &encode_envelope(&h, &wire_body, &signatures));

        // And a receiver reads back what was written.
        let env = EnvelopeRef::decode(&got, &Limits { max_envelope: usize::MAX, ..Limits::default() })
            .unwrap();
        prop_assert_eq!(env.signatures, signatures);
        if tag.is_none() {
            prop_assert_eq!(decoded(&body, env.body), body);
        }
    }
}

fn small_request() -> Body {
    Body::Request(RequestBody {
        method: "m".into(),
        version: Version::new(1, 0),
        namespace: None,
        args: Bytes::from_static(b"\x80"),
        ctx: Bytes::from_static(b"\x80"),
        monitor: None,
    })
}

#[test]
fn mismatched_lengths_or_signatures_hand_the_writer_back() {
    let header = Header::cast(MessageId([1; 16]), "conductor".into(), None);
    let body = small_request();
    let b = body.encode();
    // A tag shorter than announced.
    let mut w = EnvelopeWriter::new(&header, &body, 16, false);
    w.push_tag(&[0; 8]);
    let w = w.finish(&[]).map(|_| ()).unwrap_err();
    assert_eq!(w.body(), [&b[..], &[0; 8]].concat());
    // Announced as signed, finished without signatures (and the other way round).
    assert!(
        EnvelopeWriter::new(&header, &body, 0, true)
            .finish(&[])
            .is_err()
    );
    assert!(
        EnvelopeWriter::new(&header, &body, 0, false)
            .finish(&sig(1))
            .is_err()
    );
}
