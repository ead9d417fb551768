//! The control-plane module cache: a directory shared by threads and processes, holding
//! each module once as a read-only file named by its digest, with what is known about
//! the images it came from.
//!
//! Layout of the directory (every file is written whole and renamed into place):
//!
//! ```text
//! CACHEDIR.TAG
//! modules/<hex>.wasm        the module, read-only, named by its sha256
//! entries/<hex>.json        what is known about it; its mtime is the last use
//! refs/<key>.json           a location → the image and module it last resolved to
//! leases/<hex>.lock         held shared by every fetch result still in use
//! locks/index.lock          held while entries are added or removed
//! locks/<key>.lock          held by the one download of an image
//! staging/<key>/            that download's partial files
//! ```
//!
//! A file under `modules/` is an entry only once its `entries/` record exists, and the
//! record is written after the module is complete, so a process killed at any point
//! leaves nothing that reads as an entry (`gc` removes the leftovers).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::digest::Digest;
use crate::error::{Error, Result};

mod download;
mod entry;
pub(crate) mod fetch;
mod flight;
mod gc;
pub(crate) mod handle;
mod index;
mod lease;
mod lookup;

pub use entry::{CachedEntry, Entry};
pub(crate) use flight::again;
pub use gc::{GcReport, Removed, VerifyReport};
pub use handle::{Cache, CacheOptions};
pub(crate) use handle::{Counters, Inner};

/// How a fetch may use the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Answer from the cache when possible: a digest-pinned location with no request, a
    /// tag re-resolved at most every `tag_ttl`.
    #[default]
    IfNotPresent,
    /// Resolve the tag on every call (one manifest request); download only when the
    /// digest changed.
    Always,
    /// The cache only: `NOT_FOUND` when the location is not in it.
    Never,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::IfNotPresent => "if-not-present",
            Policy::Always => "always",
            Policy::Never => "never",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = Error;

    /// `if-not-present`, `always`, `never`; Kubernetes' spellings (`IfNotPresent`, …)
    /// too, since control planes copy them from their CRDs.
    fn from_str(s: &str) -> Result<Policy> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match folded.as_str() {
            "ifnotpresent" => Ok(Policy::IfNotPresent),
            "always" => Ok(Policy::Always),
            "never" => Ok(Policy::Never),
            _ => Err(Error::invalid_argument(format!(
                "unknown pull policy {s:?}; expected if-not-present, always or never"
            ))),
        }
    }
}

/// Parses an expected digest the way control planes write it: `sha256:<hex>` or the bare
/// 64 hex characters (Istio's `sha256` field), either case.
pub fn parse_expected_digest(s: &str) -> Result<Digest> {
    let trimmed = s.trim();
    let lower = trimmed.to_ascii_lowercase();
    let full = if lower.contains(':') {
        lower
    } else {
        format!("sha256:{lower}")
    };
    full.parse::<Digest>().map_err(|_| {
        Error::invalid_argument(format!(
            "expected digest {s:?} is not sha256:<64 hex characters> (the prefix may be left out)"
        ))
    })
}

/// Counters of one `Cache` value (this process's use of the directory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    /// Hits served stale because the registry could not be reached.
    pub stale_hits: u64,
    pub misses: u64,
    pub bytes_downloaded: u64,
    pub evictions: u64,
}

/// The directory used when none is given.
pub fn default_dir() -> Result<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(xdg) = from("XDG_CACHE_HOME") {
        return Ok(xdg.join("wasm-image"));
    }
    if let Some(home) = from("HOME") {
        return Ok(home.join(".cache").join("wasm-image"));
    }
    Err(Error::invalid_argument(
        "no cache directory given and neither XDG_CACHE_HOME nor HOME is set",
    ))
}

/// The cache of clients that were given none: the default directory, opened once per
/// process so its counters add up.
pub fn default_cache() -> Result<Cache> {
    static DEFAULT: OnceLock<Cache> = OnceLock::new();
    if let Some(c) = DEFAULT.get() {
        return Ok(c.clone());
    }
    let cache = Cache::open(CacheOptions::default())?;
    Ok(DEFAULT.get_or_init(|| cache).clone())
}

impl Cache {
    /// Opens (creating when needed) a cache directory.
    pub fn open(options: CacheOptions) -> Result<Cache> {
        if options.tag_ttl > Duration::from_secs(100 * 365 * 24 * 3600) {
            return Err(Error::invalid_argument("tag_ttl is unreasonably long"));
        }
        let dir = match &options.dir {
            Some(d) if d.as_os_str().is_empty() => {
                return Err(Error::invalid_argument("the cache directory path is empty"))
            }
            Some(d) => d.clone(),
            None => default_dir()?,
        };
        let index = index::Index::create(&dir)?;
        Ok(Cache {
            inner: Arc::new(Inner {
                index,
                options,
                counters: Counters::default(),
                flights: flight::Flights::default(),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        self.inner.index.root()
    }

    pub fn options(&self) -> &CacheOptions {
        &self.inner.options
    }

    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            hits: c.hits.load(Ordering::Relaxed),
            stale_hits: c.stale_hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            bytes_downloaded: c.bytes_downloaded.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
        }
    }

    /// Every complete entry, least recently used first.
    pub fn entries(&self) -> Result<Vec<CachedEntry>> {
        gc::list(&self.inner.index)
    }

    /// Evicts by the cache's `max_bytes` and `max_age` (never a leased entry) and removes
    /// what interrupted writers left behind.
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_with(self.inner.options.max_bytes, self.inner.options.max_age)
    }

    /// `gc` with limits of the caller's choosing (`max_bytes = Some(0)` empties the cache
    /// of everything not leased).
    pub fn gc_with(&self, max_bytes: Option<u64>, max_age: Option<Duration>) -> Result<GcReport> {
        let report = gc::collect(&self.inner.index, max_bytes, max_age)?;
        self.inner.counters.evicted(report.removed.len() as u64);
        Ok(report)
    }

    /// Re-hashes every module; damaged entries are dropped (and fetched again when next
    /// asked for).
    pub fn verify(&self) -> Result<VerifyReport> {
        gc::verify(&self.inner.index)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

/// Options of one fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub policy: Policy,
    /// The module's or the manifest's digest (or the index's); anything else is
    /// `DIGEST_MISMATCH` and nothing is cached.
    pub expected_digest: Option<Digest>,
    /// Overrides the cache's `stale_on_error` for this call.
    pub stale_on_error: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn policies_parse_in_both_spellings() {
        for (s, p) in [
            ("if-not-present", Policy::IfNotPresent),
            ("IfNotPresent", Policy::IfNotPresent),
            ("always", Policy::Always),
            ("Always", Policy::Always),
            ("never", Policy::Never),
        ] {
            assert_eq!(s.parse::<Policy>().unwrap(), p);
        }
        assert_eq!(
            "sometimes".parse::<Policy>().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn expected_digests_with_or_without_prefix() {
        let hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let d = parse_expected_digest(hex).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        assert_eq!(
            parse_expected_digest(&format!("sha256:{}", hex.to_uppercase())).unwrap(),
            d
        );
        for bad in ["", "sha256:12", "md5:abc", &hex[1..], "zz"] {
            assert_eq!(
                parse_expected_digest(bad).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }
}
