//! The method names a server of this process registered: the only ones a server-side
//! metric carries as its `method` label. A request's method name is the peer's choice, and
//! a peer (an untrusted guest, or anyone in Permissive or Off) must not be able to grow the
//! exporter's label set without bound.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::SharedString;

use super::UNKNOWN_METHOD;
use super::keys::{MethodKeys, SERVER};

/// The registered methods and their metric keys (a label made from a name costs a
/// reference count, not an allocation).
static KNOWN: RwLock<BTreeMap<Arc<str>, Arc<MethodKeys>>> = RwLock::new(BTreeMap::new());

/// Adds the methods of a server being built (bounded by the application's code).
pub(crate) fn register_methods<'a>(methods: impl IntoIterator<Item = &'a str>) {
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    for m in methods {
        if !known.contains_key(m) {
            let name: Arc<str> = Arc::from(m);
            let label = SharedString::from_shared(Arc::clone(&name));
            known.insert(name, Arc::new(MethodKeys::new(&SERVER, label)));
        }
    }
}

/// The metric keys of requests for `method`: its own when some server registered it, else
/// those of [`UNKNOWN_METHOD`].
pub(crate) fn keys(method: &str) -> Arc<MethodKeys> {
    static UNKNOWN: OnceLock<Arc<MethodKeys>> = OnceLock::new();
    let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    match known.get(method) {
        Some(keys) => Arc::clone(keys),
        None => Arc::clone(UNKNOWN.get_or_init(|| {
            let label = SharedString::const_str(UNKNOWN_METHOD);
            Arc::new(MethodKeys::new(&SERVER, label))
        })),
    }
}
