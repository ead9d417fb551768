//! The control-plane module cache: cache options and handle, fetch options, and the
//! fetch entry whose handle holds the lease until it is freed.

use std::ffi::c_char;
use std::path::PathBuf;
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use wasm_image::cache::{parse_expected_digest, CachedEntry};
use wasm_image::{Cache, CacheOptions, Entry, FetchOptions, Policy};

use crate::boundary::{
    arg_handle, arg_optional_handle, arg_optional_out, arg_out, arg_str, ffi_boundary,
};
use crate::call::{blocking, wasm_image_call_options_t};
use crate::client::wasm_image_client_t;
use crate::handle::{self, Handle};
use crate::options::wasm_image_client_options_t;
use crate::strings::{opt_ptr, NulStr};
use crate::wasm_image_error_t;

// ---- cache options ------------------------------------------------------------------

/// Options for `wasm_image_cache_open`, built with setters and copied when the cache is
/// opened. Defaults: the directory `$XDG_CACHE_HOME/wasm-image` (else
/// `~/.cache/wasm-image`), no size or age bound, tags trusted for 60 s, no
/// stale-on-error, sizes (not digests) checked on every hit.
pub struct wasm_image_cache_options_t {
    options: Mutex<CacheOptions>,
}

impl Handle for wasm_image_cache_options_t {
    const NAME: &'static str = "wasm_image_cache_options_t";
}

fn edit_cache(options: &wasm_image_cache_options_t, change: impl FnOnce(&mut CacheOptions)) {
    change(&mut options.options.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Makes cache options with the defaults. Never returns NULL. Free with
/// `wasm_image_cache_options_free`.
#[no_mangle]
pub extern "C" fn wasm_image_cache_options_new() -> *mut wasm_image_cache_options_t {
    ffi_boundary!({
        handle::into_raw(wasm_image_cache_options_t {
            options: Mutex::new(CacheOptions::default()),
        })
    })
}

/// Frees cache options. NULL and a second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_options_free(options: *mut wasm_image_cache_options_t) {
    ffi_boundary!({
        unsafe { handle::free(options) };
    })
}

/// The cache directory (created when missing); NULL restores the default. Errors:
/// `INVALID_ARGUMENT` for bad UTF-8.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_options_set_dir(
    options: *const wasm_image_cache_options_t,
    dir: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let dir = if dir.is_null() {
            None
        } else {
            Some(PathBuf::from(arg_str!(dir, "dir")))
        };
        edit_cache(options, |o| o.dir = dir);
        Ok(())
    })
}

/// Evicts least-recently-used modules (never leased ones) while their total size is
/// above `max_bytes`, after every insert and on `wasm_image_cache_gc`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_options_set_max_bytes(
    options: *const wasm_image_cache_options_t,
    max_bytes: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit_cache(arg_handle!(options, "options"), |o| o.max_bytes = Some(max_bytes));
        Ok(())
    })
}

/// Evicts modules unused for longer than `max_age_ms` milliseconds.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_options_set_max_age_ms(
    options: *const wasm_image_cache_options_t,
    max_age_ms: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit_cache(arg_handle!(options, "options"), |o| {
            o.max_age = Some(Duration::from_millis(max_age_ms))
        });
        Ok(())
    })
}

/// How long a tag's resolution is trusted under the `if-not-present` policy.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_options_set_tag_ttl_ms(
    options: *const wasm_image_cache_options_t,
    tag_ttl_ms: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit_cache(arg_handle!(options, "options"), |o| {
            o.tag_ttl = Duration::from_millis(tag_ttl_ms)
        });
        Ok(())
    })
}

/// When re-resolving fails with a network, timeout, 5xx or rate-limit error, serve the
/// last module known for the location (`wasm_image_fetch_entry_stale` then says so).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_options_set_stale_on_error(
    options: *const wasm_image_cache_options_t,
    enabled: bool,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit_cache(arg_handle!(options, "options"), |o| o.stale_on_error = enabled);
        Ok(())
    })
}

