//! Downloading an image's module (or a bare module) into the staging directory of its
//! flight, and adding it to the cache atomically.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::entry::Entry;
use super::flight::Flight;
use super::index::{now_secs, ImageRecord, Index, ModuleRecord, RefRecord};
use super::lease::Lease;
use super::Cache;
use crate::client::Client;
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, ErrorKind, Result};
use crate::location::Location;
use crate::options::CallOptions;
use crate::store::Context;

/// What a download produced, ready to be added.
pub(super) struct Downloaded {
    pub(super) file: std::path::PathBuf,
    pub(super) digest: Digest,
    pub(super) size: u64,
    pub(super) resolved: String,
    pub(super) image: ImageRecord,
}

/// Adds an entry under the index lock: module renamed into place, then its record, then
/// the refs; the caller's lease is taken before the lock is released, so an eviction
/// running next cannot take it away.
pub(super) fn commit(
    index: &Index,
    done: Downloaded,
    refs: &[(String, String)],
    location: &str,
) -> Result<Entry> {
    let _lock = index.lock()?;
    index.install_module(&done.file, &done.digest)?;
    let mut record = index
        .read_record(&done.digest)
        .filter(|r| r.size == done.size)
        .unwrap_or_else(|| ModuleRecord {
            digest: done.digest.clone(),
            size: done.size,
            images: Default::default(),
        });
    record
        .images
        .insert(done.resolved.clone(), done.image.clone());
    index.write_record(&record)?;
    let now = now_secs();
    for (key, shown) in refs {
        index.write_ref(
            key,
            &RefRecord {
                location: shown.clone(),
                resolved: done.resolved.clone(),
                module: done.digest.clone(),
                confirmed_at: now,
            },
        )?;
    }
    // Eviction takes the index lock too, so nothing can remove the entry before this.
    let lease_path = index.lease_path(&done.digest);
    let lease = Lease::acquire(&lease_path)
        .map_err(|e| Error::io(format!("cache lease {}", lease_path.display()), e))?;
    Ok(Entry::leased(
        index.module_path(&done.digest),
        done.digest,
        done.size,
        done.image,
        location,
        lease,
    ))
}

/// Streams a bare module into `file`: bounded, hashed, its Wasm header checked, synced.
pub(super) async fn download_plain(
    ctx: &Context,
    location: &Location,
    file: &Path,
) -> Result<(Digest, u64)> {
    let limit = ctx.options.limits.max_module_bytes;
    let mut opened = crate::store::plain_module::source::open(location, ctx).await?;
    let what = opened.what.clone();
    let write_err = |e| Error::io(format!("cache {}", file.display()), e);
    let mut out = tokio::fs::File::create(file).await.map_err(write_err)?;
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut head = Vec::with_capacity(8);
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = opened
            .reader
            .read(&mut buf)
            .await
            .map_err(|e| Error::from_io(e).context(&what))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(Error::limit_exceeded(format!(
                "{what}: the module is larger than the limit of {limit} bytes"
            )));
        }
        if head.len() < 8 {
            let take = (8 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).await.map_err(write_err)?;
    }
    if let Some(announced) = opened.size {
        if announced != size {
            return Err(Error::new(
                ErrorKind::Network,
                format!("{what}: the transfer ended after {size} of {announced} bytes"),
            ));
        }
    }
    crate::module_facts::check_wasm_header(&head, &what)?;
    out.flush().await.map_err(write_err)?;
    out.sync_all().await.map_err(write_err)?;
    Ok((hasher.finish(), size))
}

/// Where a download goes and what it is filed under.
pub(super) struct Plan {
    /// Flight and ref key of the content being fetched (the pinned form for images).
    pub(super) key: String,
    /// The location pulled (pinned to the resolved digest for images).
    pub(super) pull: Location,
    /// The digest the location resolved to; `""` for a bare module.
    pub(super) resolved: String,
}

pub(super) async fn download(
    client: &Client,
    ctx: &Context,
    plan: &Plan,
    flight: &Flight,
    call: &CallOptions,
) -> Result<Downloaded> {
    let staging = flight.fresh_staging()?;
    let file = staging.join("module.wasm");
    if plan.pull.is_plain_module() {
        let (digest, size) = download_plain(ctx, &plan.pull, &file).await?;
        return Ok(Downloaded {
            file,
            digest,
            size,
            resolved: plan.resolved.clone(),
            image: ImageRecord {
                manifest_digest: None,
                index_digest: None,
                variant: None,
                runtime_config: None,
                annotations: Default::default(),
            },
        });
    }
    let info = client
        .pull_to_file(&plan.pull.to_string(), &file, call)
        .await?;
    Ok(Downloaded {
        file,
        digest: info.module_digest,
        size: info.module_size,
        resolved: plan.resolved.clone(),
        image: ImageRecord {
            manifest_digest: Some(info.manifest_digest),
            index_digest: info.index_digest,
            variant: Some(info.variant.name().to_string()),
            runtime_config: info.runtime_config.map(|r| r.raw),
            annotations: info.annotations,
        },
    })
}

/// Runs eviction after an insert when the cache has bounds.
pub(super) async fn evict_after_insert(cache: &Cache) {
    let o = &cache.inner().options;
    if o.max_bytes.is_none() && o.max_age.is_none() {
        return;
    }
    let cache = cache.clone();
    let result = tokio::task::spawn_blocking(move || cache.gc()).await;
    if let Ok(Err(e)) = result {
        tracing::warn!(error = %e, "cache eviction after an insert failed");
    }
}
