//! Docker / containerd `wasi/wasm` platform images: an ordinary image config with
//! `architecture: "wasm"`, the module either a raw Wasm layer or the entrypoint file.
//!
//! An image whose module is `plugin.wasm` in a tar layer is the specification's compat
//! variant whatever platform its config names (buildx writes `wasip1/wasm` for it), so
//! such images are left to `compat`: only an `Entrypoint` naming another file makes a tar
//! image a `wasi/wasm` one.

use serde_json::Value;

use super::tar_layers_last_first;
use super::{is_image_config, single_layer_of, ConfigView, Format, ModuleSource, Plan, TarTarget};
use crate::error::{Error, Result};
use crate::image::Variant;
use crate::manifest::ImageManifest;
use crate::media_types as mt;

pub struct WasiImage;

fn has_raw_wasm_layer(manifest: &ImageManifest) -> bool {
    manifest
        .layers
        .iter()
        .any(|l| l.media_type == mt::WASM_LAYER || l.media_type == mt::COMPONENT_LAYER)
}

fn entrypoint(config: &ConfigView<'_>) -> Option<String> {
    let json = config.json.as_ref()?;
    let first = json.get("config")?.get("Entrypoint")?.as_array()?.first()?;
    match first {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Whether an entrypoint is the compat variant's `plugin.wasm` at the image root.
fn names_compat_module(entrypoint: &str) -> bool {
    let relative = entrypoint.trim_start_matches('/');
    relative.strip_prefix("./").unwrap_or(relative) == mt::COMPAT_MODULE_FILE
}

impl Format for WasiImage {
    fn variant(&self) -> Variant {
        Variant::WasiImage
    }

    fn detect(&self, manifest: &ImageManifest, config: &ConfigView<'_>) -> bool {
        is_image_config(config.media_type())
            && (has_raw_wasm_layer(manifest)
                || (config.str_field("architecture") == Some("wasm")
                    && entrypoint(config).is_some_and(|e| !names_compat_module(&e))))
    }

    fn plan(&self, manifest: &ImageManifest, config: &ConfigView<'_>) -> Result<Plan> {
        let source = if has_raw_wasm_layer(manifest) {
            ModuleSource::Raw(
                single_layer_of(
                    manifest,
                    &[mt::WASM_LAYER, mt::COMPONENT_LAYER],
                    "wasi/wasm image",
                )?
                .clone(),
            )
        } else {
            // Without an Entrypoint the image is compat's (see `detect`).
            let target = TarTarget::Path(entrypoint(config).ok_or_else(|| {
                Error::invalid_format("wasi/wasm image has no raw Wasm layer and no Entrypoint")
            })?);
            ModuleSource::InTar {
                layers: tar_layers_last_first(manifest)?,
                target,
                runtime_config_file: false,
            }
        };
        Ok(Plan {
            variant: Variant::WasiImage,
            source,
            runtime_config: None,
        })
    }
}