/// Re-hash the module on every cache hit (a damaged entry is then never served even
/// when its size is right).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_options_set_verify(
    options: *const wasm_image_cache_options_t,
    enabled: bool,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit_cache(arg_handle!(options, "options"), |o| o.verify_on_hit = enabled);
        Ok(())
    })
}

// ---- the cache ----------------------------------------------------------------------

/// A cache directory shared by threads and processes. Thread-safe. Give it to clients
/// with `wasm_image_client_options_set_cache`; free it with `wasm_image_cache_free`
/// (clients made with it keep it alive).
pub struct wasm_image_cache_t {
    cache: Cache,
    dir: NulStr,
}

impl Handle for wasm_image_cache_t {
    const NAME: &'static str = "wasm_image_cache_t";
}

/// Counters of one cache handle (this process's use of the directory).
#[repr(C)]
#[derive(Default)]
pub struct wasm_image_cache_stats_t {
    pub hits: u64,
    /// Hits served stale because the registry could not be reached.
    pub stale_hits: u64,
    pub misses: u64,
    pub bytes_downloaded: u64,
    pub evictions: u64,
}

/// What `wasm_image_cache_gc` did.
#[repr(C)]
#[derive(Default)]
pub struct wasm_image_gc_report_t {
    /// Modules evicted.
    pub removed: u64,
    pub freed_bytes: u64,
    /// Modules due for eviction but leased, so kept.
    pub kept_leased: u64,
    /// Files of interrupted writers removed.
    pub leftovers_removed: u64,
}

/// Opens (creating when needed) a cache directory. `options` may be NULL for the
/// defaults. Errors: `INVALID_ARGUMENT` when the path is not a directory or no default
/// directory can be found; `IO` when it cannot be created.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_open(
    options: *const wasm_image_cache_options_t,
    cache_out: *mut *mut wasm_image_cache_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(cache_out, "cache_out", ptr::null_mut());
        let options = match arg_optional_handle!(options, "options") {
            Some(o) => o.options.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            None => CacheOptions::default(),
        };
        let cache = Cache::open(options)?;
        let dir = NulStr::new(&cache.dir().to_string_lossy());
        *out = handle::into_raw(wasm_image_cache_t { cache, dir });
        Ok(())
    })
}

/// Frees a cache handle. NULL and a second free are ignored. Entries fetched through it
/// stay valid until freed themselves.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_free(cache: *mut wasm_image_cache_t) {
    ffi_boundary!({
        unsafe { handle::free(cache) };
    })
}

/// The cache directory, borrowed until the cache is freed. NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_dir(cache: *const wasm_image_cache_t) -> *const c_char {
    ffi_boundary!({ unsafe { handle::peek(cache) }.map_or(ptr::null(), |c| c.dir.as_ptr()) })
}

/// Fills `*stats_out` with the handle's counters.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_stats(
    cache: *const wasm_image_cache_t,
    stats_out: *mut wasm_image_cache_stats_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(stats_out, "stats_out", wasm_image_cache_stats_t::default());
        let s = arg_handle!(cache, "cache").cache.stats();
        *out = wasm_image_cache_stats_t {
            hits: s.hits,
            stale_hits: s.stale_hits,
            misses: s.misses,
            bytes_downloaded: s.bytes_downloaded,
            evictions: s.evictions,
        };
        Ok(())
    })
}

/// Evicts least recently used modules, never a leased one (held by an unfreed fetch
/// entry in any process), and removes what interrupted writers left. `max_bytes` and
/// `max_age_ms` point at bounds for this run, or are NULL for the cache's own (0 bytes
/// empties the cache of everything not leased). `report_out` may be NULL. Errors: `IO`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_gc(
    cache: *const wasm_image_cache_t,
    max_bytes: *const u64,
    max_age_ms: *const u64,
    report_out: *mut wasm_image_gc_report_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_optional_out!(report_out, wasm_image_gc_report_t::default());
        let cache = &arg_handle!(cache, "cache").cache;
        // SAFETY: NULL or pointing at a value, by the documented contract.
        let max_bytes = unsafe { max_bytes.as_ref() }
            .copied()
            .or(cache.options().max_bytes);
        let max_age = unsafe { max_age_ms.as_ref() }
            .map(|ms| Duration::from_millis(*ms))
            .or(cache.options().max_age);
        let report = cache.gc_with(max_bytes, max_age)?;
        if let Some(out) = out {
            *out = wasm_image_gc_report_t {
                removed: report.removed.len() as u64,
                freed_bytes: report.freed_bytes,
                kept_leased: report.kept_leased,
                leftovers_removed: report.leftovers_removed,
            };
        }
        Ok(())
    })
}

