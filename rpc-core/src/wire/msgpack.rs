//! A strict, zero-copy MessagePack reader for the wire types.
//!
//! serde's derived decoders are too lenient for a wire format that two implementations must
//! agree on byte for byte: they coerce `str` and `bin` into each other, accept an array where
//! a struct's map belongs and ignore trailing bytes. This reader validates one value at a time
//! (bounded depth, valid UTF-8, lengths within the buffer) without allocating, and hands out
//! borrowed slices, so the header and body bytes are carried exactly as received.

// An eager `ok_or(CodecError::…)` builds and drops an error on every successful read
// (`CodecError` has drop glue): this reader runs on every message, so errors are lazy.
#![allow(clippy::unnecessary_lazy_evaluations)]

use super::error::CodecError;

/// Deepest nesting accepted anywhere on the wire (unknown values included).
pub const MAX_DEPTH: usize = 32;

/// One complete, validated MessagePack value, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'a>(&'a [u8]);

impl<'a> Raw<'a> {
    /// The exact encoded bytes of this value.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }

    /// True when the value is `nil` (which receivers read as "absent").
    pub fn is_nil(&self) -> bool {
        self.0.first() == Some(&0xc0)
    }

    /// A non-negative integer of any width; `None` for anything else (bool and float included).
    pub fn as_uint(&self) -> Option<u64> {
        let (&m, rest) = self.0.split_first()?;
        match m {
            0x00..=0x7f => Some(u64::from(m)),
            0xcc => Some(u64::from(rest[0])),
            0xcd => Some(u64::from(u16::from_be_bytes([rest[0], rest[1]]))),
            0xce => Some(u64::from(u32::from_be_bytes(rest[..4].try_into().ok()?))),
            0xcf => Some(u64::from_be_bytes(rest[..8].try_into().ok()?)),
            0xd0 => u64::try_from(i8::from_be_bytes([rest[0]])).ok(),
            0xd1 => u64::try_from(i16::from_be_bytes([rest[0], rest[1]])).ok(),
            0xd2 => u64::try_from(i32::from_be_bytes(rest[..4].try_into().ok()?)).ok(),
            0xd3 => u64::try_from(i64::from_be_bytes(rest[..8].try_into().ok()?)).ok(),
            _ => None,
        }
    }

