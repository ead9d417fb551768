//! What every store gets for free: verified reads, bounded metadata, progress, and
//! blob copies that skip what the destination already has.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::digest::{Descriptor, Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::location::Selector;
use crate::progress::{Progress, ProgressReader};
use crate::read_ahead::ReadAhead;
use crate::runtime::CancellationToken;
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
    let mut out = Vec::with_capacity(descriptor.size as usize);
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
/// thread: downloaded ahead on the runtime (see [`ReadAhead`]) and verified here, so
/// hashing runs on the consuming thread while the next bytes arrive.
pub type SyncBlob = ReadAhead;

/// Opens blobs for code on a blocking thread.
#[derive(Clone)]
pub struct BlobOpener {
    pub store: Arc<dyn Store>,
    pub progress: Option<Progress>,
    pub handle: tokio::runtime::Handle,
    pub cancel: CancellationToken,
}

impl BlobOpener {
    pub fn open(&self, descriptor: &Descriptor) -> Result<SyncBlob> {
        let cancel = self.cancel.clone();
        let stream = self.handle.block_on(async {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(Error::cancelled()),
                opened = open_verified(self.store.as_ref(), descriptor, self.progress.as_ref()) => opened,
            }
        })?;
        Ok(ReadAhead::start(stream, self.handle.clone(), cancel))
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }
}
