//! CNCF TAG Runtime Wasm OCI artifact (wkg, wasmCloud, runwasi): the module is layer 0,
//! of media type `application/wasm`.

use super::{ConfigView, Format, ModuleSource, Plan};
use crate::error::{Error, Result};
use crate::image::Variant;
use crate::manifest::ImageManifest;
use crate::media_types as mt;

pub struct WasmArtifact;

impl Format for WasmArtifact {
    fn variant(&self) -> Variant {
        Variant::WasmArtifact
    }

    fn detect(&self, _manifest: &ImageManifest, config: &ConfigView<'_>) -> bool {
        config.media_type() == mt::CNCF_WASM_CONFIG
    }

    fn plan(&self, manifest: &ImageManifest, _config: &ConfigView<'_>) -> Result<Plan> {
        let layer = manifest
            .layers
            .iter()
            .find(|l| l.media_type == mt::WASM_LAYER || l.media_type == mt::COMPONENT_LAYER)
            .ok_or_else(|| {
                Error::invalid_format(format!(
                    "Wasm OCI artifact has no layer of media type {}",
                    mt::WASM_LAYER
                ))
            })?;
        Ok(Plan {
            variant: Variant::WasmArtifact,
            source: ModuleSource::Raw(layer.clone()),
            runtime_config: None,
        })
    }
}
