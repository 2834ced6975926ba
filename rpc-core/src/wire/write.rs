//! A compact MessagePack writer: the most compact form of every integer and length,
//! `str` for text and `bin` for bytes, as docs/wire-format.md requires of senders.
//!
//! Crate-private: code outside the library that crafts messages by hand (attack tests,
//! the demo's forge) uses `rmp::encode` (see `sealrpc_examples::trove::msgpack`).

/// Appends MessagePack values to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A map header for `len` entries.
    pub fn map(&mut self, len: usize) -> &mut Self {
        self.len_marker(len, 0x80, 0x0f, 0xde, 0xdf)
    }

    /// An array header for `len` items.
    pub fn array(&mut self, len: usize) -> &mut Self {
        self.len_marker(len, 0x90, 0x0f, 0xdc, 0xdd)
    }

    /// A `str`.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let len = s.len();
        if len <= 31 {
            self.buf.push(0xa0 | len as u8);
        } else if len <= 0xff {
            self.buf.extend_from_slice(&[0xd9, len as u8]);
        } else if len <= 0xffff {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// A `bin`.
    pub fn bin(&mut self, b: &[u8]) -> &mut Self {
        self.bin_header(b.len());
        self.buf.extend_from_slice(b);
        self
    }

    /// The header of a `bin` of `len` bytes, whose bytes the caller appends next.
    pub fn bin_header(&mut self, len: usize) -> &mut Self {
        if len <= 0xff {
            self.buf.extend_from_slice(&[0xc4, len as u8]);
        } else if len <= 0xffff {
            self.buf.push(0xc5);
            self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.buf.push(0xc6);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
        self
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The bytes written so far, to fill in place (e.g. to seal a body where it lies).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// A non-negative integer in its most compact form.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        if v <= 0x7f {
            self.buf.push(v as u8);
        } else if v <= 0xff {
            self.buf.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            self.buf.push(0xcd);
            self.buf.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.buf.push(0xce);
            self.buf.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.buf.push(0xcf);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    /// Bytes that already are one encoded MessagePack value.
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }

    fn len_marker(&mut self, len: usize, fix: u8, fixmax: usize, m16: u8, m32: u8) -> &mut Self {
        if len <= fixmax {
            self.buf.push(fix | len as u8);
        } else if len <= 0xffff {
            self.buf.push(m16);
            self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.buf.push(m32);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
        self
    }
}
