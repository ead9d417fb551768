//! Eviction (by total size and by age since last use, least recently used first, never
//! a leased entry), removal of what interrupted writers left, and verification.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::entry::CachedEntry;
use super::index::Index;
use super::lease::{is_leased, Exclusive};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, Result};
use crate::files::TEMP_PREFIX;

/// A module eviction removed.
#[derive(Debug, Clone)]
pub struct Removed {
    pub module_digest: Digest,
    pub size: u64,
    pub last_used: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub removed: Vec<Removed>,
    pub freed_bytes: u64,
    /// Entries that were due for eviction but leased, so kept.
    pub kept_leased: u64,
    /// Files no entry owned (from writers killed mid-way) that were removed.
    pub leftovers_removed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub checked: u64,
    /// Damaged entries, dropped.
    pub dropped: Vec<Digest>,
}

/// An entry as found on disk.
struct Found {
    digest: Digest,
    size: u64,
    last_used: SystemTime,
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::io(format!("cache {}", path.display()), e)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Names in a directory ending in `suffix`, as digests (other files are skipped).
fn digests_in(dir: &Path, suffix: &str) -> Result<Vec<(Digest, std::fs::DirEntry)>> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(io_err(dir))? {
        let item = item.map_err(io_err(dir))?;
        let name = item.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else {
            continue;
        };
        if let Ok(d) = format!("sha256:{hex}").parse::<Digest>() {
            out.push((d, item));
        }
    }
    Ok(out)
}

/// Complete entries: a record whose module file exists with the recorded size. Records
/// whose module is gone or the wrong size are dropped here (the caller holds the index
/// lock).
fn scan(index: &Index, drop_broken: bool) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for (digest, item) in digests_in(&index.dir("entries"), ".json")? {
        let last_used = item
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let module = fs::metadata(index.module_path(&digest));
        let record = Index::read_record_at(&item.path());
        let complete = match (&module, &record) {
            (Ok(m), Some(r)) => m.len() == r.size && r.digest == digest,
            _ => false,
        };
        if complete {
            found.push(Found {
                size: module.map(|m| m.len()).unwrap_or(0),
                digest,
                last_used,
            });
        } else if drop_broken {
            tracing::warn!(module = %digest, "dropping a damaged cache entry");
            let _ = remove_if_present(&item.path());
        }
    }
    found.sort_by_key(|f| f.last_used);
    Ok(found)
}

pub fn list(index: &Index) -> Result<Vec<CachedEntry>> {
    let mut out = Vec::new();
    for f in scan(index, false)? {
        let manifest_digests = index
            .read_record(&f.digest)
            .map(|r| {
                r.images
                    .values()
                    .filter_map(|i| i.manifest_digest.clone())
                    .collect()
            })
            .unwrap_or_default();
        out.push(CachedEntry {
            path: index.module_path(&f.digest),
            leased: is_leased(&index.lease_path(&f.digest)),
            module_digest: f.digest,
            size: f.size,
            last_used: f.last_used,
            manifest_digests,
        });
    }
    Ok(out)
}

/// Removes one entry if nobody leases it: record first (so it stops being an entry at
/// once), then the module, then the lease file.
fn evict(index: &Index, digest: &Digest) -> Result<bool> {
    let lease_path = index.lease_path(digest);
    let Some(held) = Exclusive::try_take(&lease_path).map_err(io_err(&lease_path))? else {
        return Ok(false);
    };
    let record = index.record_path(digest);
    remove_if_present(&record).map_err(io_err(&record))?;
    let module = index.module_path(digest);
    remove_if_present(&module).map_err(io_err(&module))?;
    held.remove().map_err(io_err(&lease_path))?;
    Ok(true)
}

/// Evicts `victims` (see [`evict`]), side by side when there are many; whether each
/// went, in order. The first error, if any, once all have been tried.
fn evict_all(index: &Index, victims: &[&Found]) -> Result<Vec<bool>> {
    if victims.len() <= EVICTED_INLINE_UP_TO {
        return victims.iter().map(|e| evict(index, &e.digest)).collect();
    }
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<std::sync::Mutex<Option<Result<bool>>>> = victims
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..EVICTING_AT_ONCE.min(victims.len()) {
            scope.spawn(|| loop {
                let i = taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(e) = victims.get(i) else { break };
                let outcome = evict(index, &e.digest);
                *outcomes[i]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
            });
        }
    });
    outcomes
        .into_iter()
        .map(|o| {
            o.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or_else(|| Err(Error::internal("an eviction was never tried")))
        })
        .collect()
}

/// Drops a damaged entry: its record goes at once (it is no longer served); the module
/// file goes too unless someone still holds it (then the next `gc` takes it).
pub fn drop_damaged(index: &Index, digest: &Digest) -> Result<()> {
    let _lock = index.lock()?;
    let record = index.record_path(digest);
    remove_if_present(&record).map_err(io_err(&record))?;
    evict(index, digest)?;
    Ok(())
}

/// Evictions run side by side from this many at once: removing a file waits on the disk
/// where the file system discards freed blocks at once (ext4's `discard`, common on
/// cloud disks), about a tenth of a millisecond each, and those waits overlap.
const EVICTING_AT_ONCE: usize = 8;
/// Fewer victims than this are removed on the calling thread: starting threads would
/// cost more than it saves.
const EVICTED_INLINE_UP_TO: usize = 32;

