//! The signature input: `"sealrpc-sig-v1\0" || SHA-256(u64_be(len(h)) || h || b)`.
//!
//! Signing a 47-byte digest instead of the whole message means a large body is hashed once
//! (SHA-256, with the CPU's SHA extensions where present) rather than twice by ed25519's
//! internal SHA-512.

use sha2::{Digest, Sha256};

/// The 15-byte domain separation prefix (`sealrpc-sig-v1` and a NUL).
pub const SIGNATURE_DOMAIN: &[u8; 15] = b"sealrpc-sig-v1\0";

/// Length of the signature input in bytes.
pub const SIGNATURE_INPUT_LEN: usize = 15 + 32;

/// The exact bytes an `ed25519-sha256` signature signs, for header bytes `h` and body bytes `b`.
pub fn signature_input(h: &[u8], b: &[u8]) -> [u8; SIGNATURE_INPUT_LEN] {
    let mut hasher = Sha256::new();
    hasher.update((h.len() as u64).to_be_bytes());
    hasher.update(h);
    hasher.update(b);
    let digest = hasher.finalize();
    let mut out = [0u8; SIGNATURE_INPUT_LEN];
    out[..15].copy_from_slice(SIGNATURE_DOMAIN);
    out[15..].copy_from_slice(&digest);
    out
}