/// Re-hashes every module; damaged entries are dropped (and fetched again when next
/// asked for). `checked_out` and `dropped_out` may be NULL. Errors: `IO`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_verify(
    cache: *const wasm_image_cache_t,
    checked_out: *mut u64,
    dropped_out: *mut u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let checked_out = arg_optional_out!(checked_out, 0);
        let dropped_out = arg_optional_out!(dropped_out, 0);
        let report = arg_handle!(cache, "cache").cache.verify()?;
        if let Some(out) = checked_out {
            *out = report.checked;
        }
        if let Some(out) = dropped_out {
            *out = report.dropped.len() as u64;
        }
        Ok(())
    })
}

/// A snapshot of the cache's entries, least recently used first. Free with
/// `wasm_image_cache_entries_free`.
pub struct wasm_image_cache_entries_t {
    entries: Vec<ListedEntry>,
}

struct ListedEntry {
    digest: NulStr,
    path: NulStr,
    entry: CachedEntry,
}

impl Handle for wasm_image_cache_entries_t {
    const NAME: &'static str = "wasm_image_cache_entries_t";
}

/// Lists the complete entries. Errors: `IO`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries(
    cache: *const wasm_image_cache_t,
    entries_out: *mut *mut wasm_image_cache_entries_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(entries_out, "entries_out", ptr::null_mut());
        let entries = arg_handle!(cache, "cache")
            .cache
            .entries()?
            .into_iter()
            .map(|entry| ListedEntry {
                digest: NulStr::new(&entry.module_digest.to_string()),
                path: NulStr::new(&entry.path.to_string_lossy()),
                entry,
            })
            .collect();
        *out = handle::into_raw(wasm_image_cache_entries_t { entries });
        Ok(())
    })
}

fn listed(list: *const wasm_image_cache_entries_t, index: usize) -> Option<&'static ListedEntry> {
    // SAFETY: `peek` checks the handle is live; the borrow lasts while C keeps it.
    unsafe { handle::peek(list) }.and_then(|l| l.entries.get(index))
}

/// How many entries the list holds; 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries_count(
    list: *const wasm_image_cache_entries_t,
) -> usize {
    ffi_boundary!({ unsafe { handle::peek(list) }.map_or(0, |l| l.entries.len()) })
}

/// The `index`th entry's module digest; NULL past the end.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries_module_digest(
    list: *const wasm_image_cache_entries_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({ listed(list, index).map_or(ptr::null(), |e| e.digest.as_ptr()) })
}

/// The `index`th entry's module file; NULL past the end.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries_path(
    list: *const wasm_image_cache_entries_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({ listed(list, index).map_or(ptr::null(), |e| e.path.as_ptr()) })
}

/// The `index`th entry's size in bytes; 0 past the end.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries_size(
    list: *const wasm_image_cache_entries_t,
    index: usize,
) -> u64 {
    ffi_boundary!({ listed(list, index).map_or(0, |e| e.entry.size) })
}

/// When the `index`th entry was last used, in milliseconds since the Unix epoch.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries_last_used_ms(
    list: *const wasm_image_cache_entries_t,
    index: usize,
) -> u64 {
    ffi_boundary!({
        listed(list, index).map_or(0, |e| {
            e.entry
                .last_used
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        })
    })
}

/// Whether the `index`th entry was leased when listed.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries_leased(
    list: *const wasm_image_cache_entries_t,
    index: usize,
) -> bool {
    ffi_boundary!({ listed(list, index).is_some_and(|e| e.entry.leased) })
}

/// Frees a list. NULL and a second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cache_entries_free(list: *mut wasm_image_cache_entries_t) {
    ffi_boundary!({
        unsafe { handle::free(list) };
    })
}