    /// A `str` value (already checked to be valid UTF-8); `None` for anything else.
    pub fn as_str(&self) -> Option<&'a str> {
        let (off, len) = str_span(self.0)?;
        std::str::from_utf8(&self.0[off..off + len]).ok()
    }

    /// A `bin` value; `None` for anything else (a `str` is never coerced).
    pub fn as_bin(&self) -> Option<&'a [u8]> {
        let (&m, rest) = self.0.split_first()?;
        let (hdr, len) = match m {
            0xc4 => (1, usize::from(rest[0])),
            0xc5 => (2, usize::from(u16::from_be_bytes([rest[0], rest[1]]))),
            0xc6 => (4, u32::from_be_bytes(rest[..4].try_into().ok()?) as usize),
            _ => return None,
        };
        Some(&rest[hdr..hdr + len])
    }

    /// True when the value is a map.
    pub fn is_map(&self) -> bool {
        matches!(self.0.first(), Some(0x80..=0x8f | 0xde | 0xdf))
    }

    /// The entries of a map whose keys are all strings, in wire order, read one at a time
    /// without allocating: a map of millions of tiny entries costs no memory to walk.
    ///
    /// Errors when the value is not a map; each entry is an error when its key is not a
    /// `str` (the iterator ends after the first error).
    pub fn entries(&self, what: &'static str) -> Result<Entries<'a>, CodecError> {
        let (&m, rest) = self
            .0
            .split_first()
            .ok_or_else(|| CodecError::Malformed(what))?;
        let (hdr, len) = match m {
            0x80..=0x8f => (0, usize::from(m & 0x0f)),
            0xde => (2, usize::from(u16::from_be_bytes([rest[0], rest[1]]))),
            0xdf => (4, u32::from_be_bytes(four(rest)?) as usize),
            _ => return Err(CodecError::NotAMap(what)),
        };
        Ok(Entries {
            buf: &rest[hdr..],
            left: len,
            what,
        })
    }

    /// Checks that every map key inside this value, at every depth, is a `str`, in one pass
    /// and without allocating. Errors with [`CodecError::NonStringKey`]`(what)` otherwise.
    pub fn check_str_keys(&self, what: &'static str) -> Result<(), CodecError> {
        str_keys_len(self.0, MAX_DEPTH, what).map(|_| ())
    }

    /// The number of items of an array, from its header (`None` for anything else), so that
    /// a count limit is checked before the items are collected.
    pub fn array_len(&self) -> Option<usize> {
        let (&m, rest) = self.0.split_first()?;
        match m {
            0x90..=0x9f => Some(usize::from(m & 0x0f)),
            0xdc => Some(usize::from(u16::from_be_bytes([rest[0], rest[1]]))),
            0xdd => Some(u32::from_be_bytes(four(rest).ok()?) as usize),
            _ => None,
        }
    }

    /// The items of an array.
    pub fn array_items(&self, what: &'static str) -> Result<Vec<Raw<'a>>, CodecError> {
        let (&m, rest) = self
            .0
            .split_first()
            .ok_or_else(|| CodecError::Malformed(what))?;
        let (hdr, len) = match m {
            0x90..=0x9f => (0, usize::from(m & 0x0f)),
            0xdc => (2, usize::from(u16::from_be_bytes([rest[0], rest[1]]))),
            0xdd => (4, u32::from_be_bytes(four(rest)?) as usize),
            _ => return Err(CodecError::WrongType(what)),
        };
        let mut buf = &rest[hdr..];
        let mut out = Vec::with_capacity(len.min(buf.len()));
        for _ in 0..len {
            // Validated with the array: only measured here.
            let end = skip_len(buf).ok_or_else(|| CodecError::Truncated)?;
            let (item, after) = buf
                .split_at_checked(end)
                .ok_or_else(|| CodecError::Truncated)?;
            out.push(Raw(item));
            buf = after;
        }
        Ok(out)
    }
}

/// Length of the first value of `buf` (already validated, so only measured), checking that
/// the keys of every map within it are strings.
fn str_keys_len(buf: &[u8], depth: usize, what: &'static str) -> Result<usize, CodecError> {
    if depth == 0 {
        return Err(CodecError::TooDeep);
    }
    let m = *buf.first().ok_or_else(|| CodecError::Truncated)?;
    let (hdr, count, map) = match m {
        0x90..=0x9f => (1, usize::from(m & 0x0f), false),
        0xdc => (3, be_len(buf, 2)?, false),
        0xdd => (5, be_len(buf, 4)?, false),
        0x80..=0x8f => (1, usize::from(m & 0x0f), true),
        0xde => (3, be_len(buf, 2)?, true),
        0xdf => (5, be_len(buf, 4)?, true),
        _ => return skip_len(buf).ok_or_else(|| CodecError::Truncated),
    };
    let mut pos = hdr;
    for _ in 0..count {
        if map {
            let key = buf.get(pos..).ok_or_else(|| CodecError::Truncated)?;
            if str_span(key).is_none() {
                return Err(CodecError::NonStringKey(what));
            }
            pos += skip_len(key).ok_or_else(|| CodecError::Truncated)?;
        }
        let value = buf.get(pos..).ok_or_else(|| CodecError::Truncated)?;
        pos += str_keys_len(value, depth - 1, what)?;
    }
    Ok(pos)
}

/// The entries of a map with `str` keys, one at a time: of a validated map (see
/// [`Raw::entries`]), or, with `VALIDATE`, of a map read from new bytes and validated
/// entry by entry (see [`single_map`]).
#[derive(Debug, Clone)]
pub struct Entries<'a, const VALIDATE: bool = MEASURE> {
    buf: &'a [u8],
    left: usize,
    what: &'static str,
}

