//! Files that hold secrets (or security state): created with mode 0600, never overwritten
//! in place by accident, refused when others may read them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::Error;

/// Largest key or state file read (a bundle is a few hundred bytes; a state file with a
/// hundred thousand guests a few MiB).
const MAX_FILE: u64 = 64 * 1024 * 1024;

fn open_options_new() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates `path` with mode 0600 and writes `bytes`; refuses if the file exists.
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = open_options_new()
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Makes a rename or a creation in `path`'s directory durable (fsync of the directory).
pub(crate) fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Replaces `path` atomically and durably: a temporary file with mode 0600 in the same
/// directory, fsync, rename, fsync of the directory. A crash never leaves half a file.
pub(crate) fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::invalid("file name", &path.display().to_string()))?;
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| Error::Random(e.to_string()))?;
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let result = write_new_private(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)
}

fn check_regular(path: &Path, f: &File) -> Result<u32, Error> {
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::corrupt(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(Error::corrupt(path, "file too large"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        Ok(0o600)
    }
}

fn read_all(path: &Path, mut f: File) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buf = Zeroizing::new(Vec::new());
    Read::by_ref(&mut f)
        .take(MAX_FILE)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// Reads a secret file, refusing it when group or others have any access to it.
pub(crate) fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mode = check_regular(path, &f)?;
    if mode & 0o077 != 0 {
        return Err(Error::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    read_all(path, f)
}

/// Reads a security state file (not secret, but its integrity matters): refused when group
/// or others may write it.
pub(crate) fn read_protected(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mode = check_regular(path, &f)?;
    if mode & 0o022 != 0 {
        return Err(Error::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    read_all(path, f)
}
