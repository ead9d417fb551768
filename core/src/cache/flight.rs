//! One download per image: threads of this process queue on an async mutex per key, and
//! processes queue on an exclusive `flock` of `locks/<key>.lock` (released by the kernel
//! if the holder dies). A download that fails leaves a note, so everyone who was already
//! waiting gets the same error instead of trying again.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::index::{key_name, now_secs};
use crate::error::{Error, ErrorKind, Result};
use crate::files::{write_atomic, Existing};

#[derive(Default)]
pub struct Flights {
    local: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
    /// The last failed resolution per tag, for the threads that queued behind it.
    resolve_failures: Mutex<HashMap<String, (f64, Error)>>,
}

/// The same error again (errors carry a source that cannot be cloned).
pub(crate) fn again(e: &Error) -> Error {
    let mut copy = Error::new(e.kind(), e.message()).with_retry_after(e.retry_after());
    if let Some(r) = e.registry() {
        copy = copy.with_registry(r.status, r.code.clone());
    }
    copy
}

/// First in this process's queue for one image.
pub struct Queued(OwnedMutexGuard<()>);

/// The right to download one image; dropping it lets the next one in.
pub struct Flight {
    _local: OwnedMutexGuard<()>,
    _file: File,
    failure_path: PathBuf,
    staging: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct FailureNote {
    at: f64,
    /// The expected digest the failed call carried: a mismatch is only shared with
    /// callers who expected the same.
    expected: String,
    kind: u32,
    message: String,
    status: Option<u16>,
    code: Option<String>,
}

impl Flights {
    fn local(&self, key: &str) -> Arc<AsyncMutex<()>> {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(key).and_then(Weak::upgrade) {
            return m;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let m = Arc::new(AsyncMutex::new(()));
        map.insert(key.to_string(), Arc::downgrade(&m));
        m
    }

    /// Remembers that resolving `key` failed, so the threads queued behind this one get
    /// the same error instead of each waiting out their own retries.
    pub fn note_resolve_failure(&self, key: &str, err: &Error) {
        let mut map = self
            .resolve_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.insert(key.to_string(), (now_secs(), again(err)));
    }

    /// The failure of a resolution of `key` that ended after `since`.
    pub fn resolve_failure_since(&self, key: &str, since: f64) -> Option<Error> {
        let mut map = self
            .resolve_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((at, e)) if *at >= since => Some(again(e)),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Waits for this process's other fetches of `key` to finish.
    pub async fn queue(&self, key: &str) -> Queued {
        Queued(self.local(key).lock_owned().await)
    }

    /// Then waits for other processes': the right to download `key`.
    pub async fn lock(&self, queued: Queued, root: &Path, key: &str) -> Result<Flight> {
        let local = queued.0;
        let name = key_name(key);
        let lock_path = root.join("locks").join(format!("{name}.lock"));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("cache {}", lock_path.display()), e))?;
        let failure_path = root.join("locks").join(format!("{name}.failed"));
        let staging = root.join("staging").join(&name);
        // flock blocks the thread: wait on a blocking-pool thread, not a runtime worker.
        // gc unlinks idle lock files while holding them, so a lock taken on a file that is
        // no longer at its path is taken again on the current one.
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
            let mut file = file;
            loop {
                file.lock()?;
                if super::lease::still_linked(&file, &lock_path)? {
                    return Ok(file);
                }
                file = File::options()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&lock_path)?;
            }
        })
        .await
        .map_err(|_| Error::internal("the cache lock waiter died"))?
        .map_err(|e| Error::io("cache download lock", e))?;
        Ok(Flight {
            _local: local,
            _file: file,
            failure_path,
            staging,
        })
    }
}

impl Flight {
    /// The error of a download that failed after `since` (seconds since the epoch).
    pub fn failed_since(&self, since: f64, expected: &str) -> Option<Error> {
        let data = std::fs::read(&self.failure_path).ok()?;
        let note: FailureNote = serde_json::from_slice(&data).ok()?;
        if note.at < since || note.expected != expected {
            return None;
        }
        let kind = ErrorKind::from_code(note.kind).unwrap_or(ErrorKind::Internal);
        let mut err = Error::new(kind, note.message);
        if let Some(status) = note.status {
            err = err.with_registry(status, note.code);
        }
        Some(err)
    }

    pub fn record_failure(&self, err: &Error, expected: &str) {
        let note = FailureNote {
            at: now_secs(),
            expected: expected.to_string(),
            kind: err.kind().code(),
            message: err.message().to_string(),
            status: err.registry().map(|r| r.status),
            code: err.registry().and_then(|r| r.code.clone()),
        };
        if let Ok(data) = serde_json::to_vec(&note) {
            let _ = write_atomic(&self.failure_path, &data, Existing::Replace);
        }
    }

    pub fn clear_failure(&self) {
        let _ = std::fs::remove_file(&self.failure_path);
    }

    /// A fresh, empty directory for this download's partial files (a killed download's
    /// leftovers are removed first: its lock died with it, so nobody else uses them).
    pub fn fresh_staging(&self) -> Result<PathBuf> {
        let io = |e| Error::io(format!("cache staging {}", self.staging.display()), e);
        match std::fs::remove_dir_all(&self.staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        std::fs::create_dir_all(&self.staging).map_err(io)?;
        Ok(self.staging.clone())
    }

    pub fn remove_staging(&self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}
