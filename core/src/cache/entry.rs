//! What a fetch returns (a leased entry) and what a listing shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

use super::index::ImageRecord;
use super::lease::Lease;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::RuntimeConfig;

/// A cached module in use. While this value lives, its file stays readable at `path()`,
/// whatever eviction runs in this or another process. Dropping it releases the lease.
#[derive(Debug)]
pub struct Entry {
    pub(crate) path: PathBuf,
    pub(crate) module_digest: Digest,
    pub(crate) size: u64,
    pub(crate) manifest_digest: Option<Digest>,
    pub(crate) index_digest: Option<Digest>,
    pub(crate) variant: Option<String>,
    pub(crate) runtime_config: Option<RuntimeConfig>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) stale: bool,
    pub(crate) location: String,
    pub(crate) _lease: Lease,
}

impl Entry {
    /// A leased entry for a module and the image it was found in.
    pub(crate) fn leased(
        path: PathBuf,
        module_digest: Digest,
        size: u64,
        image: ImageRecord,
        location: &str,
        lease: Lease,
    ) -> Entry {
        Entry {
            path,
            module_digest,
            size,
            manifest_digest: image.manifest_digest,
            index_digest: image.index_digest,
            variant: image.variant,
            runtime_config: image
                .runtime_config
                .and_then(|raw| RuntimeConfig::from_object(raw).ok()),
            annotations: image.annotations,
            stale: false,
            location: location.to_string(),
            _lease: lease,
        }
    }

    /// The read-only module file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn module_digest(&self) -> &Digest {
        &self.module_digest
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    /// `None` for a bare module (`https://`, `file://`), which has no manifest.
    pub fn manifest_digest(&self) -> Option<&Digest> {
        self.manifest_digest.as_ref()
    }
    pub fn index_digest(&self) -> Option<&Digest> {
        self.index_digest.as_ref()
    }
    /// The image format's name (`oci`, `compat`, …); `None` for a bare module.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }
    pub fn runtime_config(&self) -> Option<&RuntimeConfig> {
        self.runtime_config.as_ref()
    }
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }
    /// Served from the cache because the registry could not be reached
    /// (stale-on-error): the location may name a newer module by now.
    pub fn stale(&self) -> bool {
        self.stale
    }
    /// The location as fetched.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Reads the module bytes, checking they are still the size recorded.
    pub fn read_module(&self) -> Result<Bytes> {
        let data = std::fs::read(&self.path)
            .map_err(|e| Error::io(format!("cached module {}", self.path.display()), e))?;
        if data.len() as u64 != self.size {
            return Err(Error::new(
                crate::ErrorKind::DigestMismatch,
                format!(
                    "cached module {} has {} bytes, {} were recorded; the file was changed behind the cache's back",
                    self.path.display(),
                    data.len(),
                    self.size
                ),
            ));
        }
        Ok(Bytes::from(data))
    }
}

/// One entry as `Cache::entries` lists it.
#[derive(Debug, Clone)]
pub struct CachedEntry {
    pub module_digest: Digest,
    pub size: u64,
    pub path: PathBuf,
    pub last_used: SystemTime,
    /// The manifest digests of the images this module was found in.
    pub manifest_digests: Vec<Digest>,
    /// Whether some fetch result (in any process) holds it right now.
    pub leased: bool,
}
