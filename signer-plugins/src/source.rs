//! Where a running service's rotation state comes from: the seam between the
//! [`crate::RotationWatcher`] and the store that holds the state.
//!
//! Today the only store is the locked key-directory file ([`crate::RotationFile`]). A
//! shared store (Redis, PostgreSQL) or a bus announcement that says "look now" plugs in
//! here without changing the watcher or the tables it feeds.

use std::fmt;

use crate::error::Error;
use crate::rotation::RotationTable;

/// An opaque version of the rotation state: equal versions mean equal state. A file
/// store uses the SHA-256 of the content; a database may use a revision counter.
#[derive(Clone, PartialEq, Eq)]
pub struct StateVersion(Vec<u8>);

impl StateVersion {
    /// A version made of `bytes` (a digest or an encoded revision number).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The version's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for StateVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len().min(8);
        write!(f, "StateVersion({}..)", hex::encode(&self.0[..n]))
    }
}

/// What one look at the source found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Fetched {
    /// The state is still the version already applied.
    Unchanged,
    /// A different state: its version and the parsed, validated table.
    Changed(StateVersion, RotationTable),
}

/// A store of rotation state that a running service polls.
///
/// `fetch` may block (file or network I/O): the watcher calls it off the async threads.
/// It must validate what it returns (an unparsable or insecure state is an `Err`, which
/// the watcher counts and logs while keeping the state it has: it never fails open).
pub trait RotationSource: Send + Sync + fmt::Debug + 'static {
    /// A short description for logs (e.g. the file's path); never a secret.
    fn describe(&self) -> String;

    /// The current state, or [`Fetched::Unchanged`] when it is still `applied`.
    fn fetch(&self, applied: Option<&StateVersion>) -> Result<Fetched, Error>;
}

/// A shared source (one store handle used by a watcher and by the code that writes).
impl<S: RotationSource + ?Sized> RotationSource for std::sync::Arc<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }

    fn fetch(&self, applied: Option<&StateVersion>) -> Result<Fetched, Error> {
        (**self).fetch(applied)
    }
}
