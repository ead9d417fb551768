//! Image config blobs (the first byte picks which format's manifest names them): format
//! detection, the runtime config read from a config, and runtime-config.json itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_image::formats::{self, ConfigView};
use wasm_image::manifest::ImageManifest;
use wasm_image::media_types as mt;
use wasm_image::{Descriptor, RuntimeConfig};

/// (config media type, layer media type) of each format's manifests.
const SHAPES: &[(&str, &str)] = &[
    (mt::OCI_IMAGE_CONFIG, mt::OCI_LAYER_TAR_GZIP),
    (mt::OCI_IMAGE_CONFIG, mt::WASM_LAYER),
    (mt::DOCKER_IMAGE_CONFIG, mt::DOCKER_LAYER_TAR_GZIP),
    (mt::SOLO_WASM_CONFIG, mt::SOLO_WASM_LAYER),
    (mt::CNCF_WASM_CONFIG, mt::WASM_LAYER),
    (mt::CNCF_WASM_CONFIG, mt::COMPONENT_LAYER),
    (mt::WASM_TO_OCI_CONFIG, mt::WASM_TO_OCI_LAYER),
    (mt::WASMCLOUD_CONFIG, mt::WASM_LAYER),
    (mt::OCI_EMPTY, mt::WASM_LAYER),
    ("application/vnd.example+json", mt::WASM_LAYER),
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, config)) = data.split_first() else {
        return;
    };
    let (config_type, layer_type) = SHAPES[first as usize % SHAPES.len()];
    let config_descriptor = Descriptor::for_bytes(config_type, config);
    let layer = Descriptor::for_bytes(layer_type, b"\0asm\x01\0\0\0");
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.to_string()),
        artifact_type: (first & 0x80 != 0).then(|| mt::WASM_LAYER.to_string()),
        config: config_descriptor.clone(),
        layers: vec![layer],
        subject: None,
        annotations: Default::default(),
    };
    let view = ConfigView::new(&config_descriptor, config);
    wasm_image_fuzz::check(&formats::classify(&manifest, &view, "fuzz"));
    let runtime_config = RuntimeConfig::parse(config);
    wasm_image_fuzz::check(&runtime_config);
    if let Ok(rc) = runtime_config {
        // What was read can be written and read again.
        RuntimeConfig::parse(&rc.to_json()).expect("a runtime config reads back");
    }
});
