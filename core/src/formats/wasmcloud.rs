//! wasmCloud's legacy actor archives: their own config type, the solo module layer type.

use super::{single_layer_of, ConfigView, Format, ModuleSource, Plan};
use crate::error::Result;
use crate::image::Variant;
use crate::manifest::ImageManifest;
use crate::media_types as mt;

pub struct Wasmcloud;

impl Format for Wasmcloud {
    fn variant(&self) -> Variant {
        Variant::Wasmcloud
    }

    fn detect(&self, _manifest: &ImageManifest, config: &ConfigView<'_>) -> bool {
        config.media_type() == mt::WASMCLOUD_CONFIG
    }

    fn plan(&self, manifest: &ImageManifest, _config: &ConfigView<'_>) -> Result<Plan> {
        let layer = single_layer_of(
            manifest,
            &[mt::SOLO_WASM_LAYER, mt::WASM_LAYER],
            "wasmCloud actor",
        )?;
        Ok(Plan {
            variant: Variant::Wasmcloud,
            source: ModuleSource::Raw(layer.clone()),
            runtime_config: None,
        })
    }
}
