//! Secret byte strings: the control-plane master secret and derived 32-byte keys.
//!
//! Both are zeroized on drop, print as `[REDACTED]`, and compare in constant time.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::Error;
use crate::keyfile;

/// Length of every secret here, in bytes.
pub const SECRET_LEN: usize = 32;

macro_rules! secret_type {
    ($name:ident) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}

        impl $name {
            /// Wraps 32 secret bytes.
            pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
                Self(bytes)
            }

            /// Copies 32 secret bytes from a slice; `None` when the length is not 32.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                let mut out = Self([0u8; SECRET_LEN]);
                if bytes.len() != SECRET_LEN {
                    return None;
                }
                out.0.copy_from_slice(bytes);
                Some(out)
            }

            /// Parses 64 hex digits (surrounding ASCII whitespace ignored). The error says
            /// what is wrong, never what the text was.
            pub fn from_hex(text: &str) -> Result<Self, &'static str> {
                let text = text.trim_ascii();
                if text.len() != 2 * SECRET_LEN {
                    return Err("expected 64 hex digits");
                }
                let mut out = Self([0u8; SECRET_LEN]);
                hex::decode_to_slice(text, &mut out.0).map_err(|_| "not hexadecimal")?;
                Ok(out)
            }

            /// A fresh secret from the operating system's random generator.
            pub fn generate() -> Result<Self, Error> {
                let mut out = Self([0u8; SECRET_LEN]);
                getrandom::fill(&mut out.0).map_err(|e| Error::Random(e.to_string()))?;
                Ok(out)
            }
        }
    };
}

/// The control-plane master secret: the root every key is derived from.
///
/// Only the control plane holds it. Not `Clone`: share it behind an `Arc`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterSecret([u8; SECRET_LEN]);

secret_type!(MasterSecret);

impl MasterSecret {
    /// The raw bytes (the HKDF input keying material).
    pub(crate) fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// Loads a master secret file (64 hex digits and a newline, see docs/key-bundle.md).
    ///
    /// Refuses a file that group or others can access, and reports a missing or corrupt
    /// file with a typed [`Error`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = keyfile::read_private(path)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::corrupt(path, "master secret file is not text"))?;
        Self::from_hex(text)
            .map_err(|why| Error::corrupt(path, format!("master secret file: {why}")))
    }

    /// Writes the secret to a new file with mode 0600; refuses to overwrite an existing one.
    pub fn save_new(&self, path: &Path) -> Result<(), Error> {
        let mut text = zeroize::Zeroizing::new(hex::encode(self.0));
        text.push('\n');
        keyfile::write_new_private(path, text.as_bytes())
    }
}

/// A derived 32-byte key: an AEAD key (k1, k2, k3, kb) or an ed25519 seed (sig).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; SECRET_LEN]);

secret_type!(SecretKey);

impl SecretKey {
    /// The raw key bytes. Handle with care: copies are not zeroized for you.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// Mutable access to the bytes (to fill them in place).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; SECRET_LEN] {
        &mut self.0
    }

    /// The key as 64 lowercase hex digits, in a buffer wiped on drop.
    pub fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.0))
    }
}
