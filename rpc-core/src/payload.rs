//! Encoding and decoding application values (arguments, results, context entries) with
//! error messages that never carry a value.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::secret::encode_tracked;
use crate::wire::CodecError;
use crate::wire::body::EMPTY_MAP;

/// An encoded application value (call arguments, a result, a context's `ctx` map) and
/// whether it holds a [`Secret`](crate::Secret).
///
/// The bytes are a [`Bytes`]: cloning (a tower retry layer cloning its request) shares them
/// instead of copying the payload. When they hold a secret they live in a zeroizing owner,
/// wiped when the last clone is dropped.
#[derive(Clone)]
pub struct Encoded {
    bytes: Bytes,
    carries_secret: bool,
}

impl Encoded {
    /// Wraps freshly encoded bytes; secret-bearing bytes get a zeroizing owner.
    pub(crate) fn new(bytes: Vec<u8>, carries_secret: bool) -> Self {
        let bytes = if carries_secret {
            Bytes::from_owner(crate::wiped::WipedBytes::new(bytes))
        } else {
            Bytes::from(bytes)
        };
        Self {
            bytes,
            carries_secret,
        }
    }

    /// The MessagePack bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A `Secret` was serialized into the bytes.
    pub fn carries_secret(&self) -> bool {
        self.carries_secret
    }

    /// Takes the bytes out (still zeroized on their last drop when they hold a secret).
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("len", &self.bytes.len())
            .field("carries_secret", &self.carries_secret)
            .finish()
    }
}

/// Encodes `value` (any serde value).
pub fn encode_value<T: Serialize + ?Sized>(
    value: &T,
    what: &'static str,
) -> Result<Encoded, CodecError> {
    let (bytes, carries_secret) = encode_tracked(value);
    match bytes {
        Ok(bytes) => Ok(Encoded::new(bytes, carries_secret)),
        Err(e) => Err(CodecError::Encode(format!("{what}: {}", redact(&e)))),
    }
}

/// Encodes call arguments: they must serialize to a map (a struct or a map); `()` and
/// `None` become the empty map.
pub fn encode_args<T: Serialize + ?Sized>(args: &T) -> Result<Encoded, CodecError> {
    let mut enc = encode_value(args, "args")?;
    match enc.bytes.first() {
        Some(0xc0) => enc.bytes = Bytes::from_static(EMPTY_MAP),
        Some(0x80..=0x8f | 0xde | 0xdf) => {}
        _ => {
            return Err(CodecError::Encode(
                "args must serialize to a map (a struct with named fields or a map)".into(),
            ));
        }
    }
    Ok(enc)
}

/// Decodes `bytes` into `T`; the error names `what` and the kind of mismatch, not values.
pub fn decode_value<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, CodecError> {
    rmp_serde::from_slice(bytes).map_err(|e| CodecError::Decode {
        what,
        detail: redact(&e),
    })
}

/// A serde error message with every quoted span (where serde puts the offending value)
/// replaced by `…`; field names (quoted with backticks after "field") are kept.
pub fn redact(e: &dyn std::fmt::Display) -> String {
    let msg = e.to_string();
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.char_indices();
    while let Some((i, c)) = chars.next() {
        let quote = matches!(c, '"' | '\'' | '`');
        let keeps = c == '`' && msg[..i].trim_end().ends_with("field");
        out.push(c);
        if quote {
            if !keeps {
                out.push('…');
            }
            for (_, d) in chars.by_ref() {
                if d == c {
                    break;
                }
                if keeps {
                    out.push(d);
                }
            }
            out.push(c);
        }
    }
    out
}
