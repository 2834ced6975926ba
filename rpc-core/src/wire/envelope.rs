//! The envelope: `{v, h, b, sig?}`. This module and [`super::digest`] are the one place
//! that defines the signed and sealed bytes.

use super::error::CodecError;
use super::fields::Fields;
use super::limits::Limits;
use super::msgpack::single_value;
use super::write::Writer;

/// The envelope major version this implementation speaks.
pub const ENVELOPE_VERSION: u64 = 1;

/// One signature item: `{k, a, s}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureItem {
    /// Key id of the signing key (`sig/<principal>/<epoch>`).
    pub key_id: String,
    /// Algorithm id, e.g. `ed25519-sha256`.
    pub algorithm: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// An envelope borrowed from the bytes received: `h` and `b` are the exact bytes covered by
/// signatures and the AEAD, never re-serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRef<'a> {
    /// The encoded header map.
    pub header: &'a [u8],
    /// The encoded body map, or its ciphertext and tag when sealed.
    pub body: &'a [u8],
    /// The signature items whose `k` is a `str` and `s` a `bin`, in wire order.
    pub signatures: Vec<SignatureItem>,
    /// The algorithm ids of the other items (`k` or `s` absent or of another type), in wire
    /// order: a receiver that knows the algorithm rejects the message, any other skips the
    /// item, since only `a` is needed to decide "unknown, skip" (docs/wire-format.md §5).
    pub opaque_signatures: Vec<&'a str>,
}

impl<'a> EnvelopeRef<'a> {
    /// Decodes an envelope, enforcing `limits` before and while decoding.
    ///
    /// Order: total size, outer map, `v` (a newer major is [`CodecError::UnsupportedEnvelope`]),
    /// header size, signature count and key-id length.
    pub fn decode(bytes: &'a [u8], limits: &Limits) -> Result<Self, CodecError> {
        if bytes.len() > limits.max_envelope {
            return Err(CodecError::TooLarge {
                what: "envelope",
                size: bytes.len(),
                limit: limits.max_envelope,
            });
        }
        let map = single_value(bytes, "envelope")?;
        let f = Fields::read(map, "envelope", ["v", "h", "b", "sig"])?;
        match f.uint("v")? {
            0 => return Err(CodecError::Malformed("envelope version 0")),
            ENVELOPE_VERSION => {}
            newer => return Err(CodecError::UnsupportedEnvelope(newer)),
        }
        let header = f.bin("h")?;
        if header.len() > limits.max_header {
            return Err(CodecError::TooLarge {
                what: "header",
                size: header.len(),
                limit: limits.max_header,
            });
        }
        let body = f.bin("b")?;
        let mut signatures = Vec::new();
        let mut opaque_signatures = Vec::new();
        if let Some(items) = f.opt("sig") {
            // The count is checked from the array's header, before the items are collected.
            let count = items.array_len().ok_or(CodecError::WrongType("sig"))?;
            if count > limits.max_signatures {
                return Err(CodecError::TooLarge {
                    what: "signature list",
                    size: count,
                    limit: limits.max_signatures,
                });
            }
            for item in items.array_items("sig")? {
                let s = Fields::read(item, "signature item", ["k", "a", "s"])?;
                let algorithm = s.str("a")?;
                let key_id = s.opt("k").and_then(|k| k.as_str());
                if let Some(key_id) = key_id
                    && key_id.len() > limits.max_key_id
                {
                    return Err(CodecError::TooLarge {
                        what: "key id",
                        size: key_id.len(),
                        limit: limits.max_key_id,
                    });
                }
                match (key_id, s.opt("s").and_then(|v| v.as_bin())) {
                    (Some(key_id), Some(signature)) => signatures.push(SignatureItem {
                        key_id: key_id.to_owned(),
                        algorithm: algorithm.to_owned(),
                        signature: signature.to_vec(),
                    }),
                    _ => opaque_signatures.push(algorithm),
                }
            }
        }
        Ok(Self {
            header,
            body,
            signatures,
            opaque_signatures,
        })
    }
}

/// Encodes an envelope (`sig` omitted when there are no signatures).
pub fn encode_envelope(header: &[u8], body: &[u8], signatures: &[SignatureItem]) -> Vec<u8> {
    let sig_len: usize = signatures
        .iter()
        .map(|s| 16 + s.key_id.len() + s.algorithm.len() + s.signature.len())
        .sum();
    let mut w = Writer::with_capacity(32 + header.len() + body.len() + sig_len);
    w.map(if signatures.is_empty() { 3 } else { 4 });
    w.str("v").uint(ENVELOPE_VERSION);
    w.str("h").bin(header);
    w.str("b").bin(body);
    if !signatures.is_empty() {
        w.str("sig").array(signatures.len());
        for s in signatures {
            w.map(3);
            w.str("k").str(&s.key_id);
            w.str("a").str(&s.algorithm);
            w.str("s").bin(&s.signature);
        }
    }
    w.into_bytes()
}
