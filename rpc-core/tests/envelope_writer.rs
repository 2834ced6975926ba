//! `EnvelopeWriter` (one buffer, body sealed in place) writes exactly the bytes of
//! `encode_envelope` (proptest), and hands itself back when its lengths do not add up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sealrpc_core::wire::{EnvelopeWriter, SignatureItem, encode_envelope};

fn sig(n: usize) -> Vec<SignatureItem> {
    (0..n)
        .map(|i| SignatureItem {
            key_id: format!("sig/control:api/{i}"),
            algorithm: "ed25519-sha256".into(),
            signature: vec![i as u8; 64],
        })
        .collect()
}

/// Body lengths around every MessagePack `bin` length boundary, and some in between.
fn arb_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..300,
        0xff - 20..0xff + 20usize,
        0xffff - 20..0xffff + 20usize,
        0usize..70_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn same_bytes_as_encode_envelope(
        header in proptest::collection::vec(any::<u8>(), 0..300),
        len in arb_len(),
        tag in proptest::option::of(any::<[u8; 16]>()),
        sigs in 0usize..3,
    ) {
        let body: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let tag_len = tag.map_or(0, |t| t.len());
        let mut w = EnvelopeWriter::new(&header, &body, tag_len, sigs > 0);
        prop_assert_eq!(w.header(), &header[..]);
        let (aad, b) = w.body_mut();
        prop_assert_eq!(aad, &header[..]);
        prop_assert_eq!(&*b, &body[..]);
        let mut wire_body = body.clone();
        if let Some(t) = tag {
            w.push_tag(&t);
            wire_body.extend_from_slice(&t);
        }
        prop_assert_eq!(w.body(), &wire_body[..]);
        let signatures = sig(sigs);
        let got = w.finish(&signatures).map_err(|_| "refused").unwrap();
        prop_assert_eq!(got, encode_envelope(&header, &wire_body, &signatures));
    }
}

#[test]
fn mismatched_lengths_or_signatures_hand_the_writer_back() {
    // A tag shorter than announced.
    let mut w = EnvelopeWriter::new(b"h", b"body", 16, false);
    w.push_tag(&[0; 8]);
    let w = w.finish(&[]).map(|_| ()).unwrap_err();
    assert_eq!(w.body(), b"body\0\0\0\0\0\0\0\0");
    // Announced as signed, finished without signatures (and the other way round).
    assert!(
        EnvelopeWriter::new(b"h", b"b", 0, true)
            .finish(&[])
            .is_err()
    );
    assert!(
        EnvelopeWriter::new(b"h", b"b", 0, false)
            .finish(&sig(1))
            .is_err()
    );
}
