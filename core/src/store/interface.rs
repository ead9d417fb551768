//! The one trait every store implements, and the values it trades in. Kept apart from
//! `store::open` (which knows every store) so the image model can name a store without
//! depending on all of them.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::digest::{Descriptor, Digest};
use crate::error::{ErrorKind, Result};
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

    /// Whether reading a blob of this store takes only local file reads (never the
    /// network): such a small blob is read as bounded work (see
    /// `embed::runtime::run_bounded`).
    fn is_local(&self) -> bool {
        false
    }

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

    /// Manifests that name `subject` as their subject (OCI 1.1 referrers: signatures,
    /// attestations), as the descriptors of an index. The default reads the referrers
    /// tag schema (an index tagged `<algorithm>-<hex>`), which every store can hold; a
    /// store with a referrers API overrides this and falls back to it.
    async fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        let tag = referrers_tag(subject);
        let raw = match self.manifest(&Selector::tag(&tag)).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        referrers_in_index(&raw.bytes, &format!("{}:{tag}", self.describe()))
    }
}

/// The tag of the referrers tag schema for `subject`: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm_name(), subject.hex())
}

/// The descriptors an index of referrers lists (a referrers API answer or a tag schema
/// index); what is not an index is malformed.
pub fn referrers_in_index(bytes: &[u8], what: &str) -> Result<Vec<Descriptor>> {
    match crate::manifest::parse(bytes, Some(crate::media_types::OCI_INDEX), what)? {
        crate::manifest::Parsed::Index(index) => Ok(index.manifests),
        crate::manifest::Parsed::Manifest(_) => Err(crate::Error::invalid_format(format!(
            "{what}: the referrers list is a manifest, not an index"
        ))),
    }
}