pub fn collect(
    index: &Index,
    max_bytes: Option<u64>,
    max_age: Option<Duration>,
) -> Result<GcReport> {
    let _lock = index.lock()?;
    let mut report = GcReport::default();
    let entries = scan(index, true)?;
    let mut total: u64 = entries.iter().map(|e| e.size).sum();
    let now = SystemTime::now();
    let due = |e: &Found, total: u64| {
        let too_old = max_age.is_some_and(|age| {
            now.duration_since(e.last_used)
                .is_ok_and(|unused| unused > age)
        });
        too_old || max_bytes.is_some_and(|max| total > max)
    };
    // Entries are oldest first: once one is not due, no later one is until a leased
    // entry, kept, leaves the total above the bound and more must go.
    let mut next = 0;
    loop {
        let mut planned = Vec::new();
        let mut planned_total = total;
        while let Some(e) = entries.get(next).filter(|e| due(e, planned_total)) {
            planned_total -= e.size;
            planned.push(e);
            next += 1;
        }
        if planned.is_empty() {
            break;
        }
        let mut kept = 0;
        for (e, evicted) in planned.iter().zip(evict_all(index, &planned)?) {
            if evicted {
                total -= e.size;
                report.freed_bytes += e.size;
                report.removed.push(Removed {
                    module_digest: e.digest.clone(),
                    size: e.size,
                    last_used: e.last_used,
                });
            } else {
                kept += 1;
            }
        }
        report.kept_leased += kept;
        if kept == 0 {
            break;
        }
    }
    let removed: HashSet<&Digest> = report.removed.iter().map(|r| &r.module_digest).collect();
    let live: HashSet<Digest> = entries
        .iter()
        .map(|e| &e.digest)
        .filter(|d| !removed.contains(d))
        .cloned()
        .collect();
    report.leftovers_removed = remove_leftovers(index, &live)?;
    if !report.removed.is_empty() {
        tracing::info!(
            removed = report.removed.len(),
            freed = report.freed_bytes,
            "cache eviction"
        );
    }
    Ok(report)
}

/// Module and lease files no entry owns, record temp files, dangling refs and the
/// staging directories of downloads that died. The caller holds the index lock, so no
/// insert is between its rename and its record.
fn remove_leftovers(index: &Index, live: &HashSet<Digest>) -> Result<u64> {
    let mut removed = 0;
    for (digest, item) in digests_in(&index.dir("modules"), ".wasm")? {
        if live.contains(&digest) {
            continue;
        }
        if let Some(held) = Exclusive::try_take(&index.lease_path(&digest))
            .ok()
            .flatten()
        {
            if remove_if_present(&item.path()).is_ok() {
                removed += 1;
            }
            let _ = held.remove();
        }
    }
    for (digest, _) in digests_in(&index.dir("leases"), ".lock")? {
        if !live.contains(&digest) {
            if let Some(held) = Exclusive::try_take(&index.lease_path(&digest))
                .ok()
                .flatten()
            {
                let _ = held.remove();
            }
        }
    }
    for sub in ["modules", "entries", "refs", "locks"] {
        let dir = index.dir(sub);
        for item in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            if item.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                && remove_if_present(&item.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    let refs = index.dir("refs");
    for item in fs::read_dir(&refs).map_err(io_err(&refs))?.flatten() {
        let dangling = fs::read(item.path())
            .ok()
            .and_then(|d| serde_json::from_slice::<super::index::RefRecord>(&d).ok())
            .is_none_or(|r| !live.contains(&r.module));
        if dangling && remove_if_present(&item.path()).is_ok() {
            removed += 1;
        }
    }
    let staging = index.dir("staging");
    for item in fs::read_dir(&staging).map_err(io_err(&staging))?.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let lock = index.dir("locks").join(format!("{name}.lock"));
        // A download in progress holds its lock; a dead one's lock is free.
        let Ok(file) = fs::File::options().read(true).write(true).open(&lock) else {
            let _ = fs::remove_dir_all(item.path());
            removed += 1;
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = fs::remove_dir_all(item.path());
            removed += 1;
        }
    }
    // Download locks nobody holds (one per image ever fetched) and their failure notes,
    // which matter only to callers waiting while that download failed. A lock is
    // unlinked while held; a waiter that opened it meanwhile sees that and retries.
    let locks = index.dir("locks");
    for item in fs::read_dir(&locks).map_err(io_err(&locks))?.flatten() {
        let path = item.path();
        let is_download_lock = path.extension().is_some_and(|e| e == "lock")
            && path.file_stem().is_some_and(|s| s != "index");
        if !is_download_lock {
            continue;
        }
        if let Some(held) = Exclusive::try_take(&path).ok().flatten() {
            let _ = remove_if_present(&path.with_extension("failed"));
            if held.remove().is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hasher.finish(), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// Whether a module file still holds the bytes of its digest.
pub fn module_intact(path: &Path, digest: &Digest, size: u64) -> bool {
    matches!(hash_file(path), Ok((d, n)) if d == *digest && n == size)
}

pub fn verify(index: &Index) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let entries = {
        let _lock = index.lock()?;
        scan(index, true)?
    };
    for e in entries {
        report.checked += 1;
        if !module_intact(&index.module_path(&e.digest), &e.digest, e.size) {
            tracing::warn!(module = %e.digest, "cached module is damaged; dropping it");
            drop_damaged(index, &e.digest)?;
            report.dropped.push(e.digest);
        }
    }
    Ok(report)
}
