//! A MessagePack writer for the tests' hand-made encodings (unknown keys, wrong types,
//! duplicates): chained `rmp::encode` calls, each in its most compact form. The library's
//! own writer is crate-private; `sealrpc_examples::trove::msgpack` is the same for the
//! forge and the cross-crate suites.
#![allow(dead_code)]

use rmp::encode;

/// Appends MessagePack values to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

/// A length as MessagePack carries it (at most `u32::MAX`; longer is no test's business).
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

// Writing into a `Vec` cannot fail, so the `rmp` results below are ignored.
impl Writer {
    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A map header for `len` entries.
    pub fn map(&mut self, len: usize) -> &mut Self {
        let _ = encode::write_map_len(&mut self.buf, len32(len));
        self
    }

    /// An array header for `len` items.
    pub fn array(&mut self, len: usize) -> &mut Self {
        let _ = encode::write_array_len(&mut self.buf, len32(len));
        self
    }

    /// A `str`.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let _ = encode::write_str(&mut self.buf, s);
        self
    }

    /// A `bin`.
    pub fn bin(&mut self, b: &[u8]) -> &mut Self {
        let _ = encode::write_bin(&mut self.buf, b);
        self
    }

    /// A non-negative integer.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        let _ = encode::write_uint(&mut self.buf, v);
        self
    }

    /// `nil`.
    pub fn nil(&mut self) -> &mut Self {
        let _ = encode::write_nil(&mut self.buf);
        self
    }

    /// Bytes that already are one encoded MessagePack value (or several, or garbage).
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }
}
