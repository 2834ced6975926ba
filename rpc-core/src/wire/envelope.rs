//! The envelope: `{v, h, b, sig?}`. This module and [`super::digest`] are the one place
//! that defines the signed and sealed bytes.

use std::ops::Range;

use zeroize::Zeroize;

use super::error::CodecError;
use super::fields::Fields;
use super::header::Header;
use super::limits::Limits;
use super::message_body::Body;
use super::write::{Encode, Writer};

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
        let f = Fields::decode(bytes, "envelope", ["v", "h", "b", "sig"])?;
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
            let Some(count) = items.array_len() else {
                return Err(CodecError::WrongType("sig"));
            };
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

/// Builds an envelope in one buffer: the header and the body map are written straight
/// into it (the body's `args`, result or payload bytes are copied once), and a seal can
/// encrypt the body where it lies ([`EnvelopeWriter::body_mut`]). The bytes are the same
/// as [`encode_envelope`]'s of the encoded header and body.
///
/// It wipes its buffer on drop unless [`finish`](Self::finish)ed, since until sealed the
/// body may hold a `Secret`'s plaintext.
pub struct EnvelopeWriter {
    w: Writer,
    header: Range<usize>,
    body: Range<usize>,
    signed: bool,
}

impl EnvelopeWriter {
    /// Starts `{v, h, b[, sig]}` with `header`, then writes `body`, leaving room in the `b`
    /// length for `tag_len` more bytes (a seal's tag, pushed by [`push_tag`](Self::push_tag)).
    /// `signed`: [`finish`](Self::finish) will be given at least one signature.
    pub fn new(header: &Header, body: &Body, tag_len: usize, signed: bool) -> Self {
        let h_len = header.encoded_len();
        let b_len = body.encoded_len() + tag_len;
        let mut w = Writer::with_capacity(48 + h_len + b_len + if signed { 160 } else { 0 });
        w.map(if signed { 4 } else { 3 });
        w.str("v").uint(ENVELOPE_VERSION);
        w.str("h").bin_header(h_len);
        let h_start = w.len();
        header.write_to(&mut w);
        let h_end = w.len();
        w.str("b").bin_header(b_len);
        let b_start = w.len();
        body.write_to(&mut w);
        Self {
            w,
            header: h_start..h_end,
            body: b_start..b_start + b_len,
            signed,
        }
    }

    /// The header bytes, as written.
    pub fn header(&self) -> &[u8] {
        &self.w.as_slice()[self.header.clone()]
    }

    /// The body bytes written (and then the tag, once pushed).
    pub fn body(&self) -> &[u8] {
        &self.w.as_slice()[self.body.start..]
    }

    /// The header (to use as associated data) and the body as written, to seal in place.
    pub fn body_mut(&mut self) -> (&[u8], &mut [u8]) {
        let (head, rest) = self.w.as_mut_slice().split_at_mut(self.body.start);
        (&head[self.header.clone()], rest)
    }

    /// Appends the seal's tag after the sealed body.
    pub fn push_tag(&mut self, tag: &[u8]) {
        self.w.raw(tag);
    }

    /// The envelope with `signatures`; or, when the body and tag do not add up to the length
    /// declared in [`new`](Self::new) or `signatures` do not match `signed`, the writer
    /// back (the caller then encodes its header and body with [`encode_envelope`]).
    pub fn finish(mut self, signatures: &[SignatureItem]) -> Result<Vec<u8>, Self> {
        if self.w.len() != self.body.end || self.signed == signatures.is_empty() {
            return Err(self);
        }
        if !signatures.is_empty() {
            self.w.str("sig").array(signatures.len());
            for s in signatures {
                self.w.map(3);
                self.w.str("k").str(&s.key_id);
                self.w.str("a").str(&s.algorithm);
                self.w.str("s").bin(&s.signature);
            }
        }
        self.signed = false;
        self.body = 0..0;
        Ok(std::mem::take(&mut self.w).into_bytes())
    }
}

impl Drop for EnvelopeWriter {
    fn drop(&mut self) {
        // `finish` took the bytes; anything left may be an unsealed body.
        self.w.as_mut_slice().zeroize();
    }
}

impl std::fmt::Debug for EnvelopeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeWriter")
            .field("len", &self.w.len())
            .finish_non_exhaustive()
    }
}
