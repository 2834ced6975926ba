//! The guest side of rekeying: the two reserved methods on the guest agent's server.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ed25519_dalek::{Signer as _, SigningKey};
use sealrpc_core::ServerBuilder;
use sealrpc_core::{Caller, Context, HandlerError, Method, Principal};

use super::wrap::{self, Ephemeral, Wrapped};
use super::{
    INSTALL, InstallAck, InstallArgs, NAMESPACE, PENDING_TTL, PREPARE, PrepareArgs, PrepareReply,
    array,
};
use crate::bundle::GuestBundle;
use crate::guest::GuestKeys;

/// A guest agent's rekey endpoint: its keys, where its bundle file lives, and the fresh
/// wrap key of the delivery in progress. Cheap to clone.
#[derive(Clone)]
pub struct RekeyAgent {
    inner: Arc<Inner>,
}

struct Inner {
    keys: GuestKeys,
    bundle_file: Option<PathBuf>,
    pending: Mutex<Option<(Ephemeral, Instant)>>,
    installed: AtomicU64,
}

impl fmt::Debug for RekeyAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RekeyAgent")
            .field("principal", &self.inner.keys.principal().as_str())
            .field("bundle_file", &self.inner.bundle_file)
            .field("installed", &self.installed())
            .finish_non_exhaustive()
    }
}

impl RekeyAgent {
    /// The endpoint for `keys` (memory only; see [`Self::bundle_file`]).
    pub fn new(keys: GuestKeys) -> Self {
        Self::build(keys, None)
    }

    /// Also replaces `path` atomically (mode 0600) with every bundle installed, before
    /// the keys in memory change, so that a restart comes back with the new keys.
    pub fn bundle_file(self, path: impl Into<PathBuf>) -> Self {
        let keys = self.inner.keys.clone();
        Self::build(keys, Some(path.into()))
    }

    fn build(keys: GuestKeys, bundle_file: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys,
                bundle_file,
                pending: Mutex::new(None),
                installed: AtomicU64::new(0),
            }),
        }
    }

    /// Bundles installed so far.
    pub fn installed(&self) -> u64 {
        self.inner.installed.load(Ordering::Relaxed)
    }
}

/// Only a control-plane *service* proven by its signature may rekey a guest: a K2 seal
/// alone proves only "the control plane", and a leaked old bundle holds that K2.
fn control_service_signed(c: &Caller) -> bool {
    c.signed()
        && c.principal()
            .is_some_and(|p| p.is_control_plane() && *p != Principal::control())
}

/// Enables the rekey methods on a guest agent's server builder.
pub trait RekeyServerExt: Sized {
    /// Registers [`PREPARE`] and [`INSTALL`] in namespace [`NAMESPACE`], served by
    /// `agent`, callable only by a signed control-plane service.
    fn rekey_agent(self, agent: &RekeyAgent) -> Self;
}

impl<L> RekeyServerExt for ServerBuilder<L> {
    fn rekey_agent(self, agent: &RekeyAgent) -> Self {
        let a = Arc::clone(&agent.inner);
        let prepare = Method::new(PREPARE, move |_ctx: Context, _: PrepareArgs| {
            let a = Arc::clone(&a);
            async move { a.prepare() }
        })
        .namespace(NAMESPACE)
        .authorize_caller(control_service_signed);
        let a = Arc::clone(&agent.inner);
        let install = Method::new(INSTALL, move |_ctx: Context, args: InstallArgs| {
            let a = Arc::clone(&a);
            async move { a.install(args).await }
        })
        .namespace(NAMESPACE)
        .authorize_caller(control_service_signed);
        self.method(prepare).method(install)
    }
}

fn refused(msg: &str) -> HandlerError {
    HandlerError::new("RekeyRefused", msg)
}

impl Inner {
    fn prepare(&self) -> Result<PrepareReply, HandlerError> {
        let eph = Ephemeral::generate().map_err(|_| HandlerError::remote("no randomness"))?;
        let public = eph.public();
        // One delivery at a time: a newer prepare replaces (and wipes) an older key.
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some((eph, Instant::now()));
        Ok(PrepareReply {
            epoch: self.keys.epoch(),
            eph: public.to_vec(),
        })
    }

    async fn install(self: Arc<Self>, args: InstallArgs) -> Result<InstallAck, HandlerError> {
        let bad = |what: &str| HandlerError::bad_request(format!("{what} has the wrong length"));
        let guest_eph = array::<32>(&args.guest_eph).ok_or_else(|| bad("guest_eph"))?;
        let w = Wrapped {
            cp_eph: array::<32>(&args.cp_eph).ok_or_else(|| bad("cp_eph"))?,
            nonce: array::<24>(&args.n).ok_or_else(|| bad("n"))?,
            ciphertext: args.ct,
        };
        let me = self.keys.principal().clone();
        if args.epoch <= self.keys.epoch() {
            return Err(refused("the bundle is not newer than the keys installed"));
        }
        // The fresh key is used once: taken here whatever happens next.
        let eph = {
            let mut slot = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match slot.take() {
                Some((eph, at)) if eph.is(&guest_eph) && at.elapsed() < PENDING_TTL => eph,
                other => {
                    // Not ours (a stale or replayed delivery): keep a live one.
                    *slot = other.filter(|(_, at)| at.elapsed() < PENDING_TTL);
                    return Err(refused("no rekey in progress for that key"));
                }
            }
        };
        let plain = wrap::unwrap(&eph, &w, &me, args.epoch)
            .ok_or_else(|| refused("the wrapped bundle does not open"))?;
        drop(eph);
        let text = std::str::from_utf8(&plain).map_err(|_| refused("the bundle is not UTF-8"))?;
        let bundle = GuestBundle::from_json(text).map_err(|why| refused(&why))?;
        if bundle.principal() != &me || bundle.epoch() != args.epoch {
            return Err(refused(
                "the bundle is not this guest's at the announced epoch",
            ));
        }
        let seed = bundle
            .signing_seed()
            .ok_or_else(|| refused("the bundle has no signing key"))?;
        let proof = SigningKey::from_bytes(seed.as_bytes())
            .sign(&wrap::ack_message(&me, args.epoch, &w.cp_eph))
            .to_bytes();
        // File first: if it cannot be written, nothing changes and the control plane
        // retries; once written, a restart comes back with the new keys.
        if let Some(path) = self.bundle_file.clone() {
            let b = bundle.clone();
            tokio::task::spawn_blocking(move || b.save_replace(&path))
                .await
                .map_err(|_| HandlerError::remote("bundle write task failed"))?
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot replace the bundle file");
                    HandlerError::remote("the bundle file could not be replaced")
                })?;
        }
        self.keys
            .install_bundle(&bundle)
            .map_err(|e| refused(&e.to_string()))?;
        self.installed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(principal = %me, epoch = args.epoch, "new key bundle installed");
        Ok(InstallAck {
            epoch: args.epoch,
            proof: proof.to_vec(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn only_a_signed_control_plane_service_passes() {
        // `Caller::new` is an unsigned caller: a k2 seal alone (which a leaked old bundle
        // can forge) never suffices, whoever it claims to be.
        for p in [
            Principal::service("conductor"),
            Some(Principal::control()),
            Principal::guest("g1"),
            None,
        ] {
            assert!(!control_service_signed(&Caller::new(p)));
        }
    }
}
