//! Opening a sealed body where it lies: the receive pipeline decrypts inside the envelope
//! received when it holds the only reference to it, else into a buffer of its own, with the
//! same verdicts; a failed open leaves nothing of a plaintext behind; and the default
//! `Opener::open_in_place` (through `open`) behaves as the in-place one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::ops::Range;
use std::sync::Arc;

use sealrpc_core::Version;
use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::{
    Admitted, AdmittedBody, ClassPolicy, KeyError, Opener, Outbound, Peer, Policy, RejectReason,
    Security,
};
use sealrpc_core::wire::{EnvelopeRef, Header, KeyId, Limits, MessageId, RequestBody};
use sealrpc_signers::xchacha::{TAG_LEN, open_in_place_with, seal_with};
use sealrpc_signers::{
    ControlPlaneKeys, GuestKeys, MasterSecret, RotationTable, SecretKey, XChaChaOpener,
};

const A: &str = "7f3a0c2e";
/// What the call's `args` hold: a 5 KiB `{"data": bin}` map, recognizable in memory.
const MARK: u8 = 0x5a;

fn args() -> Bytes {
    let mut out = vec![0x81, 0xa4, b'd', b'a', b't', b'a', 0xc5, 0x14, 0x00];
    out.extend(std::iter::repeat_n(MARK, 0x1400));
    Bytes::from(out)
}

struct Nodes {
    api: Arc<Security>,
    guest: Arc<Security>,
}

/// The API and guest `A`, both under `policy` (the default: signed and sealed); the guest
/// opens with a [`CopyingOpener`] when `copying`.
fn nodes(policy: Option<ClassPolicy>, copying: bool) -> Nodes {
    let master = Arc::new(MasterSecret::generate().unwrap());
    let table = Arc::new(RotationTable::new());
    let api = ControlPlaneKeys::new(master, table, "api").unwrap();
    let keys = GuestKeys::from_bundle(&api.issue_guest_bundle(A).unwrap()).unwrap();
    let mut api = api.security();
    let mut guest = keys.security();
    if let Some(p) = policy {
        api = api.policy(Policy::uniform(p));
        guest = guest.policy(Policy::uniform(p));
    }
    if copying {
        let opener = XChaChaOpener::new(Arc::new(keys.clone()));
        guest = guest.opener(Arc::new(CopyingOpener(opener)));
    }
    Nodes {
        api: api.build(),
        guest: guest.build(),
    }
}

fn call(from: &Security) -> Vec<u8> {
    let header = Header::call(
        MessageId::random(),
        "guest.a".into(),
        30_000,
        "reply.t".into(),
    );
    let body = RequestBody {
        method: "ping".into(),
        version: Version::new(1, 0),
        namespace: None,
        args: args(),
        ctx: Bytes::from_static(b"\x80"),
        monitor: None,
    };
    from.seal_and_sign(Outbound {
        header,
        body: body.into(),
        peer: Peer::Guest(A.into()),
        carries_secret: true,
    })
    .unwrap()
}

fn admit(to: &Security, bytes: Bytes) -> Result<Admitted, RejectReason> {
    to.admit(bytes, &|_| true).map_err(|r| r.reason)
}

