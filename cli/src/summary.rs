//! The JSON shapes of an image that several verbs print (build, pull, inspect, fetch).

use serde_json::{json, Map, Value};
use wasm_image::{ImageInfo, RuntimeConfig};

/// `{"type", "abi_versions", "root_ids", "raw"}`, or null for an image without one.
pub(crate) fn runtime_config(config: Option<&RuntimeConfig>) -> Value {
    match config {
        None => Value::Null,
        Some(rc) => json!({
            "type": rc.runtime_type,
            "abi_versions": rc.abi_versions,
            "root_ids": rc.root_ids,
            "raw": rc.raw,
        }),
    }
}

/// `first` (what the verb was asked), then the image's digests, variant, runtime config
/// and annotations.
pub(crate) fn image(first: Vec<(&str, Value)>, info: &ImageInfo) -> Map<String, Value> {
    let mut data: Map<String, Value> = first
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    data.insert("variant".into(), json!(info.variant.name()));
    data.insert(
        "manifest_digest".into(),
        json!(info.manifest_digest.to_string()),
    );
    data.insert(
        "manifest_media_type".into(),
        json!(info.manifest_media_type),
    );
    data.insert(
        "index_digest".into(),
        json!(info.index_digest.as_ref().map(ToString::to_string)),
    );
    data.insert(
        "module_digest".into(),
        json!(info.module_digest.to_string()),
    );
    data.insert("module_size".into(), json!(info.module_size));
    data.insert(
        "runtime_config".into(),
        runtime_config(info.runtime_config.as_ref()),
    );
    data.insert("annotations".into(), json!(info.annotations));
    data
}
