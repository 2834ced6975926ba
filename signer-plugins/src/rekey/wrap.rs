//! The new bundle's wrap: X25519 between a fresh key of the guest and a fresh key of the
//! control plane, HKDF-SHA256 with a versioned label bound to the delivery, then
//! XChaCha20-Poly1305. Whoever holds the guest's *old* bundle can open the rekey messages
//! (they travel under the old K2) but not the bundle inside: that needs the guest's fresh
//! X25519 secret, which never leaves the guest's memory. No primitive is written here.

use hkdf::Hkdf;
use sealrpc_core::Principal;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::secret::SecretKey;
use crate::xchacha::{open_with, seal_with};

/// HKDF info prefix (and AEAD associated data prefix) of the wrap, version 1.
pub const WRAP_LABEL: &[u8] = b"sealrpc-rekey-wrap-v1\0";

/// Domain of the guest's acknowledgement signature, version 1.
pub const ACK_LABEL: &[u8] = b"sealrpc-rekey-ack-v1\0";

/// A fresh X25519 key pair (the secret is wiped on drop by x25519-dalek).
pub(crate) struct Ephemeral {
    secret: StaticSecret,
    public: [u8; 32],
}

impl Ephemeral {
    pub(crate) fn generate() -> Result<Self, crate::Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|e| crate::Error::Random(e.to_string()))?;
        let secret = StaticSecret::from(*seed);
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Self { secret, public })
    }

    pub(crate) fn public(&self) -> [u8; 32] {
        self.public
    }

    /// True when `other` is this key's public half (constant time).
    pub(crate) fn is(&self, other: &[u8; 32]) -> bool {
        bool::from(self.public.ct_eq(other))
    }

    /// The wrap key and associated data between this key and `peer`, or None when the
    /// exchange is not contributory (a low-order `peer` point: all-zero shared secret).
    fn wrap_key(
        &self,
        peer: &[u8; 32],
        guest_eph: &[u8; 32],
        cp_eph: &[u8; 32],
        guest: &Principal,
        epoch: u64,
    ) -> Option<(SecretKey, Vec<u8>)> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer));
        if !shared.was_contributory() {
            return None;
        }
        let context = context(guest_eph, cp_eph, guest, epoch);
        let hk = Hkdf::<Sha256>::new(None, shared.as_bytes());
        let mut okm = Zeroizing::new([0u8; 32]);
        hk.expand(&context, &mut okm[..]).ok()?;
        Some((SecretKey::from_bytes(*okm), context))
    }
}

/// Label, guest, epoch and both public keys: binds the wrap to this one delivery.
fn context(guest_eph: &[u8; 32], cp_eph: &[u8; 32], guest: &Principal, epoch: u64) -> Vec<u8> {
    let p = guest.as_str().as_bytes();
    let mut c = Vec::with_capacity(WRAP_LABEL.len() + 8 + p.len() + 8 + 64);
    c.extend_from_slice(WRAP_LABEL);
    c.extend_from_slice(&(p.len() as u64).to_be_bytes());
    c.extend_from_slice(p);
    c.extend_from_slice(&epoch.to_be_bytes());
    c.extend_from_slice(guest_eph);
    c.extend_from_slice(cp_eph);
    c
}

/// A wrapped bundle as it travels.
pub(crate) struct Wrapped {
    pub(crate) cp_eph: [u8; 32],
    pub(crate) nonce: [u8; 24],
    pub(crate) ciphertext: Vec<u8>,
}

/// Control plane: wraps `plaintext` (the bundle's JSON) to the guest's fresh key.
pub(crate) fn wrap(
    guest_eph: &[u8; 32],
    guest: &Principal,
    epoch: u64,
    plaintext: &[u8],
) -> Result<Wrapped, &'static str> {
    let mine = Ephemeral::generate().map_err(|_| "random generator failed")?;
    let (key, aad) = mine
        .wrap_key(guest_eph, guest_eph, &mine.public, guest, epoch)
        .ok_or("the guest's key is not a usable X25519 public key")?;
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|_| "random generator failed")?;
    let ciphertext = seal_with(&key, &nonce, &aad, plaintext).map_err(|_| "seal failed")?;
    Ok(Wrapped {
        cp_eph: mine.public,
        nonce,
        ciphertext,
    })
}

/// Guest: opens a wrapped bundle with its fresh key (None on any failure).
pub(crate) fn unwrap(
    mine: &Ephemeral,
    w: &Wrapped,
    guest: &Principal,
    epoch: u64,
) -> Option<Zeroizing<Vec<u8>>> {
    let (key, aad) = mine.wrap_key(&w.cp_eph, &mine.public, &w.cp_eph, guest, epoch)?;
    open_with(&key, &w.nonce, &aad, &w.ciphertext)
        .ok()
        .map(Zeroizing::new)
}

/// What the guest signs with its *new* signing key to prove it installed the bundle.
pub(crate) fn ack_message(guest: &Principal, epoch: u64, cp_eph: &[u8; 32]) -> Vec<u8> {
    let p = guest.as_str().as_bytes();
    let mut m = Vec::with_capacity(ACK_LABEL.len() + 8 + p.len() + 8 + 32);
    m.extend_from_slice(ACK_LABEL);
    m.extend_from_slice(&(p.len() as u64).to_be_bytes());
    m.extend_from_slice(p);
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(cp_eph);
    m
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    fn guest() -> Principal {
        Principal::guest("g1").unwrap()
    }

    #[test]
    fn only_the_fresh_key_opens_the_wrap_and_everything_is_bound() {
        let mine = Ephemeral::generate().unwrap();
        let w = wrap(&mine.public(), &guest(), 2, b"{\"bundle\":1}").unwrap();
        assert_eq!(
            unwrap(&mine, &w, &guest(), 2).unwrap().as_slice(),
            b"{\"bundle\":1}"
        );
        // A holder of everything on the wire and of the old bundle, but not of the
        // guest's fresh secret: cannot open it.
        let other = Ephemeral::generate().unwrap();
        assert!(unwrap(&other, &w, &guest(), 2).is_none());
        // Bound to the guest and the epoch.
        assert!(unwrap(&mine, &w, &Principal::guest("g2").unwrap(), 2).is_none());
        assert!(unwrap(&mine, &w, &guest(), 3).is_none());
        // Tampering with any part fails.
        let mut t = Wrapped {
            cp_eph: w.cp_eph,
            nonce: w.nonce,
            ciphertext: w.ciphertext.clone(),
        };
        t.ciphertext[0] ^= 1;
        assert!(unwrap(&mine, &t, &guest(), 2).is_none());
        t.ciphertext[0] ^= 1;
        t.nonce[0] ^= 1;
        assert!(unwrap(&mine, &t, &guest(), 2).is_none());
        t.nonce[0] ^= 1;
        t.cp_eph[0] ^= 1;
        assert!(unwrap(&mine, &t, &guest(), 2).is_none());
    }

    #[test]
    fn a_low_order_point_is_refused() {
        // The all-zero point gives an all-zero shared secret: not contributory.
        assert!(wrap(&[0u8; 32], &guest(), 2, b"x").is_err());
        let mine = Ephemeral::generate().unwrap();
        let w = Wrapped {
            cp_eph: [0u8; 32],
            nonce: [0u8; 24],
            ciphertext: vec![0u8; 32],
        };
        assert!(unwrap(&mine, &w, &guest(), 2).is_none());
    }
}