fn request(a: &Admitted) -> &RequestBody {
    match &a.body {
        AdmittedBody::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn range(b: &[u8]) -> Range<usize> {
    b.as_ptr().addr()..b.as_ptr().addr() + b.len()
}

/// Where a received buffer lies, and whether `args` were opened inside it.
fn opened_inside(buffer: &Range<usize>, a: &Admitted) -> bool {
    let args = range(&request(a).args);
    buffer.start <= args.start && args.end <= buffer.end
}

#[test]
fn a_buffer_held_once_is_opened_where_it_lies() {
    let n = nodes(None, false);
    let expected = args();
    // Bytes::from(Vec) of exact capacity, one with spare capacity (a shared Bytes with
    // one reference), and a slice of a larger buffer: each is the only reference.
    let exact = Bytes::from(call(&n.api));
    let mut spare = Vec::with_capacity(64 * 1024);
    spare.extend_from_slice(&call(&n.api));
    let spare = Bytes::from(spare);
    let mut framed = b"frame header".to_vec();
    framed.extend_from_slice(&call(&n.api));
    let framed = Bytes::from(framed).slice(12..);
    for received in [exact, spare, framed] {
        let at = range(&received);
        let a = admit(&n.guest, received).unwrap();
        assert!(a.sealed && a.signed);
        assert_eq!(request(&a).args, expected);
        assert!(opened_inside(&at, &a), "the body was copied out");
    }
}

#[test]
fn shared_bytes_are_opened_into_a_buffer_of_their_own_and_left_as_received() {
    let n = nodes(None, false);
    let sent = call(&n.api);
    let received = Bytes::from(sent.clone());
    let kept = received.clone();
    let a = admit(&n.guest, received).unwrap();
    assert_eq!(request(&a).args, args());
    assert!(!opened_inside(&range(&kept), &a));
    assert_eq!(kept, sent, "a shared buffer changed");
    // By reference: the same.
    let received = Bytes::from(call(&n.api));
    let before = received.to_vec();
    let a = n.guest.admit(&received, &|_| true).unwrap();
    assert_eq!(request(&a).args, args());
    assert_eq!(received, before, "a borrowed buffer changed");
}

/// Flips one bit of the envelope's `b` at `offset` from its start (negative: from its end),
/// or of the header's id when `offset` is `None`.
fn tampered(env: &[u8], offset: Option<isize>) -> Vec<u8> {
    let e = EnvelopeRef::decode(env, &Limits::default()).unwrap();
    let part = match offset {
        Some(_) => e.body,
        None => e.header,
    };
    let start = part.as_ptr().addr() - env.as_ptr().addr();
    let at = match offset {
        Some(o) if o < 0 => start + part.len() - o.unsigned_abs(),
        Some(o) => start + o.unsigned_abs(),
        // The id's 16 bytes follow `\xa2id\xc4\x10` at the start of the header map.
        None => start + 6,
    };
    let mut out = env.to_vec();
    out[at] ^= 0x01;
    out
}

#[test]
fn tampered_ciphertext_tag_or_header_fail_closed_both_ways() {
    // Pairwise only, no signature: tampering reaches the open step.
    for copying in [false, true] {
        let n = nodes(Some(ClassPolicy::pairwise()), copying);
        for offset in [
            Some(0),
            Some(2_000),
            Some(-1),
            Some(-(TAG_LEN as isize)),
            None,
        ] {
            let bad = tampered(&call(&n.api), offset);
            let shared = Bytes::from(bad.clone());
            let _kept = shared.clone();
            assert_eq!(
                admit(&n.guest, shared).map(|_| ()),
                Err(RejectReason::OpenFailed),
                "shared, {offset:?}, copying: {copying}"
            );
            assert_eq!(
                admit(&n.guest, Bytes::from(bad)).map(|_| ()),
                Err(RejectReason::OpenFailed),
                "in place, {offset:?}, copying: {copying}"
            );
        }
        // And honest messages open, both ways.
        let shared = Bytes::from(call(&n.api));
        let a = admit(&n.guest, shared.clone()).unwrap();
        assert_eq!(request(&a).args, args());
        let at = Bytes::from(call(&n.api));
        let buffer = range(&at);
        let a = admit(&n.guest, at).unwrap();
        assert_eq!(request(&a).args, args());
        assert!(opened_inside(&buffer, &a));
    }
}

fn key() -> SecretKey {
    SecretKey::from_bytes([7; 32])
}

#[test]
fn a_failed_open_in_place_leaves_no_plaintext() {
    let (nonce, aad) = ([3u8; 24], b"header bytes");
    let plain = vec![MARK; 3000];
    let sealed = seal_with(&key(), &nonce, aad, &plain).unwrap();
    let mut buf = sealed.clone();
    assert_eq!(
        open_in_place_with(&key(), &nonce, aad, &mut buf),
        Ok(plain.len())
    );
    assert_eq!(&buf[..plain.len()], &plain[..]);
    for (what, flip, aad) in [
        ("ciphertext", 10, &aad[..]),
        ("tag", sealed.len() - 1, &aad[..]),
        ("aad", 0, &b"other header"[..]),
    ] {
        let mut buf = sealed.clone();
        if what != "aad" {
            buf[flip] ^= 0x80;
        }
        assert_eq!(
            open_in_place_with(&key(), &nonce, aad, &mut buf),
            Err(KeyError::OpenFailed),
            "{what}"
        );
        assert!(!buf.contains(&MARK), "{what}: plaintext left in the buffer");
    }
    // Shorter than a tag.
    let mut short = sealed[..TAG_LEN - 1].to_vec();
    assert_eq!(
        open_in_place_with(&key(), &nonce, aad, &mut short),
        Err(KeyError::OpenFailed)
    );
}

/// An opener that implements only `open`: the pipeline then opens through the default
/// `open_in_place`.
#[derive(Debug)]
struct CopyingOpener(XChaChaOpener);

impl Opener for CopyingOpener {
    fn open(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.0.open(key_id, nonce, aad, ciphertext)
    }
}

#[test]
fn the_default_open_in_place_goes_through_open() {
    #[derive(Debug)]
    struct OneKey;
    impl sealrpc_signers::xchacha::AeadKeys for OneKey {
        fn sealing_key(&self, _: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
            Ok(Arc::new(key()))
        }
        fn opening_key(&self, _: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
            Ok(Arc::new(key()))
        }
    }
    let copying = CopyingOpener(XChaChaOpener::new(Arc::new(OneKey)));
    let id = KeyId::parse("k2/guest:g/1").unwrap();
    let (nonce, aad) = ([3u8; 24], b"header bytes");
    let plain = vec![MARK; 3000];
    let sealed = seal_with(&key(), &nonce, aad, &plain).unwrap();
    let mut buf = sealed.clone();
    assert_eq!(
        copying.open_in_place(&id, &nonce, aad, &mut buf),
        Ok(plain.len())
    );
    assert_eq!(&buf[..plain.len()], &plain[..]);
    let mut bad = sealed.clone();
    bad[5] ^= 1;
    let before = bad.clone();
    assert_eq!(
        copying.open_in_place(&id, &nonce, aad, &mut bad),
        Err(KeyError::OpenFailed)
    );
    assert_eq!(bad, before, "a failed open wrote into the buffer");
}
