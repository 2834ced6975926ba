//! One place that assembles a node's hooks into rpc-core's [`SecurityConfig`], for the
//! control plane and for guests alike: only where the keys come from differs.

use std::sync::Arc;

use sealrpc_core::security::KeyResolver;
use sealrpc_core::security::SecurityConfig;

use crate::ed25519::{Ed25519Verifier, PublicKeys, RotatingSigner, SigningKeys};
use crate::xchacha::{AeadKeys, XChaChaOpener, XChaChaSealer};

/// `node` resolves keys and signs (a rotating ed25519 signer, when it holds a seed);
/// `public` verifies with ed25519; `aead` seals and opens with XChaCha20-Poly1305.
/// rpc-core's default policy applies (sign and seal everything, enforce).
pub(crate) fn security_config<N>(
    node: &N,
    public: Arc<dyn PublicKeys>,
    aead: Arc<dyn AeadKeys>,
) -> SecurityConfig
where
    N: KeyResolver + SigningKeys + Clone + 'static,
{
    let resolver: Arc<dyn KeyResolver> = Arc::new(node.clone());
    let config = SecurityConfig::new(Arc::clone(&resolver));
    let config = match RotatingSigner::new(Arc::new(node.clone())) {
        Some(signer) => config.signer(Arc::new(signer)),
        None => config,
    };
    config
        .verifier(Arc::new(Ed25519Verifier::new(public, resolver)))
        .sealer(Arc::new(XChaChaSealer::new(Arc::clone(&aead))))
        .opener(Arc::new(XChaChaOpener::new(aead)))
}
