//! The open step of the receive pipeline: the sealed body, decrypted where it lies in the
//! buffer received when the pipeline holds the only reference to it, else into a buffer of
//! its own. Either way the plaintext lives in a buffer wiped when its last slice drops,
//! since it may hold a `Secret`'s value.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::Security;
use super::hooks::Opener;
use super::inbound::{Checked, Rejection, key_reason};
use super::reject::RejectReason;
use crate::wiped::WipedBytes;
use crate::wire::{KeyId, SealInfo};

/// The envelope bytes a receive pipeline takes. Given by value, when they are the only
/// reference to their buffer (a transport's fresh delivery), a sealed body is opened where it
/// lies in that buffer; given by reference (or shared), it is opened into a buffer of its
/// own and the bytes received stay as they are.
pub trait ReceivedBytes {
    /// The bytes, owned.
    fn into_received(self) -> Bytes;
}

impl ReceivedBytes for Bytes {
    fn into_received(self) -> Bytes {
        self
    }
}

impl ReceivedBytes for &Bytes {
    fn into_received(self) -> Bytes {
        self.clone()
    }
}

/// Where `part`, a slice of `whole`, lies in it.
pub(super) fn span_in(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = part.as_ptr().addr().checked_sub(whole.as_ptr().addr())?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

impl Security {
    /// open: the plaintext body (or the body as received when unsealed). Runs after every
    /// check, the signatures' over the exact bytes received included: only then may the
    /// buffer change.
    pub(super) fn open(&self, c: &Checked, bytes: Bytes) -> Result<Bytes, Rejection> {
        let (Some(key), Some(seal)) = (&c.seal_key, &c.header.seal) else {
            if bytes.get(c.body_at.clone()).is_none() {
                return Err(c.fail(RejectReason::Malformed));
            }
            return Ok(bytes.slice(c.body_at.clone()));
        };
        let opener = self
            .config
            .opener
            .as_deref()
            .ok_or_else(|| c.fail(RejectReason::UnknownKey))?;
        match bytes.try_into_mut() {
            Ok(buf) => open_in_place(opener, key, seal, c, buf),
            Err(shared) => open_copy(opener, key, seal, c, &shared),
        }
    }
}

/// Opens the body inside `buf`, the envelope received, which nothing else references: the
/// plaintext is a slice of it, and the whole buffer is wiped when the last slice drops (or
/// at once, when opening fails).
fn open_in_place(
    opener: &dyn Opener,
    key: &KeyId,
    seal: &SealInfo,
    c: &Checked,
    buf: BytesMut,
) -> Result<Bytes, Rejection> {
    let mut owner = WipedBytes::new(buf);
    let (aad, sealed) = header_and_body(owner.as_mut_slice(), &c.header_at, &c.body_at)
        .ok_or_else(|| c.fail(RejectReason::Malformed))?;
    let len = opener
        .open_in_place(key, &seal.nonce, aad, sealed)
        .map_err(|e| c.fail(key_reason(e)))?;
    // An opener cannot make the plaintext longer than what it opened.
    if len > c.body_at.len() {
        return Err(c.fail(RejectReason::OpenFailed));
    }
    let start = c.body_at.start;
    Ok(Bytes::from_owner(owner).slice(start..start + len))
}

/// Opens the body of `shared`, an envelope something else also references, into a buffer
/// of its own.
fn open_copy(
    opener: &dyn Opener,
    key: &KeyId,
    seal: &SealInfo,
    c: &Checked,
    shared: &[u8],
) -> Result<Bytes, Rejection> {
    let (Some(aad), Some(sealed)) = (
        shared.get(c.header_at.clone()),
        shared.get(c.body_at.clone()),
    ) else {
        return Err(c.fail(RejectReason::Malformed));
    };
    let plain = opener
        .open(key, &seal.nonce, aad, sealed)
        .map_err(|e| c.fail(key_reason(e)))?;
    Ok(Bytes::from_owner(WipedBytes::new(plain)))
}

/// The header (the associated data) and the sealed body, two disjoint parts of `buf` in
/// either order.
fn header_and_body<'b>(
    buf: &'b mut [u8],
    header: &Range<usize>,
    body: &Range<usize>,
) -> Option<(&'b [u8], &'b mut [u8])> {
    if header.end <= body.start {
        let (before, from_body) = buf.split_at_mut_checked(body.start)?;
        Some((
            before.get(header.clone())?,
            from_body.get_mut(..body.len())?,
        ))
    } else if body.end <= header.start {
        let (before, from_header) = buf.split_at_mut_checked(header.start)?;
        Some((
            from_header.get(..header.len())?,
            before.get_mut(body.clone())?,
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_body_are_found_in_either_order() {
        let mut buf = *b"..hhh..bbbb..";
        let (h, b) = header_and_body(&mut buf, &(2..5), &(7..11)).unwrap();
        assert_eq!((h, &*b), (&b"hhh"[..], &b"bbbb"[..]));
        let mut buf = *b"bbbb..hhh";
        let (h, b) = header_and_body(&mut buf, &(6..9), &(0..4)).unwrap();
        assert_eq!((h, &*b), (&b"hhh"[..], &b"bbbb"[..]));
        assert!(
            header_and_body(&mut buf, &(2..6), &(0..4)).is_none(),
            "overlap"
        );
        assert!(
            header_and_body(&mut buf, &(0..2), &(4..12)).is_none(),
            "past the end"
        );
    }
}
