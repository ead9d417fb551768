//! Registries over the OCI distribution protocol.

use async_trait::async_trait;

use crate::digest::{Descriptor, Digest};
use crate::error::{Error, Result};
use crate::location::{Repository, Selector};
use crate::options::{ClientOptions, Context};
use crate::store::{BlobStream, RawManifest, Store};

/// Shared HTTP state of a client: connection pool, TLS roots, token cache.
pub struct RegistryClient {}

impl RegistryClient {
    pub fn new(_options: &ClientOptions) -> Result<RegistryClient> {
        Ok(RegistryClient {})
    }
}

pub struct RegistryStore {
    repository: Repository,
    #[allow(dead_code)]
    ctx: Context,
}

impl RegistryStore {
    pub fn new(repository: Repository, ctx: Context) -> RegistryStore {
        RegistryStore { repository, ctx }
    }
    fn unimplemented(&self) -> Error {
        Error::internal(format!("{}: registry transport not built yet", self.repository))
    }
}

#[async_trait]
impl Store for RegistryStore {
    fn describe(&self) -> String {
        self.repository.to_string()
    }
    async fn resolve(&self, _selector: &Selector) -> Result<Descriptor> {
        Err(self.unimplemented())
    }
    async fn manifest(&self, _selector: &Selector) -> Result<RawManifest> {
        Err(self.unimplemented())
    }
    async fn open_blob(&self, _descriptor: &Descriptor) -> Result<BlobStream> {
        Err(self.unimplemented())
    }
    async fn has_blob(&self, _descriptor: &Descriptor) -> Result<bool> {
        Err(self.unimplemented())
    }
    async fn put_blob(&self, _descriptor: &Descriptor, _data: BlobStream) -> Result<()> {
        Err(self.unimplemented())
    }
    async fn put_manifest(&self, _manifest: &RawManifest, _digest: &Digest, _tag: Option<&str>) -> Result<()> {
        Err(self.unimplemented())
    }
}
