//! The cache directory on disk: where each file lives, the records kept beside the
//! modules, and the index lock that orders additions and removals.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::files::{sync_dir, write_atomic, Existing};

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file marks a wasm-image module cache; backup tools may skip this directory.\n";

/// What is known of one image whose module is cached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    pub manifest_digest: Option<Digest>,
    pub index_digest: Option<Digest>,
    pub variant: Option<String>,
    pub runtime_config: Option<Map<String, Value>>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `entries/<hex>.json`: a module and the images it was found in, keyed by the digest a
/// location resolved to (an index's or a manifest's; empty for a bare module).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub digest: Digest,
    pub size: u64,
    pub images: BTreeMap<String, ImageRecord>,
}

/// `refs/<key>.json`: what a location last resolved to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefRecord {
    pub location: String,
    /// The digest the location resolved to (key into `ModuleRecord::images`).
    pub resolved: String,
    pub module: Digest,
    /// When a request last confirmed it, in seconds since the epoch.
    pub confirmed_at: f64,
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A file name for any key: its sha256.
pub fn key_name(key: &str) -> String {
    Digest::sha256_of(key.as_bytes()).hex().to_string()
}

/// Paths inside one cache directory.
#[derive(Debug, Clone)]
pub struct Index {
    root: PathBuf,
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::io(format!("cache {}", path.display()), e)
}

impl Index {
    pub fn create(root: &Path) -> Result<Index> {
        if root.exists() && !root.is_dir() {
            return Err(Error::invalid_argument(format!(
                "cache directory {} exists and is not a directory",
                root.display()
            )));
        }
        let index = Index {
            root: root.to_path_buf(),
        };
        for sub in ["modules", "entries", "refs", "leases", "locks", "staging"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(
                &root.join("CACHEDIR.TAG"),
                CACHEDIR_TAG.as_bytes(),
                Existing::Keep,
            )
            .map_err(io_at(&tag))?;
        }
        Ok(index)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn module_path(&self, d: &Digest) -> PathBuf {
        self.root.join("modules").join(format!("{}.wasm", d.hex()))
    }
    pub fn record_path(&self, d: &Digest) -> PathBuf {
        self.root.join("entries").join(format!("{}.json", d.hex()))
    }
    pub fn lease_path(&self, d: &Digest) -> PathBuf {
        self.root.join("leases").join(format!("{}.lock", d.hex()))
    }
    pub fn ref_path(&self, key: &str) -> PathBuf {
        self.root
            .join("refs")
            .join(format!("{}.json", key_name(key)))
    }
    pub fn dir(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }

    /// Reads a record; a missing or unreadable one is `None` (a torn write cannot exist,
    /// records are renamed into place, but a hand-edited one must not break fetches).
    fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
        let data = fs::read(path).ok()?;
        match serde_json::from_slice(&data) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable cache record");
                None
            }
        }
    }

    pub fn read_ref(&self, key: &str) -> Option<RefRecord> {
        Self::read_json(&self.ref_path(key))
    }

    pub fn read_record(&self, d: &Digest) -> Option<ModuleRecord> {
        Self::read_json(&self.record_path(d))
    }

    pub fn read_record_at(path: &Path) -> Option<ModuleRecord> {
        Self::read_json(path)
    }

    pub fn write_ref(&self, key: &str, record: &RefRecord) -> Result<()> {
        let data = serde_json::to_vec(record).map_err(|e| Error::internal(e.to_string()))?;
        let dir = self.dir("refs");
        write_atomic(
            &dir.join(format!("{}.json", key_name(key))),
            &data,
            Existing::Replace,
        )
        .map_err(io_at(&dir))?;
        Ok(())
    }

    pub fn write_record(&self, record: &ModuleRecord) -> Result<()> {
        let data = serde_json::to_vec(record).map_err(|e| Error::internal(e.to_string()))?;
        let dir = self.dir("entries");
        write_atomic(
            &dir.join(format!("{}.json", record.digest.hex())),
            &data,
            Existing::Replace,
        )
        .map_err(io_at(&dir))?;
        Ok(())
    }

    /// Records a use: the record's mtime is the entry's last use (no rewrite, no fsync).
    pub fn touch(&self, d: &Digest) {
        let path = self.record_path(d);
        if let Ok(f) = File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Holds the index lock (exclusive) until dropped: additions and removals of entries
    /// never interleave, across processes.
    pub fn lock(&self) -> Result<File> {
        let path = self.dir("locks").join("index.lock");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_at(&path))?;
        file.lock().map_err(io_at(&path))?;
        Ok(file)
    }

    /// Moves a complete, verified module file into place, read-only, durably. The caller
    /// holds the index lock. An existing file is replaced: the new one was just verified.
    pub fn install_module(&self, staged: &Path, d: &Digest) -> Result<PathBuf> {
        let target = self.module_path(d);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(staged, fs::Permissions::from_mode(0o444))
                .map_err(io_at(staged))?;
        }
        fs::rename(staged, &target).map_err(io_at(&target))?;
        sync_dir(&self.dir("modules")).map_err(io_at(&target))?;
        Ok(target)
    }
}
