//! Building the golden envelopes byte by byte: fixed master, ids and nonces, optional
//! unknown keys at every level, extra signature items, and tampering helpers.

use sealrpc_core::Version;
use sealrpc_core::security::Signer;
use sealrpc_core::wire::{
    KeyId, Kind, NotificationBody, RequestBody, SEAL_ALGORITHM, signature_input,
};
use sealrpc_examples::trove::msgpack::Writer;
use sealrpc_signers::{Ed25519Signer, MasterSecret, derive_key, xchacha::seal_with};

/// The master secret of the golden vectors (not secret: test data).
pub const MASTER_HEX: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
/// The receiver's clock.
pub const NOW_MS: u64 = 1_763_900_001_000;
pub(super) const TS: u64 = 1_763_900_000_000;
pub(super) const G: &str = "5f0e4a1c-1111-4222-8333-444455556666";
pub(super) const H: &str = "9d8c7b6a-aaaa-4bbb-8ccc-ddddeeeeffff";

pub(super) fn master() -> MasterSecret {
    MasterSecret::from_hex(MASTER_HEX).unwrap()
}

pub(super) fn key(id: &str) -> sealrpc_signers::SecretKey {
    derive_key(&master(), &KeyId::parse(id).unwrap())
}

pub(super) fn public(id: &str) -> String {
    let signer = Ed25519Signer::new(KeyId::parse(id).unwrap(), &key(id)).unwrap();
    hex::encode(signer.public_key())
}

/// One message to build.
#[derive(Clone)]
pub(super) struct Msg {
    pub(super) id: u8,
    pub(super) kind: Kind,
    pub(super) ts: u64,
    pub(super) ttl: Option<u64>,
    pub(super) src: String,
    pub(super) dst: String,
    pub(super) corr: Option<[u8; 16]>,
    pub(super) reply: Option<String>,
    pub(super) seal: Option<String>,
    pub(super) signer: Option<String>,
    pub(super) method: &'static str,
    pub(super) args: Vec<u8>,
    /// Add unknown keys at every level (a "future" sender).
    pub(super) future: bool,
    /// Signature items of an unknown algorithm, placed before the ed25519 one.
    pub(super) unknown_sig: bool,
    /// One more signature item, as raw map bytes, placed first.
    pub(super) extra_item: Option<Vec<u8>>,
    /// On a `notify`: the `publisher_id` (`method` is the event type, `args` the payload).
    pub(super) publisher: Option<String>,
}

pub(super) fn msg(src: &str, dst: &str) -> Msg {
    Msg {
        id: 1,
        kind: Kind::Call,
        ts: TS,
        ttl: Some(30_000),
        src: src.into(),
        dst: dst.into(),
        corr: None,
        reply: Some(format!("reply.{src}")),
        seal: None,
        signer: None,
        method: "update_status",
        args: args(G),
        future: false,
        unknown_sig: false,
        extra_item: None,
        publisher: None,
    }
}

pub(super) fn args(instance: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.map(2)
        .str("instance_id")
        .str(instance)
        .str("status")
        .str("ACTIVE");
    w.into_bytes()
}

pub(super) fn guest_call() -> Msg {
    Msg {
        seal: Some(format!("k3/guest:{G}/1")),
        signer: Some(format!("sig/guest:{G}/1")),
        ..msg(&format!("guest:{G}"), "conductor")
    }
}

pub(super) fn header_bytes(m: &Msg, nonce: &[u8; 24]) -> Vec<u8> {
    let fields = 5
        + usize::from(m.ttl.is_some())
        + usize::from(m.corr.is_some())
        + usize::from(m.reply.is_some())
        + usize::from(m.seal.is_some());
    let mut w = Writer::default();
    w.map(fields + usize::from(m.future));
    w.str("id").bin(&[m.id; 16]);
    w.str("kind").str(m.kind.as_str());
    w.str("ts").uint(m.ts);
    if let Some(ttl) = m.ttl {
        w.str("ttl").uint(ttl);
    }
    w.str("src").str(&m.src);
    w.str("dst").str(&m.dst);
    if let Some(corr) = &m.corr {
        w.str("corr").bin(corr);
    }
    if let Some(reply) = &m.reply {
        w.str("reply").str(reply);
    }
    if let Some(k) = &m.seal {
        w.str("seal").map(3 + usize::from(m.future));
        w.str("a").str(SEAL_ALGORITHM);
        w.str("k").str(k);
        w.str("n").bin(nonce);
        if m.future {
            w.str("x-aad-v").uint(2);
        }
    }
    if m.future {
        w.str("x-prio").array(2).uint(5).nil();
    }
    w.into_bytes()
}

