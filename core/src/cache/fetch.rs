//! The fetch flow: answer from the cache when the policy allows, else resolve, else
//! download once (under the image's flight lock), verify, and add the entry atomically.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::entry::Entry;
use super::flight::Flight;
use super::index::{now_secs, ImageRecord, Index, ModuleRecord, RefRecord};
use super::lease::Lease;
use super::{gc, Cache, CacheOptions, FetchOptions, Policy};
use crate::client::Client;
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, ErrorKind, Result};
use crate::image::RuntimeConfig;
use crate::location::{Location, Selector};
use crate::options::{CallOptions, Context};

/// A cache hit for a location, with what its ref says.
struct Known {
    entry: Entry,
    reference: RefRecord,
}

/// Errors that mean "the registry cannot be asked right now", which stale-on-error
/// bridges; a 404 or 401 is an answer and is never papered over.
fn is_outage(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Network | ErrorKind::Timeout | ErrorKind::RateLimited => true,
        ErrorKind::Registry => e.registry().is_none_or(|r| r.status >= 500),
        _ => false,
    }
}

/// An expected digest names the module, the manifest, or the index it was chosen from.
fn digest_matches(
    expected: &Digest,
    module: &Digest,
    manifest: Option<&Digest>,
    index: Option<&Digest>,
) -> bool {
    expected == module || Some(expected) == manifest || Some(expected) == index
}

fn expected_matches(expected: Option<&Digest>, entry: &Entry) -> bool {
    expected.is_none_or(|d| {
        digest_matches(
            d,
            &entry.module_digest,
            entry.manifest_digest.as_ref(),
            entry.index_digest.as_ref(),
        )
    })
}

fn mismatch(location: &str, expected: &Digest, entry: &Entry) -> Error {
    let manifest = entry
        .manifest_digest
        .as_ref()
        .map(|m| format!(" nor the manifest ({m})"))
        .unwrap_or_default();
    Error::new(
        ErrorKind::DigestMismatch,
        format!(
            "{location}: expected digest {expected} matches neither the module ({}){manifest}",
            entry.module_digest
        ),
    )
}

