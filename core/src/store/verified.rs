//! What every store gets for free: verified reads, bounded metadata, progress, and
//! blob copies that skip what the destination already has.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::digest::{Descriptor, Digest, VerifyingReader};
use crate::embed::runtime::CancellationToken;
use crate::error::{Error, Result};
use crate::location::Selector;
use crate::progress::{Progress, ProgressReader};
use crate::store::read_ahead::{Consumer, ReadAhead};
use crate::store::{BlobStream, RawManifest, Store};

/// A manifest read from a store, checked against the digest it was asked for.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub raw: RawManifest,
    pub digest: Digest,
}

pub async fn fetch_manifest(
    store: &dyn Store,
    selector: &Selector,
    max_bytes: u64,
) -> Result<FetchedManifest> {
    let raw = store.manifest(selector).await?;
    if raw.bytes.len() as u64 > max_bytes {
        return Err(Error::limit_exceeded(format!(
            "{}{selector}: manifest is {} bytes, more than the limit of {max_bytes}",
            store.describe(),
            raw.bytes.len()
        )));
    }
    let digest = match &selector.digest {
        Some(expected) => {
            let d = Descriptor::new(
                raw.media_type.clone().unwrap_or_default(),
                expected.clone(),
                raw.bytes.len() as u64,
            );
            d.verify(&raw.bytes, &format!("{}: manifest", store.describe()))?;
            expected.clone()
        }
        None => Digest::sha256_of(&raw.bytes),
    };
    Ok(FetchedManifest { raw, digest })
}

fn check_size(
    store: &dyn Store,
    descriptor: &Descriptor,
    max_bytes: u64,
    what: &str,
) -> Result<()> {
    if descriptor.size > max_bytes {
        return Err(Error::limit_exceeded(format!(
            "{}: {what} {} is {} bytes, more than the limit of {max_bytes}",
            store.describe(),
            descriptor.digest,
            descriptor.size
        )));
    }
    Ok(())
}

/// Opens a blob whose bytes are checked against the descriptor as they stream: the reader
/// fails instead of ending when size or digest differ.
pub async fn open_verified(
    store: &dyn Store,
    descriptor: &Descriptor,
    progress: Option<&Progress>,
) -> Result<BlobStream> {
    let raw = store.open_blob(descriptor).await?;
    let what = format!("{}: blob", store.describe());
    let verified = Box::pin(VerifyingReader::new(raw, descriptor, what));
    Ok(with_progress(verified, descriptor, progress))
}

/// Opens a blob for a [`BlobOpener`] to read: not yet checked, since the reader it makes
/// ([`ReadAhead`]) checks the bytes itself, beside the download. Give it nothing else.
pub async fn open_for_read_ahead(
    store: &dyn Store,
    descriptor: &Descriptor,
    progress: Option<&Progress>,
) -> Result<BlobStream> {
    let raw = store.open_blob(descriptor).await?;
    Ok(with_progress(raw, descriptor, progress))
}

fn with_progress(
    stream: BlobStream,
    descriptor: &Descriptor,
    progress: Option<&Progress>,
) -> BlobStream {
    match progress {
        Some(p) => Box::pin(ProgressReader::new(
            stream,
            p.clone(),
            descriptor.digest.clone(),
            descriptor.media_type.clone(),
            descriptor.size,
        )),
        None => stream,
    }
}

/// Reads a small blob (a config) into memory, bounded and verified.
pub async fn read_small_blob(
    store: &dyn Store,
    descriptor: &Descriptor,
    max_bytes: u64,
    what: &str,
) -> Result<Bytes> {
    check_size(store, descriptor, max_bytes, what)?;
    let mut reader = open_verified(store, descriptor, None).await?;
    let mut out = crate::limits::reserve_bytes(
        descriptor.size,
        &format!("{}: {what} {}", store.describe(), descriptor.digest),
    )?;
    reader.read_to_end(&mut out).await.map_err(Error::from_io)?;
    Ok(Bytes::from(out))
}

/// Copies one blob unless the destination has it already.
pub async fn copy_blob(
    source: &dyn Store,
    destination: &dyn Store,
    descriptor: &Descriptor,
    progress: Option<&Progress>,
) -> Result<()> {
    if destination.has_blob(descriptor).await? {
        return Ok(());
    }
    let stream = open_verified(source, descriptor, progress).await?;
    destination.put_blob(descriptor, stream).await
}

/// How many blob transfers of one image run at once: enough to hide a config behind a
/// layer, few enough that an image of many layers does not open a connection per layer.
const SIDE_BY_SIDE: usize = 4;

