//! One interface over every place images live. A store implements a small core (resolve,
//! raw manifests, raw blob streams, writes); `crate::store::verified` adds verification, limits
//! and progress on top, so a new store is one new file.

use std::sync::Arc;

use crate::error::Result;
use crate::location::Location;
pub use context::Context;
pub use interface::{referrers_tag, Access, BlobStream, RawManifest, Store};

pub mod archive;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod context;
pub(crate) mod interface;
pub mod docker_archive;
pub mod layout;
pub mod plain_module;
pub mod read_ahead;
pub mod registry;
mod tar_index;
pub(crate) mod tar_safety;
pub mod verified;

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
