//! A compact MessagePack writer: the most compact form of every integer and length,
//! `str` for text and `bin` for bytes, as docs/wire-format.md requires of senders.
//!
//! The same writing code also measures: a [`Writer`] over [`Measure`] only counts, so the
//! length of a value can be known before it is written (the envelope's `h` and `b` lengths
//! come before their bytes) without a second encoder that could disagree with the first.
//!
//! Crate-private: code outside the library that crafts messages by hand (attack tests,
//! the demo's forge) uses `rmp::encode` (see `sealrpc_examples::trove::msgpack`).

/// Where a [`Writer`] puts what it writes.
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
    /// Bytes put so far.
    fn written(&self) -> usize;
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn written(&self) -> usize {
        self.len()
    }
}

/// A sink that keeps nothing and counts the bytes put into it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Measure(usize);

impl Sink for Measure {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn written(&self) -> usize {
        self.0
    }
}

/// A value laid out by one writing function, which also measures it: its length is known
/// before it is written, and a `Vec` of it is allocated at its exact size.
pub trait Encode {
    /// Writes the value.
    fn write_to<S: Sink>(&self, w: &mut Writer<S>);

    /// The length of what [`write_to`](Self::write_to) writes.
    fn encoded_len(&self) -> usize {
        let mut w = Writer { buf: Measure(0) };
        self.write_to(&mut w);
        w.len()
    }

    /// The value, encoded into a `Vec` of its exact length.
    fn to_vec(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.write_to(&mut w);
        w.into_bytes()
    }
}

/// Appends MessagePack values to a byte vector (or, over [`Measure`], counts them).
#[derive(Debug, Default)]
pub struct Writer<S: Sink = Vec<u8>> {
    buf: S,
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

    /// The bytes written so far, to fill in place (e.g. to seal a body where it lies).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}

impl<S: Sink> Writer<S> {
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
            self.buf.put(&[0xa0 | len as u8]);
        } else if len <= 0xff {
            self.buf.put(&[0xd9, len as u8]);
        } else if len <= 0xffff {
            self.buf.put(&[0xda]);
            self.buf.put(&(len as u16).to_be_bytes());
        } else {
            self.buf.put(&[0xdb]);
            self.buf.put(&(len as u32).to_be_bytes());
        }
        self.buf.put(s.as_bytes());
        self
    }

    /// A `bin`.
    pub fn bin(&mut self, b: &[u8]) -> &mut Self {
        self.bin_header(b.len());
        self.buf.put(b);
        self
    }

    /// The header of a `bin` of `len` bytes, whose bytes the caller appends next.
    pub fn bin_header(&mut self, len: usize) -> &mut Self {
        if len <= 0xff {
            self.buf.put(&[0xc4, len as u8]);
        } else if len <= 0xffff {
            self.buf.put(&[0xc5]);
            self.buf.put(&(len as u16).to_be_bytes());
        } else {
            self.buf.put(&[0xc6]);
            self.buf.put(&(len as u32).to_be_bytes());
        }
        self
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.written()
    }

    /// A non-negative integer in its most compact form.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        if v <= 0x7f {
            self.buf.put(&[v as u8]);
        } else if v <= 0xff {
            self.buf.put(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            self.buf.put(&[0xcd]);
            self.buf.put(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.buf.put(&[0xce]);
            self.buf.put(&(v as u32).to_be_bytes());
        } else {
            self.buf.put(&[0xcf]);
            self.buf.put(&v.to_be_bytes());
        }
        self
    }

    /// Bytes that already are one encoded MessagePack value.
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.put(encoded);
        self
    }

    fn len_marker(&mut self, len: usize, fix: u8, fixmax: usize, m16: u8, m32: u8) -> &mut Self {
        if len <= fixmax {
            self.buf.put(&[fix | len as u8]);
        } else if len <= 0xffff {
            self.buf.put(&[m16]);
            self.buf.put(&(len as u16).to_be_bytes());
        } else {
            self.buf.put(&[m32]);
            self.buf.put(&(len as u32).to_be_bytes());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measuring_counts_what_writing_writes() {
        struct Sample;
        impl Encode for Sample {
            fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
                w.map(20).str("k").str(&"s".repeat(300)).bin(&[7; 70_000]);
                w.array(3).uint(0x7f).uint(0x100).uint(u64::MAX);
            }
        }
        let bytes = Sample.to_vec();
        assert_eq!(Sample.encoded_len(), bytes.len());
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(&bytes[..5], &[0xde, 0, 20, 0xa1, b'k']);
    }
}
