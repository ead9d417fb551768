//! Leases: a shared `flock` on `leases/<hex>.lock` held while a fetch result is in use.
//! Eviction takes the lock exclusively without waiting, so it skips what anyone, in any
//! process, still holds; the kernel drops the lock of a process that dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// Held while a module file must stay readable at its path. Released on drop.
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Whether the file we hold is still the one at `path` (eviction unlinks lock files
/// while holding them; a lock on an unlinked file protects nothing).
#[cfg(unix)]
pub(super) fn still_linked(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.ino() == held.ino() && now.dev() == held.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
pub(super) fn still_linked(_file: &File, path: &Path) -> io::Result<bool> {
    Ok(path.exists())
}

impl Lease {
    /// Takes a shared lease on `path`, waiting only while an eviction holds it (a few
    /// unlinks). The caller checks afterwards that the entry still exists.
    pub fn acquire(path: &Path) -> io::Result<Lease> {
        loop {
            let file = open_lock_file(path)?;
            file.lock_shared()?;
            if still_linked(&file, path)? {
                return Ok(Lease { _file: file });
            }
        }
    }
}

/// An exclusive hold taken by eviction; `None` when someone holds a lease.
pub struct Exclusive {
    file: File,
    path: PathBuf,
}

impl Exclusive {
    pub fn try_take(path: &Path) -> io::Result<Option<Exclusive>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        if !still_linked(&file, path)? {
            return Ok(None);
        }
        Ok(Some(Exclusive {
            file,
            path: path.to_path_buf(),
        }))
    }

    /// Unlinks the lock file while still holding it, so a lessee that opened it in the
    /// meantime sees it is gone and looks again.
    pub fn remove(self) -> io::Result<()> {
        let result = match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        drop(self.file);
        result
    }
}

/// Whether anyone holds a lease on `path` right now.
pub fn is_leased(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_blocks_eviction_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let lease = Lease::acquire(&path).unwrap();
        let second = Lease::acquire(&path).unwrap();
        assert!(is_leased(&path));
        assert!(Exclusive::try_take(&path).unwrap().is_none());
        drop(lease);
        assert!(Exclusive::try_take(&path).unwrap().is_none());
        drop(second);
        let held = Exclusive::try_take(&path).unwrap().unwrap();
        held.remove().unwrap();
        assert!(!path.exists());
    }
}
