//! engineerd/wasm-to-oci: an empty config of its own media type and one raw module layer.

use super::{single_layer_of, ConfigView, Format, ModuleSource, Plan};
use crate::error::Result;
use crate::image::Variant;
use crate::manifest::ImageManifest;
use crate::media_types as mt;

pub struct WasmToOci;

impl Format for WasmToOci {
    fn variant(&self) -> Variant {
        Variant::WasmToOci
    }

    fn detect(&self, _manifest: &ImageManifest, config: &ConfigView<'_>) -> bool {
        config.media_type() == mt::WASM_TO_OCI_CONFIG
    }

    fn plan(&self, manifest: &ImageManifest, _config: &ConfigView<'_>) -> Result<Plan> {
        let layer = single_layer_of(manifest, &[mt::WASM_TO_OCI_LAYER], "wasm-to-oci")?;
        Ok(Plan {
            variant: Variant::WasmToOci,
            source: ModuleSource::Raw(layer.clone()),
            runtime_config: None,
        })
    }
}
