//! The rotation state file of a key directory, and its only writer.
//!
//! Every change goes through [`RotationFile::update`]: take the directory's exclusive lock
//! (bounded wait), read the file again under the lock, apply the change, write it
//! atomically and durably (temporary file, fsync, rename, fsync of the directory), unlock.
//! Concurrent writers, whether processes (`sealrpc-keys`) or threads, are serialized and
//! none loses another's update. Readers need no lock: the rename is atomic, so they see
//! the old file or the new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::dirlock::{DEFAULT_LOCK_TIMEOUT, DirLock};
use crate::error::Error;
use crate::keyfile;
use crate::rotation::RotationTable;
use crate::source::{Fetched, RotationSource, StateVersion};

/// The rotation state file's name inside a key directory.
pub const STATE_FILE: &str = "rotation.json";

/// The master secret file's name inside a key directory.
pub const MASTER_FILE: &str = "master.key";

/// A key directory's rotation state file: locked writes, plain reads, and a
/// [`RotationSource`] for [`crate::RotationWatcher`].
#[derive(Debug, Clone)]
pub struct RotationFile {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl RotationFile {
    /// The state file of key directory `dir`, with the default lock wait (10 s).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// How long a writer waits for the lock before [`Error::LockTimeout`].
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Reads the state (no lock needed: writers replace the file atomically).
    pub fn load(&self) -> Result<RotationTable, Error> {
        RotationTable::load(&self.path())
    }

    /// Creates the state file with `table`'s content, under the lock; refuses
    /// ([`Error::AlreadyExists`]) if it exists. `first` runs under the lock before the
    /// state is written (`sealrpc-keys init` creates the master secret there), and an
    /// error from it leaves no state file.
    pub fn create(
        &self,
        table: &RotationTable,
        first: impl FnOnce() -> Result<(), Error>,
    ) -> Result<(), Error> {
        let _lock = DirLock::acquire(&self.dir, self.lock_timeout)?;
        let path = self.path();
        if path.exists() {
            return Err(Error::AlreadyExists { path });
        }
        first()?;
        keyfile::write_new_private(&path, table.file_content().as_bytes())?;
        keyfile::sync_parent(&path)
    }

    /// Changes the state: locks the directory, reads the file under the lock, runs `change`
    /// on that fresh table, and writes the result (only if it differs) before unlocking.
    ///
    /// If `change` fails, nothing is written and its error is returned. The table given to
    /// `change` is the one written: changes made through it after `update` returns are not.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&Arc<RotationTable>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _lock = DirLock::acquire(&self.dir, self.lock_timeout)?;
        let path = self.path();
        let table = Arc::new(RotationTable::load(&path)?);
        let before = table.file_content();
        let out = change(&table)?;
        let after = table.file_content();
        if after != before {
            keyfile::replace_private(&path, after.as_bytes())?;
        }
        Ok(out)
    }
}

impl RotationTable {
    /// Changes the rotation state of key directory `dir` under its lock; see
    /// [`RotationFile::update`]. This (and [`RotationFile::create`]) is the only way to
    /// write the file.
    pub fn update<T>(
        dir: &Path,
        change: impl FnOnce(&Arc<RotationTable>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        RotationFile::new(dir).update(change)
    }
}

impl RotationSource for RotationFile {
    fn describe(&self) -> String {
        self.path().display().to_string()
    }

    /// Reads and hashes the whole file on every look (a few KiB per hundred guests): a
    /// (mtime, size, inode) check can miss two writes within one timestamp tick.
    fn fetch(&self, applied: Option<&StateVersion>) -> Result<Fetched, Error> {
        let path = self.path();
        let bytes = keyfile::read_protected(&path)?;
        let version = StateVersion::from_bytes(Sha256::digest(&bytes[..]).to_vec());
        if applied == Some(&version) {
            return Ok(Fetched::Unchanged);
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::corrupt(&path, "rotation state is not UTF-8"))?;
        let table = RotationTable::from_json(text)
            .map_err(|why| Error::corrupt(&path, format!("rotation state: {why}")))?;
        Ok(Fetched::Changed(version, table))
    }
}
