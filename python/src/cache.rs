//! `Cache`, the leased `FetchEntry` and the cache's reports: core's cache types as Python
//! objects. Every decision (policies, digests, eviction) is core's.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use wasm_image::cache::{CachedEntry as CoreCachedEntry, GcReport as CoreGcReport};
use wasm_image::{CacheOptions, FetchOptions, Policy};

use crate::bridge::{self, ToPython};
use crate::convert::seconds;
use crate::errors::{invalid_argument, IntoPyResult};
use crate::image::{py_list, py_str, RuntimeConfig};

/// The per-call fetch options, from Python's arguments (parsed by core).
pub fn fetch_options(
    py: Python<'_>,
    policy: Option<&str>,
    expected_digest: Option<&str>,
    stale_on_error: Option<bool>,
) -> PyResult<FetchOptions> {
    Ok(FetchOptions {
        policy: policy
            .map(str::parse::<Policy>)
            .transpose()
            .py_err(py)?
            .unwrap_or_default(),
        expected_digest: expected_digest
            .map(wasm_image::cache::parse_expected_digest)
            .transpose()
            .py_err(py)?,
        stale_on_error,
    })
}

/// A module cache directory shared by threads and processes: modules stored once,
/// read-only, named by digest; one download per image; leases; LRU eviction.
#[pyclass(module = "wasm_image", frozen)]
pub struct Cache {
    pub inner: wasm_image::Cache,
}

#[pymethods]
impl Cache {
    #[new]
    #[pyo3(signature = (dir=None, max_bytes=None, max_age=None, tag_ttl=None, *, stale_on_error=None, verify=None))]
    fn new(
        py: Python<'_>,
        dir: Option<PathBuf>,
        max_bytes: Option<u64>,
        max_age: Option<f64>,
        tag_ttl: Option<f64>,
        stale_on_error: Option<bool>,
        verify: Option<bool>,
    ) -> PyResult<Cache> {
        // Arguments left out keep core's defaults.
        let defaults = CacheOptions::default();
        let options = CacheOptions {
            dir,
            max_bytes,
            max_age: max_age.map(|a| seconds(py, "max_age", a)).transpose()?,
            tag_ttl: match tag_ttl {
                Some(t) => seconds(py, "tag_ttl", t)?,
                None => defaults.tag_ttl,
            },
            stale_on_error: stale_on_error.unwrap_or(defaults.stale_on_error),
            verify_on_hit: verify.unwrap_or(defaults.verify_on_hit),
        };
        let inner = bridge::compute(py, || wasm_image::Cache::open(options))?;
        Ok(Cache { inner })
    }

    /// The cache directory.
    #[getter]
    fn dir(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }
    /// The total size eviction keeps the cache under, or None for no bound.
    #[getter]
    fn max_bytes(&self) -> Option<u64> {
        self.inner.options().max_bytes
    }
    /// Seconds since last use after which an entry is evicted, or None for no bound.
    #[getter]
    fn max_age(&self) -> Option<f64> {
        self.inner.options().max_age.map(|d| d.as_secs_f64())
    }
    /// Seconds a resolved tag is trusted before `if-not-present` resolves it again.
    #[getter]
    fn tag_ttl(&self) -> f64 {
        self.inner.options().tag_ttl.as_secs_f64()
    }
    /// Whether fetches serve the last known module when the registry cannot be reached.
    #[getter]
    fn stale_on_error(&self) -> bool {
        self.inner.options().stale_on_error
    }
    /// Whether every cache hit re-hashes the module file before serving it.
    #[getter]
    fn verify(&self) -> bool {
        self.inner.options().verify_on_hit
    }

    /// This object's counters: hits, stale_hits, misses, bytes_downloaded, evictions.
    fn stats(&self) -> CacheStats {
        let s = self.inner.stats();
        CacheStats {
            hits: s.hits,
            stale_hits: s.stale_hits,
            misses: s.misses,
            bytes_downloaded: s.bytes_downloaded,
            evictions: s.evictions,
        }
    }

    /// Every complete entry, least recently used first.
    fn entries(&self, py: Python<'_>) -> PyResult<Vec<CachedEntry>> {
        let entries = bridge::compute(py, || self.inner.entries())?;
        Ok(entries.into_iter().map(CachedEntry::from).collect())
    }

