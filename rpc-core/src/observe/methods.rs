//! The method names a server of this process registered: the only ones a server-side
//! metric carries as its `method` label. A request's method name is the peer's choice, and
//! a peer (an untrusted guest, or anyone in Permissive or Off) must not be able to grow the
//! exporter's label set without bound.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use metrics::SharedString;

use super::UNKNOWN_METHOD;

/// Shared, so that a label made from one costs a reference count, not an allocation.
static KNOWN: RwLock<BTreeSet<Arc<str>>> = RwLock::new(BTreeSet::new());

/// Adds the methods of a server being built (bounded by the application's code).
pub(crate) fn register_methods<'a>(methods: impl IntoIterator<Item = &'a str>) {
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    for m in methods {
        if !known.contains(m) {
            known.insert(Arc::from(m));
        }
    }
}

/// `method` when some server registered it, else [`UNKNOWN_METHOD`].
pub(crate) fn label(method: &str) -> SharedString {
    let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    match known.get(method) {
        Some(m) => SharedString::from_shared(Arc::clone(m)),
        None => SharedString::const_str(UNKNOWN_METHOD),
    }
}
