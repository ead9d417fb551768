//! The one trait every store implements, and the values it trades in. Kept apart from
//! `store::open` (which knows every store) so the image model can name a store without
//! depending on all of them.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::digest::{Descriptor, Digest};
use crate::error::Result;
use crate::location::Selector;

pub type BlobStream = Pin<Box<dyn AsyncRead + Send>>;

/// Manifest bytes exactly as stored, with the media type the store reported.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub bytes: Bytes,
    pub media_type: Option<String>,
}

/// How a store is opened: to read an existing image, or to write (creating what is needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Names the store in messages, e.g. `oci:./store` or `127.0.0.1:5000/filters/x`.
    fn describe(&self) -> String;

    /// Finds the top-level manifest (or index) for a selector without fetching the module.
    async fn resolve(&self, selector: &Selector) -> Result<Descriptor>;

    /// Fetches manifest bytes by digest or tag. Callers verify the digest.
    async fn manifest(&self, selector: &Selector) -> Result<RawManifest>;

    /// Opens a blob. The stream is not verified here; `transfer::open_blob` verifies it.
    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream>;

    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool>;

    /// Stores a blob from a stream that fails (and must then not be committed) when the
    /// bytes do not match the descriptor. Callers skip blobs the store already has
    /// (`transfer` asks `has_blob` first), so a store need not check again.
    async fn put_blob(&self, descriptor: &Descriptor, data: BlobStream) -> Result<()>;

    /// Stores a manifest under its digest, and under `tag` when given.
    async fn put_manifest(
        &self,
        manifest: &RawManifest,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<()>;

    /// Makes everything written so far visible at once (archives are written here).
    async fn commit(&self) -> Result<()> {
        Ok(())
    }
}