pub(super) fn body_bytes(m: &Msg) -> Vec<u8> {
    if m.kind == Kind::Reply {
        let mut w = Writer::default();
        w.map(1).str("ok").str("ACTIVE");
        return w.into_bytes();
    }
    if m.kind == Kind::Notify {
        return NotificationBody::encode(
            m.method,
            m.publisher.as_deref().unwrap_or_default(),
            &m.args,
            b"\x81\xaarequest_id\xa3r-1",
        );
    }
    if !m.future {
        return RequestBody::encode(
            m.method,
            Version::new(1, 0),
            None,
            &m.args,
            b"\x81\xaarequest_id\xa3r-1",
        );
    }
    let mut args = Writer::default();
    args.map(3)
        .raw(&m.args[1..])
        .str("x-new-arg")
        .bin(b"\x00\x01");
    let mut ctx = Writer::default();
    ctx.map(2)
        .str("request_id")
        .str("r-1")
        .str("x-trace")
        .map(1)
        .str("span")
        .uint(7);
    let mut w = Writer::default();
    w.map(5).str("method").str(m.method).str("ver").str("1.0");
    w.str("args")
        .raw(&args.into_bytes())
        .str("ctx")
        .raw(&ctx.into_bytes());
    w.str("x-body").raw(&[0xd4, 0x01, 0x02]); // an ext value under an unknown key
    w.into_bytes()
}

/// Builds the envelope bytes of `m`; `tamper` may edit (header, body) after signing.
pub(super) fn build(m: &Msg, seal_key_override: Option<&str>) -> Vec<u8> {
    let nonce = [m.id.wrapping_add(0x40); 24];
    let h = header_bytes(m, &nonce);
    let plain = body_bytes(m);
    let b = match &m.seal {
        Some(k) => seal_with(&key(seal_key_override.unwrap_or(k)), &nonce, &h, &plain).unwrap(),
        None => plain,
    };
    let mut items: Vec<(String, String, Vec<u8>, bool)> = Vec::new();
    if m.unknown_sig {
        items.push((
            m.signer.clone().unwrap_or_default(),
            "slh-dsa-sha2-128s".into(),
            vec![0x5a; 96],
            false,
        ));
    }
    if let Some(s) = &m.signer {
        let signer = Ed25519Signer::new(KeyId::parse(s).unwrap(), &key(s)).unwrap();
        let sig = signer.sign(&signature_input(&h, &b)).unwrap();
        items.push((s.clone(), signer.algorithm().into(), sig, m.future));
    }
    let extra = usize::from(m.extra_item.is_some());
    let mut w = Writer::default();
    w.map(3 + usize::from(!items.is_empty() || extra > 0) + usize::from(m.future));
    w.str("v").uint(1).str("h").bin(&h).str("b").bin(&b);
    if !items.is_empty() || extra > 0 {
        w.str("sig").array(items.len() + extra);
        if let Some(item) = &m.extra_item {
            w.raw(item);
        }
        for (k, a, s, extra) in &items {
            w.map(3 + usize::from(*extra))
                .str("k")
                .str(k)
                .str("a")
                .str(a)
                .str("s")
                .bin(s);
            if *extra {
                w.str("x-sig").str("future");
            }
        }
    }
    if m.future {
        w.str("x-route").map(1).str("hops").array(2).uint(1).uint(2);
    }
    w.into_bytes()
}

/// Flips one byte of the first occurrence of `needle` in `bytes`.
pub(super) fn tamper(mut bytes: Vec<u8>, needle: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + needle.len() - 1] ^= 0x20;
    bytes
}

pub(super) fn last_signature(envelope: &[u8]) -> Vec<u8> {
    envelope[envelope.len() - 64..].to_vec()
}
