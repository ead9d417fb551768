//! One interface over every place images live. A store implements a small core (resolve,
//! raw manifests, raw blob streams, writes); `crate::store::verified` adds verification, limits
//! and progress on top, so a new store is one new file.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::digest::{Descriptor, Digest};
use crate::error::Result;
use crate::location::{Location, Selector};
pub use context::Context;

pub mod archive;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod context;
pub mod docker_archive;
pub mod layout;
pub mod plain_module;
pub mod read_ahead;
pub mod registry;
mod tar_index;
pub(crate) mod tar_safety;
pub mod verified;

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

/// Opens the store a location names.
pub async fn open(location: &Location, access: Access, ctx: &Context) -> Result<Arc<dyn Store>> {
    Ok(match location {
        Location::Registry { repository, .. } => Arc::new(registry::RegistryStore::new(
            repository.clone(),
            ctx.clone(),
        )),
        Location::Layout { dir, .. } => Arc::new(layout::LayoutStore::open(dir, access).await?),
        Location::OciArchive { file, .. } => {
            Arc::new(archive::OciArchiveStore::open(file, access).await?)
        }
        Location::DockerArchive { file, reference } => {
            if access == Access::Write {
                return Err(crate::Error::invalid_argument(format!(
                    "{location}: docker-archive: is read only; write to oci:, oci-archive: or a registry"
                )));
            }
            Arc::new(docker_archive::DockerArchiveStore::open(file, reference.clone()).await?)
        }
        Location::Url { .. } | Location::ModuleFile { .. } => {
            if access == Access::Write {
                return Err(crate::Error::invalid_argument(format!(
                    "{location}: https://, http:// and file:// locations are read only"
                )));
            }
            Arc::new(plain_module::PlainModuleStore::open(location, ctx).await?)
        }
    })
}
