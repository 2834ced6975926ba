//! The security hooks a consumer registers: small traits, in the style of rustls' crypto
//! provider. `sealrpc-signers` implements them with ed25519 and XChaCha20-Poly1305; an HSM,
//! a KMS or another key distribution can implement them too.
//!
//! rpc-core owns the *rules* (what a key id proves, which direction a key may travel, the
//! check order); the hooks own key material and primitives.

use std::fmt::Debug;

use crate::principal::Principal;
use crate::wire::KeyId;

/// Why a key operation failed. Deliberately coarse: a failed verification or decryption
/// says nothing more than that it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No such key is known here (or the receiver may not hold it).
    #[error("unknown key")]
    UnknownKey,
    /// The key's principal has been revoked.
    #[error("revoked key")]
    Revoked,
    /// The key's epoch is older than the current one and past the grace window.
    #[error("stale key epoch")]
    Stale,
    /// A signature did not verify (or was not of the algorithm's size).
    #[error("bad signature")]
    BadSignature,
    /// The AEAD did not open (wrong key, tampered header or body).
    #[error("cannot open sealed body")]
    OpenFailed,
    /// The key or key material is unusable.
    #[error("key unavailable")]
    Unavailable,
}

/// Signs outgoing envelopes.
pub trait Signer: Send + Sync + Debug {
    /// The signing key's id, `sig/<principal>/<epoch>`.
    fn key_id(&self) -> KeyId;
    /// The algorithm id written into the signature item, e.g. `ed25519-sha256`.
    fn algorithm(&self) -> &'static str;
    /// Signs the signature input (see [`crate::wire::signature_input`]).
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Signs and names the key used, from one snapshot: a signer that rotates overrides
    /// this so that a rotation between the two calls cannot mislabel a signature.
    fn sign_with_id(&self, input: &[u8]) -> Result<(KeyId, Vec<u8>), KeyError> {
        Ok((self.key_id(), self.sign(input)?))
    }
}

/// Verifies signature items of one algorithm.
pub trait Verifier: Send + Sync + Debug {
    /// The algorithm id this verifier knows; items of other algorithms are skipped.
    fn algorithm(&self) -> &'static str;
    /// Verifies `signature` over `input` with the public key named by `key_id`, refusing
    /// unknown, revoked and stale keys. Must use strict verification.
    fn verify(&self, key_id: &KeyId, input: &[u8], signature: &[u8]) -> Result<(), KeyError>;
}

/// Seals bodies (XChaCha20-Poly1305 in `sealrpc-signers`).
pub trait Sealer: Send + Sync + Debug {
    /// Encrypts `plaintext` under the key named by `key_id` with `aad` as associated data,
    /// returning ciphertext || tag.
    fn seal(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyError>;

    /// Length of the tag that follows the ciphertext (16 for XChaCha20-Poly1305): lets the
    /// pipeline size the envelope before sealing.
    fn tag_len(&self) -> usize {
        16
    }

    /// Like [`seal`](Self::seal), but encrypts `buf` where it lies (ciphertext and plaintext
    /// have the same length) and returns the tag, so that a body is sealed inside the
    /// envelope buffer without a copy of its own. The default goes through `seal`.
    fn seal_in_place(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut sealed = self.seal(key_id, nonce, aad, buf)?;
        if sealed.len() < buf.len() {
            return Err(KeyError::Unavailable);
        }
        let tag = sealed.split_off(buf.len());
        buf.copy_from_slice(&sealed);
        Ok(tag)
    }
}

/// Opens sealed bodies.
pub trait Opener: Send + Sync + Debug {
    /// Decrypts ciphertext || tag under the key named by `key_id`, `aad` as associated data.
    fn open(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, KeyError>;

    /// Like [`open`](Self::open), but decrypts `buf` (ciphertext || tag) where it lies and
    /// returns the plaintext's length `n`: the plaintext is then `buf[..n]`, so that a body
    /// is opened inside the envelope received without a copy of its own.
    ///
    /// On failure `buf` must hold nothing of a plaintext (left as received, or wiped). The
    /// default goes through `open` and wipes its plaintext once copied.
    fn open_in_place(
        &self,
        key_id: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, KeyError> {
        let mut plain = self.open(key_id, nonce, aad, buf)?;
        let opened = match buf.get_mut(..plain.len()) {
            Some(dst) => {
                dst.copy_from_slice(&plain);
                Ok(plain.len())
            }
            None => Err(KeyError::OpenFailed),
        };
        crate::wiped::Wipe::wipe(&mut plain);
        opened
    }
}

/// Whom a sealed message is for; decides the sealing key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Any control-plane service (k1 from the control plane, k3 from a guest).
    ControlPlane,
    /// One guest instance (k2 from the control plane).
    Guest(String),
    /// Every guest: fanout (kb).
    Guests,
}

/// Resolves which keys this node uses and whether a key id is currently acceptable.
pub trait KeyResolver: Send + Sync + Debug {
    /// This node's principal (`control:<service>` or `guest:<id>`).
    fn me(&self) -> Principal;
    /// The key id (current epoch) that seals a message from this node to `peer`, if this
    /// node holds one.
    fn seal_key_for(&self, peer: &Peer) -> Option<KeyId>;
    /// Whether `key_id` is known and currently acceptable: not revoked, and of the current
    /// epoch or the previous one within its grace window.
    fn check_key(&self, key_id: &KeyId) -> Result<(), KeyError>;
    /// Why [`Self::seal_key_for`] holds no key for `peer` (e.g. `Revoked` for a revoked
    /// guest); the send fails with this error when policy requires a seal. Default:
    /// `UnknownKey`.
    fn no_seal_key(&self, peer: &Peer) -> KeyError {
        let _ = peer;
        KeyError::UnknownKey
    }
}
