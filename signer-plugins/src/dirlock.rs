//! The key directory's writer lock: an exclusive advisory lock (`flock` on Unix, through
//! std's `File::lock` family) on a dedicated lock file, taken with a bounded wait.
//!
//! A dedicated file, because the state file itself is replaced by rename: a lock on it
//! would stay on the old inode while the next writer locks the new one. The lock belongs
//! to the open file, so it is released when the holder drops it, and also when the
//! holding process dies: a crashed writer never leaves the directory locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Error;

/// The lock file's name inside a key directory.
pub const LOCK_FILE: &str = ".rotation.lock";

/// How long a writer waits for the lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// First and longest pause between two attempts.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// The exclusive lock on a key directory, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
}

impl DirLock {
    /// Takes the lock of `dir`, waiting at most `timeout` (then [`Error::LockTimeout`]).
    /// Creates the lock file (mode 0600) if it is missing.
    pub(crate) fn acquire(dir: &Path, timeout: Duration) -> Result<Self, Error> {
        let path = dir.join(LOCK_FILE);
        let file = open_lock_file(&path)?;
        let start = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout { path, waited });
            }
            // Sleep, never spin; never past the deadline.
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock as well; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File, Error> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let file = o.open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::corrupt(path, "lock file is not a regular file"));
    }
    Ok(file)
}
