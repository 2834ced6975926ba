//! The key hierarchy: every key is `HKDF-SHA256(salt = "sealrpc-v1", ikm = master,
//! info = key id)`, 32 bytes. A key id on the wire tells the control plane exactly which
//! key to derive, so it needs no key database.

use hkdf::Hkdf;
use sealrpc_core::wire::KeyId;
use sha2::Sha256;

use crate::secret::{MasterSecret, SecretKey};

/// The HKDF salt: the 10 ASCII bytes `sealrpc-v1`.
pub const DERIVE_SALT: &[u8; 10] = b"sealrpc-v1";

/// Derives the key named by `key_id` from the master secret: an AEAD key for `k1`, `k2`,
/// `k3` and `kb` ids, an ed25519 seed for `sig` ids.
pub fn derive_key(master: &MasterSecret, key_id: &KeyId) -> SecretKey {
    let hk = Hkdf::<Sha256>::new(Some(DERIVE_SALT), master.as_bytes());
    let mut out = SecretKey::from_bytes([0u8; 32]);
    // HKDF-SHA256 refuses only outputs longer than 255 * 32 bytes; 32 bytes cannot fail,
    // and a silent all-zero key would be far worse than a panic.
    #[allow(clippy::expect_used)]
    hk.expand(key_id.as_str().as_bytes(), out.bytes_mut())
        .expect("a 32-byte HKDF-SHA256 output is always valid");
    out
}