/// Makes clients built from these options fetch through `cache` (NULL: the default
/// directory). The options keep their own reference.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_cache(
    options: *const wasm_image_client_options_t,
    cache: *const wasm_image_cache_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let cache = arg_optional_handle!(cache, "cache").map(|c| c.cache.clone());
        options
            .options
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cache = cache;
        Ok(())
    })
}

// ---- fetch --------------------------------------------------------------------------

/// Options of one fetch: pull policy, expected digest, stale-on-error. NULL in their
/// place means `if-not-present`, no expected digest and the cache's stale-on-error.
pub struct wasm_image_fetch_options_t {
    options: Mutex<FetchOptions>,
}

impl Handle for wasm_image_fetch_options_t {
    const NAME: &'static str = "wasm_image_fetch_options_t";
}

fn edit_fetch(options: &wasm_image_fetch_options_t, change: impl FnOnce(&mut FetchOptions)) {
    change(&mut options.options.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Makes fetch options with the defaults. Never returns NULL.
#[no_mangle]
pub extern "C" fn wasm_image_fetch_options_new() -> *mut wasm_image_fetch_options_t {
    ffi_boundary!({
        handle::into_raw(wasm_image_fetch_options_t {
            options: Mutex::new(FetchOptions::default()),
        })
    })
}

/// Frees fetch options. NULL and a second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_options_free(options: *mut wasm_image_fetch_options_t) {
    ffi_boundary!({
        unsafe { handle::free(options) };
    })
}

/// `"if-not-present"` (a digest-pinned location answered from the cache with no
/// request, a tag re-resolved at most every tag TTL), `"always"` (resolve the tag on
/// every call; download only when its digest changed) or `"never"` (the cache only;
/// `NOT_FOUND` otherwise); Kubernetes' spellings (`"IfNotPresent"`, …) too. Errors:
/// `INVALID_ARGUMENT` for another word.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_options_set_policy(
    options: *const wasm_image_fetch_options_t,
    policy: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let policy = arg_str!(policy, "policy").parse::<Policy>()?;
        edit_fetch(options, |o| o.policy = policy);
        Ok(())
    })
}

/// The digest the module or its manifest (or index) must have, `"sha256:<hex>"` or the
/// bare hex; NULL clears it. A mismatch is `DIGEST_MISMATCH` and nothing is cached.
/// Errors: `INVALID_ARGUMENT` for a malformed digest.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_options_set_expected_digest(
    options: *const wasm_image_fetch_options_t,
    digest: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let digest = if digest.is_null() {
            None
        } else {
            Some(parse_expected_digest(arg_str!(digest, "digest"))?)
        };
        edit_fetch(options, |o| o.expected_digest = digest);
        Ok(())
    })
}

/// Overrides the cache's stale-on-error for fetches with these options.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_options_set_stale_on_error(
    options: *const wasm_image_fetch_options_t,
    enabled: bool,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit_fetch(arg_handle!(options, "options"), |o| o.stale_on_error = Some(enabled));
        Ok(())
    })
}

/// A fetched module, leased: its file stays readable at `wasm_image_fetch_entry_path`
/// (in this and every other process) until the handle is freed. Immutable; may be read
/// from any thread.
pub struct wasm_image_fetch_entry_t {
    entry: Entry,
    path: NulStr,
    module_digest: NulStr,
    manifest_digest: Option<NulStr>,
    index_digest: Option<NulStr>,
    variant: Option<NulStr>,
    runtime_config_json: Option<NulStr>,
}

impl Handle for wasm_image_fetch_entry_t {
    const NAME: &'static str = "wasm_image_fetch_entry_t";
}