impl<'a, const VALIDATE: bool> Entries<'a, VALIDATE> {
    /// The next entry. The key's UTF-8 is checked (to hand it out as `&str`); the value is
    /// validated when `VALIDATE`, else (it lies in a validated map) only measured.
    fn entry(&mut self) -> Result<(&'a str, Raw<'a>), CodecError> {
        let (off, len) = str_span(self.buf).ok_or_else(|| CodecError::NonStringKey(self.what))?;
        let key_end = off.checked_add(len).ok_or_else(|| CodecError::Truncated)?;
        let key = self
            .buf
            .get(off..key_end)
            .ok_or_else(|| CodecError::Truncated)?;
        let key = std::str::from_utf8(key).map_err(|_| CodecError::InvalidUtf8)?;
        let after_key = self
            .buf
            .get(key_end..)
            .ok_or_else(|| CodecError::Truncated)?;
        let value_end = if VALIDATE {
            // The map is at depth 1 of `MAX_DEPTH`, as `single_value` would count it.
            walk_len::<VALIDATE>(after_key, MAX_DEPTH - 1)?
        } else {
            skip_len(after_key).ok_or_else(|| CodecError::Truncated)?
        };
        let (value, after_value) = after_key
            .split_at_checked(value_end)
            .ok_or_else(|| CodecError::Truncated)?;
        self.buf = after_value;
        Ok((key, Raw(value)))
    }
}

impl<'a, const VALIDATE: bool> Iterator for Entries<'a, VALIDATE> {
    type Item = Result<(&'a str, Raw<'a>), CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            // A map read from new bytes is the whole of them.
            if VALIDATE && !self.buf.is_empty() {
                self.buf = &[];
                return Some(Err(CodecError::TrailingBytes(self.what)));
            }
            return None;
        }
        self.left -= 1;
        let entry = self.entry();
        if entry.is_err() {
            self.left = 0;
            self.buf = &[];
        }
        Some(entry)
    }
}

/// Reads `buf` as exactly one map with `str` keys, validating each entry as it is read:
/// what [`single_value`] and then [`Raw::entries`] check, in one pass (each key's UTF-8
/// checked once, each value walked once). The entries end at the first error, and a map
/// followed by more bytes ends with [`CodecError::TrailingBytes`].
pub fn single_map<'a>(
    buf: &'a [u8],
    what: &'static str,
) -> Result<Entries<'a, VALIDATE>, CodecError> {
    let m = *buf.first().ok_or_else(|| CodecError::Truncated)?;
    let (hdr, len) = match m {
        0x80..=0x8f => (1, usize::from(m & 0x0f)),
        0xde => (3, be_len(buf, 2)?),
        0xdf => (5, be_len(buf, 4)?),
        _ => return Err(CodecError::NotAMap(what)),
    };
    Ok(Entries {
        buf: buf.get(hdr..).ok_or_else(|| CodecError::Truncated)?,
        left: len,
        what,
    })
}

fn four(rest: &[u8]) -> Result<[u8; 4], CodecError> {
    rest.get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| CodecError::Truncated)
}

/// Offset and length of a `str` payload, from its marker.
fn str_span(buf: &[u8]) -> Option<(usize, usize)> {
    let (&m, rest) = buf.split_first()?;
    match m {
        0xa0..=0xbf => Some((1, usize::from(m & 0x1f))),
        0xd9 => Some((2, usize::from(*rest.first()?))),
        0xda => Some((
            3,
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
        )),
        0xdb => Some((
            5,
            u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize,
        )),
        _ => None,
    }
}

/// Decodes exactly one value from `buf` and checks nothing follows it.
pub fn single_value<'a>(buf: &'a [u8], what: &'static str) -> Result<Raw<'a>, CodecError> {
    let (value, rest) = split_value(buf, MAX_DEPTH)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(what));
    }
    Ok(value)
}

/// Validates the first value of `buf` and splits it off.
///
/// Validation is complete: lengths fit, strings are UTF-8, nesting is at most `depth`,
/// and the reserved byte `0xc1` is refused.
pub fn split_value(buf: &[u8], depth: usize) -> Result<(Raw<'_>, &[u8]), CodecError> {
    let len = value_len(buf, depth)?;
    Ok((Raw(&buf[..len]), &buf[len..]))
}

fn need(buf: &[u8], n: usize) -> Result<(), CodecError> {
    if buf.len() < n {
        Err(CodecError::Truncated)
    } else {
        Ok(())
    }
}

