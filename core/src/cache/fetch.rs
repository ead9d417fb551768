//! The fetch flow: answer from the cache when the policy allows, else resolve, else
//! download once (under the image's flight lock), verify, and add the entry atomically.

use super::download::{self, Plan};
use super::entry::Entry;
use super::index::now_secs;
use super::lookup::{confirm_tag, lease_module, lookup, ref_key, Known};
use super::{Cache, FetchOptions, Policy};
use crate::client::Client;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::location::{Location, Selector};
use crate::options::CallOptions;
use crate::store::Context;
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

/// Fetching is an operation of a client, built on its pulls; it lives with the cache so
/// that the client's own operations know nothing of the cache.
impl Client {
    /// A module for a control plane: answered from the client's cache when the pull
    /// policy allows, else downloaded once (however many threads and processes ask at
    /// the same time), verified, and added to the cache. The entry holds a lease: its
    /// file stays readable until the entry is dropped.
    pub async fn fetch(
        &self,
        location: &str,
        options: &FetchOptions,
        call: &CallOptions,
    ) -> Result<Entry> {
        let cache = match &self.context().options.cache {
            Some(c) => c.clone(),
            None => super::default_cache()?,
        };
        crate::deadline::within(&self.context().options, async {
            let parsed = Location::parse(location)?;
            let requirement = self.requirement(&parsed, call);
            if requirement.trust().is_some() && parsed.is_plain_module() {
                return Err(Error::new(
                    ErrorKind::SignatureInvalid,
                    format!("{parsed}: a bare module carries no signature, and the verification policy requires one"),
                ));
            }
            let entry = fetch(self, self.context(), &cache, location, options, call).await?;
            if requirement.trust().is_some() {
                // A download verified before caching (and noted it); an entry found in
                // the cache is verified here, once per client, before it is returned.
                let digests: Vec<Digest> = entry
                    .index_digest
                    .iter()
                    .chain(entry.manifest_digest.iter())
                    .cloned()
                    .collect();
                let pinned = parsed.with_selector(Selector {
                    tag: None,
                    digest: digests.first().cloned(),
                });
                let store = crate::store::open(&pinned, crate::store::Access::Read, self.context()).await?;
                self.verify_signature(&parsed, store.as_ref(), &digests, call, true)
                    .await?;
            }
            Ok(entry)
        })
        .await
    }

    /// The cache `fetch` uses.
    pub fn cache(&self) -> Result<Cache> {
        match &self.context().options.cache {
            Some(c) => Ok(c.clone()),
            None => super::default_cache(),
        }
    }
}

async fn fetch(
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
        let done = download::download(client, ctx, &plan, &flight, call).await?;
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
        let shown = shown.clone();
        let entry =
            tokio::task::spawn_blocking(move || download::commit(&index, done, &refs, &shown))
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
            download::evict_after_insert(cache).await;
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