/// Runs blob transfers side by side (up to [`SIDE_BY_SIDE`]), so a config's round trips
/// hide behind a large layer's upload instead of adding to it. Every transfer runs to its
/// end, so each one that fails cleans up after itself; the first error, in the order
/// given, is returned.
pub async fn all_of<F>(transfers: impl IntoIterator<Item = F>) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    use futures_util::StreamExt;
    let transfers: Vec<F> = transfers.into_iter().collect();
    let results: Vec<Result<()>> = futures_util::stream::iter(transfers)
        .buffered(SIDE_BY_SIDE)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Writes an image's bytes held in memory as a blob.
pub async fn put_bytes(
    destination: &dyn Store,
    descriptor: &Descriptor,
    data: Bytes,
    progress: Option<&Progress>,
) -> Result<()> {
    if destination.has_blob(descriptor).await? {
        return Ok(());
    }
    // Not hashed again: an image's bytes in memory were hashed when built, or verified
    // when pulled, and images cannot be made any other way.
    let stream = with_progress(Box::pin(io::Cursor::new(data)), descriptor, progress);
    destination.put_blob(descriptor, stream).await
}

/// A blocking reader over a blob, for tar and decompression code running on a blocking
/// thread: downloaded ahead on the runtime and verified beside it (see [`ReadAhead`]), so
/// the layer's digest is computed on one core while the consumer works on another (and,
/// for a module inside a tar layer, hashes the module there).
pub type SyncBlob = ReadAhead;

/// A blob opened ahead of need (see [`BlobOpener::preopened`]) with
/// [`open_for_read_ahead`].
pub type Preopened = Arc<std::sync::Mutex<Option<(Digest, BlobStream)>>>;

/// Opens blobs for code on a blocking thread.
#[derive(Clone)]
pub struct BlobOpener {
    pub store: Arc<dyn Store>,
    pub progress: Option<Progress>,
    pub handle: tokio::runtime::Handle,
    pub cancel: CancellationToken,
    /// A blob whose request was sent while other work went on (a pull opens its module
    /// layer while the config downloads): the first open of that digest takes it instead
    /// of asking the store again.
    pub preopened: Preopened,
}

impl BlobOpener {
    pub fn open(&self, descriptor: &Descriptor) -> Result<SyncBlob> {
        self.open_as(descriptor, Consumer::Parses)
    }

    /// Opens a blob whose reader only copies its bytes, never parses them: it may have
    /// them before their check (see [`Consumer::Copies`]).
    pub fn open_for_copy(&self, descriptor: &Descriptor) -> Result<SyncBlob> {
        self.open_as(descriptor, Consumer::Copies)
    }

    fn open_as(&self, descriptor: &Descriptor, consumer: Consumer) -> Result<SyncBlob> {
        let ready = self
            .preopened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take_if(|(digest, _)| *digest == descriptor.digest)
            .map(|(_, stream)| stream);
        let cancel = self.cancel.clone();
        let stream = match ready {
            Some(stream) => stream,
            None => self.handle.block_on(async {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Err(Error::cancelled()),
                    opened = open_for_read_ahead(self.store.as_ref(), descriptor, self.progress.as_ref()) => opened,
                }
            })?,
        };
        Ok(ReadAhead::start(
            stream,
            descriptor,
            format!("{}: blob", self.store.describe()),
            self.handle.clone(),
            cancel,
            consumer,
        ))
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::error::ErrorKind;

    #[tokio::test]
    async fn all_of_runs_every_transfer_to_its_end_and_returns_the_first_error() {
        let finished = AtomicUsize::new(0);
        let transfer = |delay_ms: u64, fail: Option<ErrorKind>| {
            let finished = &finished;
            async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                match fail {
                    Some(kind) => Err(Error::new(kind, "failed")),
                    None => Ok(()),
                }
            }
        };
        let started = std::time::Instant::now();
        let result = all_of([
            transfer(60, None),
            transfer(10, Some(ErrorKind::Unauthorized)),
            transfer(30, Some(ErrorKind::NotFound)),
            transfer(60, None),
        ])
        .await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unauthorized);
        assert_eq!(
            finished.load(Ordering::SeqCst),
            4,
            "every transfer ran to its end"
        );
        // Side by side: about the longest one, not the sum.
        assert!(started.elapsed() < Duration::from_millis(150));
        assert!(all_of([transfer(1, None), transfer(1, None)]).await.is_ok());
    }

    #[tokio::test]
    async fn all_of_runs_at_most_side_by_side_at_once() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let transfer = || async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        };
        all_of((0..3 * SIDE_BY_SIDE).map(|_| transfer()))
            .await
            .unwrap();
        assert_eq!(most.load(Ordering::SeqCst), SIDE_BY_SIDE);
    }
}
