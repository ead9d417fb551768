//! OCI 1.1 artifacts: recognised by `artifactType` (or the empty config), holding the
//! module in a raw Wasm layer. Also the last resort for unknown configs whose only
//! payload is a raw Wasm layer.

use super::{ConfigView, Format, ModuleSource, Plan};
use crate::error::{Error, Result};
use crate::image::Variant;
use crate::manifest::ImageManifest;
use crate::media_types as mt;

pub struct OciArtifact;

fn wasm_layers(manifest: &ImageManifest) -> impl Iterator<Item = &crate::digest::Descriptor> {
    manifest
        .layers
        .iter()
        .filter(|l| mt::RAW_WASM_LAYERS.contains(&l.media_type.as_str()))
}

impl Format for OciArtifact {
    fn variant(&self) -> Variant {
        Variant::OciArtifact
    }

    fn detect(&self, manifest: &ImageManifest, config: &ConfigView<'_>) -> bool {
        manifest.artifact_type.is_some()
            || config.media_type() == mt::OCI_EMPTY
            || wasm_layers(manifest).next().is_some()
    }

    fn plan(&self, manifest: &ImageManifest, _config: &ConfigView<'_>) -> Result<Plan> {
        let candidates: Vec<_> = wasm_layers(manifest).collect();
        let layer = match (candidates.as_slice(), manifest.layers.as_slice()) {
            ([one], _) => *one,
            ([], [only]) => only,
            ([], _) => {
                return Err(Error::invalid_format(format!(
                    "OCI artifact (type {}) has no Wasm layer",
                    manifest.artifact_type.as_deref().unwrap_or("unset")
                )))
            }
            (many, _) => {
                return Err(Error::invalid_format(format!(
                    "OCI artifact has {} Wasm layers; expected exactly one",
                    many.len()
                )))
            }
        };
        Ok(Plan {
            variant: Variant::OciArtifact,
            source: ModuleSource::Raw(layer.clone()),
            runtime_config: None,
        })
    }
}
