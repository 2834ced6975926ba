//! Seals: XChaCha20-Poly1305 (IETF), key = the derived key the key id names, associated
//! data = the exact header bytes, output = ciphertext || 16-byte tag. rpc-core draws the
//! random 24-byte nonce and passes it in. Sealing and opening also work in place (the
//! crate's `*_inout_detached`), inside the envelope buffer.

use std::fmt;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadInOut, Payload};
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use sealrpc_core::security::{KeyError, Opener, Sealer};
use sealrpc_core::wire::KeyId;
use zeroize::Zeroize;

use crate::secret::SecretKey;

/// Length of the Poly1305 tag appended to the ciphertext.
pub const TAG_LEN: usize = 16;

/// Where the AEAD keys come from, with the direction rules of the node: which keys it may
/// seal with and which it may open.
pub trait AeadKeys: Send + Sync + fmt::Debug {
    /// The key for sealing under `key_id`, or [`KeyError::UnknownKey`] when this node may
    /// not seal with it.
    fn sealing_key(&self, key_id: &KeyId) -> Result<Arc<SecretKey>, KeyError>;
    /// The key for opening a seal under `key_id`, or [`KeyError::UnknownKey`] when this
    /// node may not open it.
    fn opening_key(&self, key_id: &KeyId) -> Result<Arc<SecretKey>, KeyError>;
}

/// Encrypts `plaintext` with XChaCha20-Poly1305 under `key`, returning ciphertext || tag.
pub fn seal_with(
    key: &SecretKey,
    nonce: &[u8; 24],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .encrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| KeyError::Unavailable)
}

/// Decrypts ciphertext || tag with XChaCha20-Poly1305 under `key`. Any failure (short
/// input, wrong key, tampered bytes) is the same opaque [`KeyError::OpenFailed`].
pub fn open_with(
    key: &SecretKey,
    nonce: &[u8; 24],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    if ciphertext.len() < TAG_LEN {
        return Err(KeyError::OpenFailed);
    }
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| KeyError::OpenFailed)
}

/// Encrypts `buf` with XChaCha20-Poly1305 under `key` where it lies and returns the tag
/// (what the sealer does inside the envelope buffer).
pub fn seal_in_place_with(
    key: &SecretKey,
    nonce: &[u8; 24],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], KeyError> {
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .encrypt_inout_detached(&XNonce::from(*nonce), aad, buf.into())
        .map(Into::into)
        .map_err(|_| KeyError::Unavailable)
}

/// Decrypts `buf` = ciphertext || tag with XChaCha20-Poly1305 under `key` where it lies,
/// returning the plaintext's length: the plaintext is then `buf[..len]`. Any failure is
/// the same opaque [`KeyError::OpenFailed`], and leaves nothing of a plaintext in `buf`.
pub fn open_in_place_with(
    key: &SecretKey,
    nonce: &[u8; 24],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<usize, KeyError> {
    let len = buf.len().checked_sub(TAG_LEN).ok_or(KeyError::OpenFailed)?;
    let (ciphertext, tag) = buf.split_at_mut(len);
    let tag = Tag::try_from(&*tag).map_err(|_| KeyError::OpenFailed)?;
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    match cipher.decrypt_inout_detached(&XNonce::from(*nonce), aad, ciphertext.into(), &tag) {
        Ok(()) => Ok(len),
        Err(_) => {
            // chacha20poly1305 0.11 checks the tag before it decrypts, so `ciphertext` is
            // still the ciphertext here; the `aead` trait does not promise it, so it is wiped
            // anyway (a failed open is rare, and nothing then reads the buffer).
            ciphertext.zeroize();
            Err(KeyError::OpenFailed)
        }
    }
}

/// Seals bodies with the keys of an [`AeadKeys`] source.
#[derive(Debug, Clone)]
pub struct XChaChaSealer {
    keys: Arc<dyn AeadKeys>,
}

impl XChaChaSealer {
    /// A sealer over `keys`.
    pub fn new(keys: Arc<dyn AeadKeys>) -> Self {
        Self { keys }
    }
}

impl Sealer for XChaChaSealer {
    fn seal(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let key = self.keys.sealing_key(key_id)?;
        seal_with(&key, nonce, aad, plaintext)
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn seal_in_place(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<Vec<u8>, KeyError> {
        let key = self.keys.sealing_key(key_id)?;
        seal_in_place_with(&key, nonce, aad, buf).map(|tag| tag.to_vec())
    }
}

/// Opens sealed bodies with the keys of an [`AeadKeys`] source.
#[derive(Debug, Clone)]
pub struct XChaChaOpener {
    keys: Arc<dyn AeadKeys>,
}

impl XChaChaOpener {
    /// An opener over `keys`.
    pub fn new(keys: Arc<dyn AeadKeys>) -> Self {
        Self { keys }
    }
}

impl Opener for XChaChaOpener {
    fn open(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        // Key ids are public: saying "not a key I may open" leaks nothing. Everything past
        // that is the opaque OpenFailed.
        let key = self.keys.opening_key(key_id)?;
        open_with(&key, nonce, aad, ciphertext)
    }

    fn open_in_place(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, KeyError> {
        let key = self.keys.opening_key(key_id)?;
        open_in_place_with(&key, nonce, aad, buf)
    }
}
