//! The Wasm Image specification's *oci* variant: custom config and layer media types.
//! Written in the exact shape wasme pushes and Istio / Envoy Gateway require: two layers,
//! the runtime config (again) and the raw module.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{single_layer_of, ConfigView, Encoded, Format, ModuleSource, Plan};
use crate::digest::{Descriptor, Digest};
use crate::error::Result;
use crate::image::{RuntimeConfig, Variant};
use crate::manifest::ImageManifest;
use crate::media_types::{self as mt, annotations};

pub struct OciVariant;

impl Format for OciVariant {
    fn variant(&self) -> Variant {
        Variant::Oci
    }

    fn detect(&self, _manifest: &ImageManifest, config: &ConfigView<'_>) -> bool {
        config.media_type() == mt::SOLO_WASM_CONFIG
    }

    fn plan(&self, manifest: &ImageManifest, config: &ConfigView<'_>) -> Result<Plan> {
        let runtime_config =
            RuntimeConfig::parse(config.bytes).map_err(|e| e.context("oci-variant config"))?;
        let layer = single_layer_of(manifest, &[mt::SOLO_WASM_LAYER], "oci-variant")?;
        Ok(Plan {
            variant: Variant::Oci,
            source: ModuleSource::Raw(layer.clone()),
            runtime_config: Some(runtime_config),
        })
    }
}

fn titled(mut d: Descriptor, title: &str) -> Descriptor {
    d.annotations = Some(BTreeMap::from([(
        annotations::TITLE.to_string(),
        title.to_string(),
    )]));
    d
}

/// `module_digest` is the module's sha256, computed once by the caller.
pub fn encode(
    module: Bytes,
    module_digest: &Digest,
    runtime_config: &RuntimeConfig,
    extra_annotations: &BTreeMap<String, String>,
) -> Encoded {
    let config_bytes = Bytes::from(runtime_config.to_json());
    let config = Descriptor::for_bytes(mt::SOLO_WASM_CONFIG, &config_bytes);
    let module_descriptor = titled(
        Descriptor::new(
            mt::SOLO_WASM_LAYER,
            module_digest.clone(),
            module.len() as u64,
        ),
        mt::SOLO_MODULE_TITLE,
    );
    let config_layer = titled(config.clone(), mt::SOLO_CONFIG_TITLE);

    let mut manifest_annotations = extra_annotations.clone();
    if let Some(t) = &runtime_config.runtime_type {
        manifest_annotations.insert(annotations::RUNTIME_TYPE.into(), t.clone());
    }
    if !runtime_config.abi_versions.is_empty() {
        manifest_annotations.insert(
            annotations::ABI_VERSION.into(),
            runtime_config.abi_versions.join(","),
        );
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.into()),
        artifact_type: None,
        config: config.clone(),
        layers: vec![config_layer.clone(), module_descriptor.clone()],
        subject: None,
        annotations: manifest_annotations,
    };
    Encoded {
        manifest: Bytes::from(serde_json::to_vec(&manifest).expect("manifest serialises")),
        media_type: mt::OCI_MANIFEST.into(),
        config: (config, config_bytes.clone()),
        layers: vec![(config_layer, config_bytes), (module_descriptor, module)],
    }
}
