//! # sealrpc-signers
//!
//! The security plugins of sealrpc: the hooks [`sealrpc_core::security`] defines,
//! implemented with ed25519 signatures and XChaCha20-Poly1305 seals, over the K1/K2/K3
//! key hierarchy derived from one control-plane master secret.
//!
//! - A control-plane service builds its [`sealrpc_core::security::SecurityConfig`] with
//!   [`ControlPlaneKeys::security`].
//! - A guest builds its own from the bundle it received at provisioning:
//!   [`GuestKeys::from_bundle`] then [`GuestKeys::security`].
//!
//! `docs/key-bundle.md` describes the files, `docs/threat-model.md` what they protect.
#![forbid(unsafe_code)]

mod assemble;
mod backends;
pub mod bundle;
pub mod cache;
pub mod control;
pub mod derive;
pub mod derived;
mod dirlock;
pub mod ed25519;
pub mod error;
pub mod guest;
pub mod inspect;
mod keyfile;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod rekey;
pub mod rotation;
pub mod rotation_file;
pub mod secret;
pub mod source;
pub mod watcher;
pub mod xchacha;

pub use backends::CryptoBackends;
pub use bundle::GuestBundle;
pub use control::ControlPlaneKeys;
pub use derive::derive_key;
pub use derived::DerivedKeys;
pub use dirlock::{DEFAULT_LOCK_TIMEOUT, LOCK_FILE};
pub use ed25519::{
    ED25519_ALGORITHM, Ed25519Signer, Ed25519Verifier, PinnedPublicKeys, PublicKeys,
    RotatingSigner, SigningKeys,
};
pub use error::Error;
pub use guest::GuestKeys;
pub use rotation::RotationTable;
pub use rotation_file::RotationFile;
pub use secret::{MasterSecret, SecretKey};
pub use source::{Fetched, RotationSource, StateVersion};
pub use watcher::{ReloadStats, RotationWaker, RotationWatcher, WatchOptions};
pub use xchacha::{AeadKeys, XChaChaOpener, XChaChaSealer};