    /// Evicts by size and age (the cache's bounds unless given here), least recently
    /// used first, never a leased entry; removes what interrupted writers left.
    #[pyo3(signature = (*, max_bytes=None, max_age=None))]
    fn gc(
        &self,
        py: Python<'_>,
        max_bytes: Option<u64>,
        max_age: Option<f64>,
    ) -> PyResult<GcReport> {
        let max_age = max_age.map(|a| seconds(py, "max_age", a)).transpose()?;
        let options = self.inner.options();
        let max_bytes = max_bytes.or(options.max_bytes);
        let max_age = max_age.or(options.max_age);
        let report = bridge::compute(py, || self.inner.gc_with(max_bytes, max_age))?;
        Ok(GcReport::from(report))
    }

    /// Re-hashes every module; damaged entries are dropped. Returns the dropped digests.
    fn verify_all(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let report = bridge::compute(py, || self.inner.verify())?;
        Ok(report.dropped.iter().map(|d| d.to_string()).collect())
    }

    fn __repr__(&self) -> String {
        let o = self.inner.options();
        format!(
            "Cache(dir={}, max_bytes={}, max_age={}, tag_ttl={})",
            py_str(&self.inner.dir().display().to_string()),
            o.max_bytes.map_or_else(|| "None".into(), |b| b.to_string()),
            o.max_age
                .map_or_else(|| "None".into(), |a| a.as_secs_f64().to_string()),
            o.tag_ttl.as_secs_f64()
        )
    }
}

/// Counters of one `Cache` object.
#[pyclass(module = "wasm_image", frozen, get_all)]
pub struct CacheStats {
    /// Fetches answered from the cache.
    hits: u64,
    /// Hits served stale because the registry could not be reached.
    stale_hits: u64,
    /// Fetches that downloaded.
    misses: u64,
    /// Bytes downloaded by those fetches.
    bytes_downloaded: u64,
    /// Entries evicted.
    evictions: u64,
}

#[pymethods]
impl CacheStats {
    fn __repr__(&self) -> String {
        format!(
            "CacheStats(hits={}, stale_hits={}, misses={}, bytes_downloaded={}, evictions={})",
            self.hits, self.stale_hits, self.misses, self.bytes_downloaded, self.evictions
        )
    }
}

/// One entry as `Cache.entries()` lists it.
#[pyclass(module = "wasm_image", frozen, get_all)]
pub struct CachedEntry {
    /// "sha256:…" of the module.
    module_digest: String,
    /// The module size in bytes.
    size: u64,
    /// The read-only module file.
    path: PathBuf,
    /// Seconds since the epoch.
    last_used: f64,
    /// The manifests the module was found in.
    manifest_digests: Vec<String>,
    /// Whether some process holds a lease on it now.
    leased: bool,
}

impl From<CoreCachedEntry> for CachedEntry {
    fn from(e: CoreCachedEntry) -> Self {
        CachedEntry {
            module_digest: e.module_digest.to_string(),
            size: e.size,
            path: e.path,
            last_used: e
                .last_used
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            manifest_digests: e.manifest_digests.iter().map(|d| d.to_string()).collect(),
            leased: e.leased,
        }
    }
}

#[pymethods]
impl CachedEntry {
    fn __repr__(&self) -> String {
        format!(
            "CachedEntry(module_digest={}, size={}, leased={})",
            py_str(&self.module_digest),
            self.size,
            if self.leased { "True" } else { "False" }
        )
    }
}

/// What `Cache.gc()` did.
#[pyclass(module = "wasm_image", frozen, get_all)]
pub struct GcReport {
    /// Module digests removed, least recently used first.
    removed: Vec<String>,
    /// Bytes the removed modules took.
    freed_bytes: u64,
    /// Entries kept because they were leased.
    kept_leased: u64,
    /// Files of interrupted writers removed.
    leftovers_removed: u64,
}

impl From<CoreGcReport> for GcReport {
    fn from(r: CoreGcReport) -> Self {
        GcReport {
            removed: r
                .removed
                .iter()
                .map(|e| e.module_digest.to_string())
                .collect(),
            freed_bytes: r.freed_bytes,
            kept_leased: r.kept_leased,
            leftovers_removed: r.leftovers_removed,
        }
    }
}