/// The module for a control plane: from the client's cache when the policy allows, else
/// downloaded once (however many threads and processes ask at the same time), verified
/// and added. Every location form works, plus `https://HOST/PATH` (a bare module;
/// `http://` only for hosts on the insecure list) and `file:///PATH`. `fetch_options`
/// and `call` may be NULL. On success `*entry_out` receives the entry (free it with
/// `wasm_image_fetch_entry_free` to release the lease); on failure NULL.
///
/// Blocks like `wasm_image_pull`. Errors: as `wasm_image_pull`, plus `NOT_FOUND` under
/// the `never` policy for a location not cached and `DIGEST_MISMATCH` for an expected
/// digest that matches neither module nor manifest.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch(
    client: *const wasm_image_client_t,
    location: *const c_char,
    fetch_options: *const wasm_image_fetch_options_t,
    call: *const wasm_image_call_options_t,
    entry_out: *mut *mut wasm_image_fetch_entry_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(entry_out, "entry_out", ptr::null_mut());
        let client = arg_handle!(client, "client").client();
        let location = arg_str!(location, "location");
        let fetch = arg_optional_handle!(fetch_options, "fetch_options")
            .map(|o| o.options.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default();
        let call = arg_optional_handle!(call, "call");
        let entry = blocking(call, |options| async move {
            client.fetch(location, &fetch, &options).await
        })?;
        let text = |d: Option<&wasm_image::Digest>| d.map(|d| NulStr::new(&d.to_string()));
        *out = handle::into_raw(wasm_image_fetch_entry_t {
            path: NulStr::new(&entry.path().to_string_lossy()),
            module_digest: NulStr::new(&entry.module_digest().to_string()),
            manifest_digest: text(entry.manifest_digest()),
            index_digest: text(entry.index_digest()),
            variant: entry.variant().map(NulStr::new),
            runtime_config_json: entry
                .runtime_config()
                .map(|rc| NulStr::new(&String::from_utf8_lossy(&rc.to_json()))),
            entry,
        });
        Ok(())
    })
}

fn entry<'a>(e: *const wasm_image_fetch_entry_t) -> Option<&'a wasm_image_fetch_entry_t> {
    // SAFETY: `peek` checks the handle is live.
    unsafe { handle::peek(e) }
}

/// The read-only module file, borrowed until the entry is freed. NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_path(
    e: *const wasm_image_fetch_entry_t,
) -> *const c_char {
    ffi_boundary!({ entry(e).map_or(ptr::null(), |e| e.path.as_ptr()) })
}

/// The module's digest, `"sha256:…"`. NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_module_digest(
    e: *const wasm_image_fetch_entry_t,
) -> *const c_char {
    ffi_boundary!({ entry(e).map_or(ptr::null(), |e| e.module_digest.as_ptr()) })
}

/// The manifest's digest; NULL for a bare module (`https://`, `file://`).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_manifest_digest(
    e: *const wasm_image_fetch_entry_t,
) -> *const c_char {
    ffi_boundary!({ entry(e).map_or(ptr::null(), |e| opt_ptr(&e.manifest_digest)) })
}

/// The index's digest when the location named an index; NULL otherwise.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_index_digest(
    e: *const wasm_image_fetch_entry_t,
) -> *const c_char {
    ffi_boundary!({ entry(e).map_or(ptr::null(), |e| opt_ptr(&e.index_digest)) })
}

/// The image format's name (`"oci"`, `"compat"`, …); NULL for a bare module.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_variant(
    e: *const wasm_image_fetch_entry_t,
) -> *const c_char {
    ffi_boundary!({ entry(e).map_or(ptr::null(), |e| opt_ptr(&e.variant)) })
}

/// The runtime config as JSON, unknown fields included; NULL when the image has none.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_runtime_config_json(
    e: *const wasm_image_fetch_entry_t,
) -> *const c_char {
    ffi_boundary!({ entry(e).map_or(ptr::null(), |e| opt_ptr(&e.runtime_config_json)) })
}

/// The module's size in bytes; 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_size(e: *const wasm_image_fetch_entry_t) -> u64 {
    ffi_boundary!({ entry(e).map_or(0, |e| e.entry.size()) })
}

/// Whether the entry was served from the cache because the registry could not be
/// reached (stale-on-error); false for NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_stale(e: *const wasm_image_fetch_entry_t) -> bool {
    ffi_boundary!({ entry(e).is_some_and(|e| e.entry.stale()) })
}

/// Frees the entry and releases its lease: eviction may then remove the file. NULL and a
/// second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_fetch_entry_free(e: *mut wasm_image_fetch_entry_t) {
    ffi_boundary!({
        unsafe { handle::free(e) };
    })
}
