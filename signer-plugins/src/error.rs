//! The crate's error type: key files, bundles, rotation state. Never carries key bytes.

use std::fmt;
use std::path::PathBuf;

use sealrpc_core::security::KeyError;

/// Everything that can go wrong outside the hot path (loading, saving, issuing keys).
///
/// Messages name the file and the problem, never the bytes of a secret. `Debug` shows file
/// modes in octal (`0o644`), as `ls -l` and `chmod` read them.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// Refused to overwrite an existing file.
    #[error("{}: already exists, refusing to overwrite", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// A secret file that group or others may read (or write).
    #[error(
        "{}: permissions {mode:04o} are too open; a key file must be readable by its owner only (chmod 600)",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file exists but its content is not what it should be.
    #[error("{}: corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content itself).
        reason: String,
    },
    /// Any other I/O failure.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random generator failed.
    #[error("random generator failed: {0}")]
    Random(String),
    /// A key id, principal or instance id that is not well formed.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// What was expected (`key id`, `instance id`, ...).
        what: &'static str,
        /// The offending text (never secret).
        value: String,
    },
    /// A key map or bundle entry that cannot be used.
    #[error("key {key_id}: {reason}")]
    BadKey {
        /// The key id (never the key).
        key_id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key directory's writer lock was not free within the bounded wait: another
    /// writer holds it (or is stuck holding it).
    #[error(
        "{}: another writer has held the key directory's lock for {} ms; retry, or find the stuck process",
        path.display(),
        waited.as_millis()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long this writer waited.
        waited: std::time::Duration,
    },
    /// An in-memory change that a reload would undo, refused on a table that a
    /// [`crate::RotationWatcher`] keeps up to date.
    #[error(
        "cannot {what} in memory: this rotation table mirrors a source and the next reload would undo it; change the source (RotationTable::update, sealrpc-keys)"
    )]
    Mirrored {
        /// The refused change.
        what: &'static str,
    },
    /// A background task was asked for outside a tokio runtime.
    #[error("no tokio runtime: start the rotation watcher from within one")]
    NoRuntime,
    /// A shared rotation store (PostgreSQL) failed or answered something unusable. The
    /// description names the store (host, database, table), never a password.
    #[error("rotation store {store}: {reason}")]
    Store {
        /// The store (host, database and table).
        store: String,
        /// What went wrong.
        reason: String,
    },
    /// A key delivery over the bus failed (see [`crate::rekey`]).
    #[error("rekey of {guest}: {reason}")]
    Rekey {
        /// The guest principal.
        guest: String,
        /// What went wrong (never key material).
        reason: String,
    },
    /// A key operation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path },
            std::io::ErrorKind::AlreadyExists => Error::AlreadyExists { path },
            _ => Error::Io { path, source },
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(what: &'static str, value: &str) -> Self {
        Error::Invalid {
            what,
            value: value.chars().take(300).collect(),
        }
    }
}

/// File permission bits, shown in octal.
struct Octal(u32);

impl fmt::Debug for Octal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0o{:03o}", self.0)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { path } => f.debug_struct("NotFound").field("path", path).finish(),
            Error::AlreadyExists { path } => {
                f.debug_struct("AlreadyExists").field("path", path).finish()
            }
            Error::InsecurePermissions { path, mode } => f
                .debug_struct("InsecurePermissions")
                .field("path", path)
                .field("mode", &Octal(*mode))
                .finish(),
            Error::Corrupt { path, reason } => f
                .debug_struct("Corrupt")
                .field("path", path)
                .field("reason", reason)
                .finish(),
            Error::Io { path, source } => f
                .debug_struct("Io")
                .field("path", path)
                .field("source", source)
                .finish(),
            Error::Random(reason) => f.debug_tuple("Random").field(reason).finish(),
            Error::Invalid { what, value } => f
                .debug_struct("Invalid")
                .field("what", what)
                .field("value", value)
                .finish(),
            Error::BadKey { key_id, reason } => f
                .debug_struct("BadKey")
                .field("key_id", key_id)
                .field("reason", reason)
                .finish(),
            Error::LockTimeout { path, waited } => f
                .debug_struct("LockTimeout")
                .field("path", path)
                .field("waited", waited)
                .finish(),
            Error::Mirrored { what } => f.debug_struct("Mirrored").field("what", what).finish(),
            Error::NoRuntime => f.write_str("NoRuntime"),
            Error::Store { store, reason } => f
                .debug_struct("Store")
                .field("store", store)
                .field("reason", reason)
                .finish(),
            Error::Rekey { guest, reason } => f
                .debug_struct("Rekey")
                .field("guest", guest)
                .field("reason", reason)
                .finish(),
            Error::Key(e) => f.debug_tuple("Key").field(e).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_permissions_debug_shows_the_mode_in_octal() {
        let e = Error::InsecurePermissions {
            path: PathBuf::from("/keys/master.key"),
            mode: 0o644,
        };
        let shown = format!("{e:?}");
        assert!(shown.contains("mode: 0o644"), "{shown}");
        assert!(!shown.contains("420"), "{shown}");
        assert_eq!(
            format!("{:?}", Error::NoRuntime),
            "NoRuntime",
            "other variants keep the derived shape"
        );
    }
}