fn be_len(buf: &[u8], width: usize) -> Result<usize, CodecError> {
    need(buf, 1 + width)?;
    let b = &buf[1..=width];
    Ok(match width {
        1 => usize::from(b[0]),
        2 => usize::from(u16::from_be_bytes([b[0], b[1]])),
        _ => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
    })
}

/// Length in bytes of the first encoded value of `buf`, validated.
fn value_len(buf: &[u8], depth: usize) -> Result<usize, CodecError> {
    walk_len::<VALIDATE>(buf, depth)
}

/// Length in bytes of the first value of `buf`, which lies inside a validated value.
/// `None` only if `buf` is not such a value (lengths and depth are still checked, so
/// nothing can panic or run away).
fn skip_len(buf: &[u8]) -> Option<usize> {
    walk_len::<MEASURE>(buf, MAX_DEPTH).ok()
}

/// [`walk_len`] checks everything: the value is new (see [`split_value`]).
const VALIDATE: bool = true;
/// [`walk_len`] checks lengths and depth but not UTF-8 again: the value lies inside one
/// that was validated (every [`Raw`] was). A constant, so each walk is compiled apart.
const MEASURE: bool = false;

fn walk_len<const CHECK_UTF8: bool>(buf: &[u8], depth: usize) -> Result<usize, CodecError> {
    if depth == 0 {
        return Err(CodecError::TooDeep);
    }
    let m = *buf.first().ok_or_else(|| CodecError::Truncated)?;
    let fixed = |n: usize| need(buf, n).map(|()| n);
    let payload = |hdr: usize, len: usize| {
        let total = hdr.checked_add(len).ok_or_else(|| CodecError::Truncated)?;
        need(buf, total).map(|()| total)
    };
    let utf8 = |hdr: usize, len: usize| {
        let total = payload(hdr, len)?;
        if CHECK_UTF8 {
            std::str::from_utf8(&buf[hdr..total]).map_err(|_| CodecError::InvalidUtf8)?;
        }
        Ok::<usize, CodecError>(total)
    };
    let items = |hdr: usize, count: usize| items_len::<CHECK_UTF8>(buf, hdr, count, depth);
    match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Ok(1),
        0xc1 => Err(CodecError::Malformed("reserved marker 0xc1")),
        0xcc | 0xd0 => fixed(2),
        0xcd | 0xd1 => fixed(3),
        0xce | 0xd2 | 0xca => fixed(5),
        0xcf | 0xd3 | 0xcb => fixed(9),
        0xa0..=0xbf => utf8(1, usize::from(m & 0x1f)),
        0xd9 => utf8(2, be_len(buf, 1)?),
        0xda => utf8(3, be_len(buf, 2)?),
        0xdb => utf8(5, be_len(buf, 4)?),
        0xc4 => payload(2, be_len(buf, 1)?),
        0xc5 => payload(3, be_len(buf, 2)?),
        0xc6 => payload(5, be_len(buf, 4)?),
        0xd4 => fixed(3),
        0xd5 => fixed(4),
        0xd6 => fixed(6),
        0xd7 => fixed(10),
        0xd8 => fixed(18),
        0xc7 => payload(3, be_len(buf, 1)?),
        0xc8 => payload(4, be_len(buf, 2)?),
        0xc9 => payload(6, be_len(buf, 4)?),
        0x90..=0x9f => items(1, usize::from(m & 0x0f)),
        0xdc => items(3, be_len(buf, 2)?),
        0xdd => items(5, be_len(buf, 4)?),
        0x80..=0x8f => items(1, 2 * usize::from(m & 0x0f)),
        0xde => items(3, 2 * be_len(buf, 2)?),
        0xdf => items(5, 2 * be_len(buf, 4)?),
    }
}

fn items_len<const CHECK_UTF8: bool>(
    buf: &[u8],
    hdr: usize,
    count: usize,
    depth: usize,
) -> Result<usize, CodecError> {
    let mut pos = hdr;
    need(buf, pos)?;
    for _ in 0..count {
        pos += walk_len::<CHECK_UTF8>(&buf[pos..], depth - 1)?;
    }
    Ok(pos)
}

#[cfg(test)]
#[path = "msgpack_tests.rs"]
mod tests;
