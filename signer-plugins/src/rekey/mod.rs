//! Rekeying over the bus: the control plane delivers guest g's new bundle to g's agent,
//! which installs it (file and memory) and acknowledges under its new keys.
//!
//! Two reserved methods in namespace [`NAMESPACE`] on the guest agent's server, enabled
//! with one call, [`RekeyServerExt::rekey_agent`]:
//!
//! 1. [`PREPARE`]: the guest makes a fresh X25519 key pair, keeps the secret in memory
//!    (one at a time, for [`PENDING_TTL`]) and answers its public key and current epoch.
//!    The answer travels under the guest's current K3 and signature.
//! 2. [`INSTALL`]: the control plane wraps the new bundle to that key (X25519, HKDF-SHA256
//!    with the label [`wrap::WRAP_LABEL`] bound to guest, epoch and both public keys,
//!    XChaCha20-Poly1305); the call itself travels under the current K2 and a
//!    control-plane signature. The guest opens it with the secret it kept (then forgets
//!    it), checks it is its own bundle at the announced, newer epoch, replaces its bundle
//!    file atomically, installs it in memory, and answers with a signature by its **new**
//!    signing key over [`wrap::ACK_LABEL`], guest, epoch and the control plane's public
//!    key; the answer is sealed under the new K3.
//!
//! Only a signed control-plane service principal may call either method. The control
//! plane side is [`Rekey`]: one guest with bounded retries ([`RetryPolicy`]), or the whole
//! fleet with bounded concurrency and a progress callback ([`Rekey::deliver_all`]).
//! Residual risk and the operator's remedy: docs/key-bundle.md, "Rekeying over the bus".

mod agent;
mod deliver;
pub(crate) mod wrap;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use agent::{RekeyAgent, RekeyServerExt};
pub use deliver::{BulkReport, Delivered, Progress, Rekey, RetryPolicy};
pub use wrap::{ACK_LABEL, WRAP_LABEL};

/// The reserved namespace of the rekey methods.
pub const NAMESPACE: &str = "sealrpc.keys";
/// Method 1: the guest's fresh wrap key.
pub const PREPARE: &str = "prepare_rekey";
/// Method 2: the wrapped bundle; answered with the guest's proof under its new key.
pub const INSTALL: &str = "install_bundle";
/// The guest agents' topic by default.
pub const DEFAULT_AGENT_TOPIC: &str = "guestagent";
/// How long a guest keeps its fresh wrap key waiting for the bundle.
pub const PENDING_TTL: Duration = Duration::from_secs(300);

/// Arguments of [`PREPARE`] (none; a map for future fields).
#[derive(Debug, Default, Serialize, Deserialize)]
struct PrepareArgs {}

/// The answer to [`PREPARE`].
#[derive(Debug, Serialize, Deserialize)]
struct PrepareReply {
    /// The guest's epoch now.
    epoch: u64,
    /// Its fresh X25519 public key (32 bytes).
    #[serde(with = "serde_bytes")]
    eph: Vec<u8>,
}

/// Arguments of [`INSTALL`].
#[derive(Serialize, Deserialize)]
struct InstallArgs {
    /// The new bundle's epoch.
    epoch: u64,
    /// The guest's fresh public key this bundle is wrapped to (32 bytes).
    #[serde(with = "serde_bytes")]
    guest_eph: Vec<u8>,
    /// The control plane's fresh public key (32 bytes).
    #[serde(with = "serde_bytes")]
    cp_eph: Vec<u8>,
    /// The AEAD nonce (24 bytes).
    #[serde(with = "serde_bytes")]
    n: Vec<u8>,
    /// The wrapped bundle JSON: ciphertext || tag.
    #[serde(with = "serde_bytes")]
    ct: Vec<u8>,
}

/// The answer to [`INSTALL`].
#[derive(Debug, Serialize, Deserialize)]
struct InstallAck {
    /// The epoch installed.
    epoch: u64,
    /// ed25519 signature by `sig/guest:<id>/<epoch>` over the ack message (64 bytes).
    #[serde(with = "serde_bytes")]
    proof: Vec<u8>,
}

fn array<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    v.try_into().ok()
}