/// The key a location's ref is stored under: a pinned location without its tag (the
/// digest wins), so `oci://h/r:t@D`, `h/r@D` and `docker://h/r@D` share one.
fn ref_key(location: &Location) -> String {
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
fn lease_module(
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
    Ok(Some(Entry {
        path,
        module_digest: record.digest,
        size: record.size,
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
    }))
}

/// Records that a tag still resolves to `resolved`, unless the ref already says so
/// recently: callers sharing one download, or re-resolving with `always`, mostly write
/// nothing.
fn confirm_tag(
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

fn lookup(
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

/// What a download produced, ready to be added.
struct Downloaded {
    file: std::path::PathBuf,
    digest: Digest,
    size: u64,
    resolved: String,
    image: ImageRecord,
}

/// Adds an entry under the index lock: module renamed into place, then its record, then
/// the refs; the caller's lease is taken before the lock is released, so an eviction
/// running next cannot take it away.
fn commit(
    index: &Index,
    options: &CacheOptions,
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
    record.images.insert(done.resolved.clone(), done.image);
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
    lease_module(index, options, &done.digest, &done.resolved, location)?.ok_or_else(|| {
        Error::internal(format!(
            "cache entry {} vanished while it was being added",
            done.digest
        ))
    })
}

/// Streams a bare module into `file`: bounded, hashed, its Wasm header checked, synced.
async fn download_plain(ctx: &Context, location: &Location, file: &Path) -> Result<(Digest, u64)> {
    let limit = ctx.options.limits.max_module_bytes;
    let mut opened = crate::plain_module::open(location, ctx).await?;
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
    crate::extract::check_wasm_header(&head, &what)?;
    out.flush().await.map_err(write_err)?;
    out.sync_all().await.map_err(write_err)?;
    Ok((hasher.finish(), size))
}

/// Where a download goes and what it is filed under.
struct Plan {
    /// Flight and ref key of the content being fetched (the pinned form for images).
    key: String,
    /// The location pulled (pinned to the resolved digest for images).
    pull: Location,
    /// The digest the location resolved to; `""` for a bare module.
    resolved: String,
}

async fn download(
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
async fn evict_after_insert(cache: &Cache) {
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

fn stale(cache: &Cache, known: Option<Known>, error: Error, location: &str) -> Result<Entry> {
    match known {
        Some(Known {
            mut entry,
            reference,
        }) => {
            tracing::warn!(
                location,
                error = %error,
                module = %entry.module_digest,
                confirmed_at = reference.confirmed_at,
                "the registry cannot be reached; serving the last module known for this location (stale)"
            );
            entry.stale = true;
            cache.inner().counters.hit(true);
            Ok(entry)
        }
        None => Err(error),
    }
}

pub(crate) async fn fetch(
    client: &Client,
    ctx: &Context,
    cache: &Cache,
    location: &str,
    options: &FetchOptions,
    call: &CallOptions,
) -> Result<Entry> {
    let parsed = Location::parse(location)?;
    let inner = cache.inner();
    let index = &inner.index;
    let copts = &inner.options;
    let expected = options.expected_digest.as_ref();
    let stale_on_error = options.stale_on_error.unwrap_or(copts.stale_on_error);
    let plain = parsed.is_plain_module();
    let pinned = if plain {
        None
    } else {
        parsed.selector().digest
    };
    let key = ref_key(&parsed);
    let shown = parsed.to_string();
    let hit = |entry: Entry| {
        inner.counters.hit(false);
        Ok(entry)
    };

    // A download that fails after this moment fails this call too (see `Flight`).
    let arrived = now_secs();

    // 1. The cache alone.
    let trusted = |k: &Known| {
        let age = now_secs() - k.reference.confirmed_at;
        pinned.is_some()
            || options.policy == Policy::Never
            || (options.policy == Policy::IfNotPresent
                && (age >= 0.0 && age < copts.tag_ttl.as_secs_f64()
                    || (plain && expected.is_some())))
    };
    let mut known = lookup(index, copts, &key, &shown)?;
    if let Some(k) = known.as_ref().filter(|k| trusted(k)) {
        if expected_matches(expected, &k.entry) {
            return hit(known.take().expect("checked").entry);
        }
        // A pinned location cannot change; a tag may have moved to the expected one.
        if pinned.is_some() || options.policy == Policy::Never {
            return Err(mismatch(&shown, expected.expect("mismatch"), &k.entry));
        }
    }
    if plain && options.policy != Policy::Always {
        if let Some(d) = expected {
            if let Some(entry) = lease_module(index, copts, d, "", &shown)? {
                return hit(entry);
            }
        }
    }
    if options.policy == Policy::Never {
        return Err(Error::not_found(format!(
            "{shown} is not in the cache {} (pull policy never)",
            index.root().display()
        )));
    }

    // 2. Resolve a tag (one manifest request). Under if-not-present, threads of this
    // process asking for one tag take turns, so one resolves it and the rest find it
    // confirmed (64 callers make one request, not 64).
    let tag_turn = if !plain && pinned.is_none() && options.policy == Policy::IfNotPresent {
        let turn = inner.flights.queue(&format!("resolve {key}")).await;
        known = lookup(index, copts, &key, &shown)?;
        if let Some(k) = known.as_ref().filter(|k| trusted(k)) {
            if expected_matches(expected, &k.entry) {
                return hit(known.take().expect("checked").entry);
            }
        }
        if let Some(e) = inner.flights.resolve_failure_since(&key, arrived) {
            if stale_on_error && is_outage(&e) {
                return stale(cache, known, e, &shown);
            }
            return Err(e);
        }
        Some(turn)
    } else {
        None
    };
    let plan = if plain {
        Plan {
            key: key.clone(),
            pull: parsed.clone(),
            resolved: String::new(),
        }
    } else {
        let digest = match pinned.clone() {
            Some(d) => d,
            None => match client.resolve(&shown, call).await {
                Ok(r) => r.digest,
                Err(e) => {
                    if tag_turn.is_some() && e.kind() != ErrorKind::Cancelled {
                        inner.flights.note_resolve_failure(&key, &e);
                    }
                    if stale_on_error && is_outage(&e) {
                        return stale(cache, known, e, &shown);
                    }
                    return Err(e);
                }
            },
        };
        let pull = parsed.with_selector(Selector {
            tag: None,
            digest: Some(digest.clone()),
        });
        let resolved = digest.to_string();
        let pinned_key = ref_key(&pull);
        // Unchanged since we last looked, or fetched before under its digest.
        let same = known
            .take()
            .filter(|k| k.reference.resolved == resolved)
            .map(|k| k.entry);
        let found = match same {
            Some(entry) => Some(entry),
            None => lookup(index, copts, &pinned_key, &shown)?.map(|k| k.entry),
        };
        if let Some(entry) = found {
            if !expected_matches(expected, &entry) {
                return Err(mismatch(&shown, expected.expect("mismatch"), &entry));
            }
            if pinned.is_none() {
                confirm_tag(index, copts, &key, &shown, &resolved, &entry)?;
            }
            return hit(entry);
        }
        Plan {
            key: pinned_key,
            pull,
            resolved,
        }
    };

    // 3. Download, once across threads and processes: threads of this process queue
    // first (and most find the download done when their turn comes, without touching
    // the file lock), then processes queue on the file lock.
    let expectation = expected.map(|d| d.to_string()).unwrap_or_default();
    let finished_meanwhile = || -> Result<Option<Entry>> {
        if plain {
            index
                .read_ref(&plan.key)
                .filter(|r| r.confirmed_at >= arrived)
                .and_then(|r| lease_module(index, copts, &r.module, "", &shown).transpose())
                .transpose()
        } else {
            Ok(lookup(index, copts, &plan.key, &shown)?.map(|k| k.entry))
        }
    };
    let share = |entry: Entry| -> Result<Entry> {
        if !expected_matches(expected, &entry) {
            return Err(mismatch(&shown, expected.expect("mismatch"), &entry));
        }
        if !plain && pinned.is_none() {
            confirm_tag(index, copts, &key, &shown, &plan.resolved, &entry)?;
        }
        inner.counters.hit(false);
        Ok(entry)
    };
    let queued = inner.flights.queue(&plan.key).await;
    if let Some(entry) = finished_meanwhile()? {
        return share(entry);
    }
    let flight = inner.flights.lock(queued, index.root(), &plan.key).await?;
    if let Some(e) = flight.failed_since(arrived, &expectation) {
        return Err(e);
    }
    if let Some(entry) = finished_meanwhile()? {
        return share(entry);
    }

    let outcome = async {
        let done = download(client, ctx, &plan, &flight, call).await?;
        let size = done.size;
        let mut refs = vec![(plan.key.clone(), plan.pull.to_string())];
        if plan.key != key {
            refs.push((key.clone(), shown.clone()));
        }
        // Checked before anything is added: a mismatch caches nothing.
        if let Some(d) = expected {
            let image = &done.image;
            if !digest_matches(d, &done.digest, image.manifest_digest.as_ref(), image.index_digest.as_ref()) {
                let manifest = image
                    .manifest_digest
                    .as_ref()
                    .map(|m| format!(" nor the manifest ({m})"))
                    .unwrap_or_default();
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!(
                        "{shown}: expected digest {d} matches neither the module ({}){manifest}; nothing was cached",
                        done.digest
                    ),
                ));
            }
        }
        let index = index.clone();
        let copts_owned = copts.clone();
        let shown = shown.clone();
        let entry =
            tokio::task::spawn_blocking(move || commit(&index, &copts_owned, done, &refs, &shown))
        .await
        .map_err(|_| Error::internal("the cache commit task died"))??;
        inner.counters.miss(size);
        Ok(entry)
    }
    .await;
    flight.remove_staging();
    match outcome {
        Ok(entry) => {
            flight.clear_failure();
            drop(flight);
            evict_after_insert(cache).await;
            Ok(entry)
        }
        Err(e) => {
            if e.kind() != ErrorKind::Cancelled {
                flight.record_failure(&e, &expectation);
            }
            drop(flight);
            if stale_on_error && is_outage(&e) {
                // A bare module has no resolve step: its download is where an outage shows.
                let known = lookup(index, copts, &key, &shown)?;
                return stale(cache, known, e, &shown);
            }
            Err(e)
        }
    }
}