#[pymethods]
impl GcReport {
    fn __repr__(&self) -> String {
        format!(
            "GcReport(removed={}, freed_bytes={}, kept_leased={}, leftovers_removed={})",
            py_list(&self.removed),
            self.freed_bytes,
            self.kept_leased,
            self.leftovers_removed
        )
    }
}

/// A fetched module. Holds a lease while open: the file at `.path` stays readable, in
/// this and every other process, until `release()` (or the end of a `with` block).
#[pyclass(module = "wasm_image", frozen)]
pub struct FetchEntry {
    entry: Mutex<Option<wasm_image::Entry>>,
    path: PathBuf,
    module_digest: String,
    manifest_digest: Option<String>,
    index_digest: Option<String>,
    variant: Option<String>,
    runtime_config: Option<wasm_image::RuntimeConfig>,
    annotations: std::collections::BTreeMap<String, String>,
    stale: bool,
    size: u64,
    location: String,
}

impl From<wasm_image::Entry> for FetchEntry {
    fn from(e: wasm_image::Entry) -> Self {
        FetchEntry {
            path: e.path().to_path_buf(),
            module_digest: e.module_digest().to_string(),
            manifest_digest: e.manifest_digest().map(|d| d.to_string()),
            index_digest: e.index_digest().map(|d| d.to_string()),
            variant: e.variant().map(String::from),
            runtime_config: e.runtime_config().cloned(),
            annotations: e.annotations().clone(),
            stale: e.stale(),
            size: e.size(),
            location: e.location().to_string(),
            entry: Mutex::new(Some(e)),
        }
    }
}

impl ToPython for wasm_image::Entry {
    fn to_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, FetchEntry::from(self))?.into_any())
    }
}

#[pymethods]
impl FetchEntry {
    /// The read-only module file; valid while the lease is held.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }
    /// The module bytes, read from the file now (the lease must still be held).
    #[getter]
    fn module<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let data = {
            let guard = self.entry.lock().unwrap_or_else(|p| p.into_inner());
            let Some(entry) = guard.as_ref() else {
                return Err(invalid_argument(
                    py,
                    "the entry was released; fetch it again to read the module",
                ));
            };
            entry.read_module().py_err(py)?
        };
        Ok(PyBytes::new(py, &data))
    }
    /// "sha256:…" of the module bytes.
    #[getter]
    fn module_digest(&self) -> &str {
        &self.module_digest
    }
    /// None for a bare module (https://, file://).
    #[getter]
    fn manifest_digest(&self) -> Option<&str> {
        self.manifest_digest.as_deref()
    }
    /// The index the manifest was chosen from, or None.
    #[getter]
    fn index_digest(&self) -> Option<&str> {
        self.index_digest.as_deref()
    }
    /// None for a bare module.
    #[getter]
    fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }
    /// The runtime metadata the image carries, or None.
    #[getter]
    fn runtime_config(&self) -> Option<RuntimeConfig> {
        self.runtime_config
            .clone()
            .map(|inner| RuntimeConfig { inner })
    }
    /// The manifest annotations.
    #[getter]
    fn annotations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (k, v) in &self.annotations {
            dict.set_item(k, v)?;
        }
        Ok(dict)
    }
    /// True when served from the cache because the registry could not be reached.
    #[getter]
    fn stale(&self) -> bool {
        self.stale
    }
    /// The module size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.size
    }
    /// The location this entry was fetched for.
    #[getter]
    fn location(&self) -> &str {
        &self.location
    }
    /// Whether the lease was released.
    #[getter]
    fn released(&self) -> bool {
        self.entry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
    /// Releases the lease (idempotent); eviction may then remove the file.
    fn release(&self) {
        let taken = self.entry.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.release();
        false
    }
    fn __repr__(&self) -> String {
        format!(
            "<FetchEntry {} module_digest={} stale={}{}>",
            py_str(&self.location),
            py_str(&self.module_digest),
            if self.stale { "True" } else { "False" },
            if self.released() { " released" } else { "" }
        )
    }
}
