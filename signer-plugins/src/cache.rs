//! A small bounded cache of derived keys, keyed by key id.
//!
//! Deriving is cheap (one HKDF, or one scalar multiplication for a public key) but not free;
//! the cache saves it on the hot path. Key ids reach it only after the rotation table has
//! accepted them, so an attacker cannot fill it with made-up ids; when full it is simply
//! emptied.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use sealrpc_core::wire::KeyId;

/// Default number of entries before the cache is emptied.
pub const DEFAULT_CAPACITY: usize = 16 * 1024;

/// A bounded map from key id to a shared value (a secret key or a public key).
pub struct KeyCache<V> {
    map: Mutex<HashMap<KeyId, Arc<V>>>,
    capacity: usize,
}

impl<V> KeyCache<V> {
    /// An empty cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The cached value for `key_id`, computing and caching it with `make` if absent.
    pub fn get_or_try_insert<E>(
        &self,
        key_id: &KeyId,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if let Some(v) = self.lock().get(key_id) {
            return Ok(Arc::clone(v));
        }
        // Computed outside the lock: two threads may both derive, which is harmless.
        let value = Arc::new(make()?);
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key_id.clone(), Arc::clone(&value));
        Ok(value)
    }

    /// Forgets every entry (e.g. after a revocation, to drop key material early).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, Arc<V>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<V> Default for KeyCache<V> {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl<V> fmt::Debug for KeyCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}
