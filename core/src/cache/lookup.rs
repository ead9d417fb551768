//! Answering from the cache: finding a location's entry, leasing it, checking it is
//! intact, and recording that a tag still resolves to what is cached.

use super::entry::Entry;
use super::index::{now_secs, Index, RefRecord};
use super::lease::Lease;
use super::{gc, CacheOptions};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::location::{Location, Selector};

/// A cache hit for a location, with what its ref says.
pub(super) struct Known {
    pub(super) entry: Entry,
    pub(super) reference: RefRecord,
}

/// The key a location's ref is stored under: a pinned location without its tag (the
/// digest wins), so `oci://h/r:t@D`, `h/r@D` and `docker://h/r@D` share one.
pub(super) fn ref_key(location: &Location) -> String {
    if let Location::Url { url } = location {
        return url.clone();
    }
    match location.selector().digest {
        Some(d) if !location.is_plain_module() => location
            .with_selector(Selector {
                tag: None,
                digest: Some(d),
            })
            .to_string(),
        _ => location.to_string(),
    }
}

/// A module entry by digest and image key, leased, its size checked (and its digest,
/// with `verify_on_hit`). A damaged one is dropped and reads as absent.
pub(super) fn lease_module(
    index: &Index,
    options: &CacheOptions,
    digest: &Digest,
    resolved: &str,
    location: &str,
) -> Result<Option<Entry>> {
    let Some(record) = index.read_record(digest) else {
        return Ok(None);
    };
    let Some(image) = record.images.get(resolved).cloned() else {
        return Ok(None);
    };
    let lease_path = index.lease_path(digest);
    let lease = Lease::acquire(&lease_path)
        .map_err(|e| Error::io(format!("cache lease {}", lease_path.display()), e))?;
    // Eviction may have run between reading the record and taking the lease.
    if !index.record_path(digest).exists() {
        return Ok(None);
    }
    let path = index.module_path(digest);
    let intact = match std::fs::metadata(&path) {
        Ok(m) => {
            m.len() == record.size
                && (!options.verify_on_hit || gc::module_intact(&path, digest, record.size))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(format!("cache {}", path.display()), e)),
    };
    if !intact {
        tracing::warn!(module = %digest, path = %path.display(), "cached module is damaged; dropping it and fetching again");
        drop(lease);
        gc::drop_damaged(index, digest)?;
        return Ok(None);
    }
    index.touch(digest);
    Ok(Some(Entry::leased(
        path,
        record.digest,
        record.size,
        image,
        location,
        lease,
    )))
}

/// Records that a tag still resolves to `resolved`, unless the ref already says so
/// recently: callers sharing one download, or re-resolving with `always`, mostly write
/// nothing.
pub(super) fn confirm_tag(
    index: &Index,
    options: &CacheOptions,
    key: &str,
    location: &str,
    resolved: &str,
    entry: &Entry,
) -> Result<()> {
    let now = now_secs();
    let fresh = index.read_ref(key).is_some_and(|r| {
        r.resolved == resolved
            && r.module == entry.module_digest
            && now - r.confirmed_at < options.tag_ttl.as_secs_f64() / 2.0
    });
    if fresh {
        return Ok(());
    }
    index.write_ref(
        key,
        &RefRecord {
            location: location.to_string(),
            resolved: resolved.to_string(),
            module: entry.module_digest.clone(),
            confirmed_at: now,
        },
    )
}

pub(super) fn lookup(
    index: &Index,
    options: &CacheOptions,
    key: &str,
    location: &str,
) -> Result<Option<Known>> {
    let Some(reference) = index.read_ref(key) else {
        return Ok(None);
    };
    Ok(lease_module(
        index,
        options,
        &reference.module,
        &reference.resolved,
        location,
    )?
    .map(|entry| Known { entry, reference }))
}
