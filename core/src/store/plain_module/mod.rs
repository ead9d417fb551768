//! A bare module (`https://`, `http://`, `file://`) seen as a read-only store: the module
//! becomes the oci-variant image `build` makes of it, so pull, resolve and copy treat it
//! like any other image (copying one to a registry publishes it).

pub mod source;

use std::io::Cursor;

use async_trait::async_trait;
use bytes::Bytes;

use crate::build::{build, BuildOptions};
use crate::digest::{Descriptor, Digest};
use crate::error::{Error, Result};
use crate::image::{BlobBody, WasmImage};
use crate::location::{Location, Selector};
use crate::store::Context;
use crate::store::{BlobStream, RawManifest, Store};

pub struct PlainModuleStore {
    what: String,
    image: WasmImage,
}

impl PlainModuleStore {
    /// Reads the whole module (bounded by the module limit) and builds its image.
    pub async fn open(location: &Location, ctx: &Context) -> Result<PlainModuleStore> {
        let (module, what) = source::read_all(location, ctx).await?;
        let image = build(module, &BuildOptions::default()).map_err(|e| e.context(&what))?;
        Ok(PlainModuleStore { what, image })
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.image.info.manifest_media_type.clone(),
            self.image.info.manifest_digest.clone(),
            self.image.info.manifest.len() as u64,
        )
    }

    fn check(&self, selector: &Selector) -> Result<()> {
        match &selector.digest {
            Some(d) if *d != self.image.info.manifest_digest => Err(Error::not_found(format!(
                "{}: no manifest {d} (a bare module has only {})",
                self.what, self.image.info.manifest_digest
            ))),
            _ => Ok(()),
        }
    }

    fn blob(&self, digest: &Digest) -> Option<Bytes> {
        self.image
            .blobs
            .iter()
            .find(|(d, _)| d.digest == *digest)
            .and_then(|(_, body)| match body {
                BlobBody::Bytes(b) => Some(b.clone()),
                BlobBody::InStore(_) => None,
            })
    }

    fn read_only(&self) -> Error {
        Error::invalid_argument(format!(
            "{}: https://, http:// and file:// locations are read only",
            self.what
        ))
    }
}

#[async_trait]
impl Store for PlainModuleStore {
    fn describe(&self) -> String {
        self.what.clone()
    }

    async fn resolve(&self, selector: &Selector) -> Result<Descriptor> {
        self.check(selector)?;
        Ok(self.descriptor())
    }

    async fn manifest(&self, selector: &Selector) -> Result<RawManifest> {
        self.check(selector)?;
        Ok(RawManifest {
            bytes: self.image.info.manifest.clone(),
            media_type: Some(self.image.info.manifest_media_type.clone()),
        })
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        match self.blob(&descriptor.digest) {
            Some(data) => Ok(Box::pin(Cursor::new(data))),
            None => Err(Error::not_found(format!(
                "{}: no blob {}",
                self.what, descriptor.digest
            ))),
        }
    }

    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        Ok(self.blob(&descriptor.digest).is_some())
    }

    async fn put_blob(&self, _descriptor: &Descriptor, _data: BlobStream) -> Result<()> {
        Err(self.read_only())
    }

    async fn put_manifest(
        &self,
        _manifest: &RawManifest,
        _digest: &Digest,
        _tag: Option<&str>,
    ) -> Result<()> {
        Err(self.read_only())
    }
}
