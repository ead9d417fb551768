//! The cache value itself (what a client's options hold) and its settings, apart from
//! the operations on it, so holding a cache depends on nothing that fetching does.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::flight;
use super::index;

/// Settings of a cache directory.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// `None`: `$XDG_CACHE_HOME/wasm-image`, else `~/.cache/wasm-image`.
    pub dir: Option<PathBuf>,
    /// Evict least-recently-used modules while their total size is above this.
    pub max_bytes: Option<u64>,
    /// Evict modules unused for longer than this.
    pub max_age: Option<Duration>,
    /// How long a tag's resolution is trusted under `if-not-present`.
    pub tag_ttl: Duration,
    /// When re-resolving fails with a network, timeout, 5xx or rate-limit error, serve the
    /// last module known for the location (flagged stale) instead of failing.
    pub stale_on_error: bool,
    /// Re-hash a module on every cache hit (a damaged entry is then never served even
    /// when its size is right). Off by default: the size is always checked.
    pub verify_on_hit: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            dir: None,
            max_bytes: None,
            max_age: None,
            tag_ttl: Duration::from_secs(60),
            stale_on_error: false,
            verify_on_hit: false,
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) stale_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) bytes_downloaded: AtomicU64,
    pub(crate) evictions: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self, stale: bool) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        if stale {
            self.stale_hits.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub(crate) fn miss(&self, downloaded: u64) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.bytes_downloaded
            .fetch_add(downloaded, Ordering::Relaxed);
    }
    pub(crate) fn evicted(&self, n: u64) {
        self.evictions.fetch_add(n, Ordering::Relaxed);
    }
}

/// A cache directory and its settings; cheap to clone, safe to share between threads.
/// Several processes may use one directory at once.
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) index: index::Index,
    pub(crate) options: CacheOptions,
    pub(crate) counters: Counters,
    pub(crate) flights: flight::Flights,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("dir", &self.inner.index.root())
            .field("options", &self.inner.options)
            .finish()
    }
}
