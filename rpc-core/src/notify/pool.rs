//! [`PoolClaim`]: one security runtime listens to a notification address in one pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Error;
use crate::security::Security;
use crate::transport::NotifyListenSpec;

/// Which pool listens to an address on one [`Security`] (by its address in memory),
/// with how many listeners.
type Claims = HashMap<(usize, String), (String, usize)>;

fn claims() -> std::sync::MutexGuard<'static, Claims> {
    static CLAIMS: OnceLock<Mutex<Claims>> = OnceLock::new();
    CLAIMS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// One security runtime listens to an address in one pool only: every pool gets every
/// notification, and a second pool on the same runtime (one replay guard) would refuse
/// each copy as a replay. Released when the listener goes away.
#[derive(Debug)]
pub(crate) struct PoolClaim {
    keys: Vec<(usize, String)>,
}

impl PoolClaim {
    pub(crate) fn take(security: &Arc<Security>, spec: &NotifyListenSpec) -> Result<Self, Error> {
        let me = Arc::as_ptr(security) as usize;
        let keys: Vec<(usize, String)> = spec
            .served_addresses()
            .into_iter()
            .map(|dst| (me, dst))
            .collect();
        let mut claims = claims();
        if let Some((dst, (pool, _))) = keys.iter().find_map(|k| {
            claims
                .get(k)
                .filter(|(p, _)| *p != spec.pool)
                .map(|c| (&k.1, c))
        }) {
            return Err(Error::Invalid(format!(
                "this node already listens to {dst} in pool {pool:?}: one node (one replay \
                 guard) listens to an address in one pool; use another node for pool {:?}",
                spec.pool
            )));
        }
        for k in &keys {
            claims
                .entry(k.clone())
                .or_insert_with(|| (spec.pool.clone(), 0))
                .1 += 1;
        }
        Ok(Self { keys })
    }
}

impl Drop for PoolClaim {
    fn drop(&mut self) {
        let mut claims = claims();
        for k in &self.keys {
            if let Some(c) = claims.get_mut(k) {
                c.1 = c.1.saturating_sub(1);
                if c.1 == 0 {
                    claims.remove(k);
                }
            }
        }
    }
}
