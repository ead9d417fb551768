//! The image model every format reads into and writes from.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::digest::{Descriptor, Digest};
use crate::error::{Error, Result};
use crate::store::interface::Store;

/// Which Wasm-in-OCI format an image uses. Names are part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Wasm Image specification, oci variant (custom media types).
    Oci,
    /// Wasm Image specification, compat variant (ordinary image, `plugin.wasm` in a tar layer).
    Compat,
    /// CNCF TAG Runtime Wasm OCI artifact (wkg, wasmCloud, runwasi).
    WasmArtifact,
    /// engineerd wasm-to-oci.
    WasmToOci,
    /// wasmCloud's legacy actor archive.
    Wasmcloud,
    /// Docker / containerd `wasi/wasm` platform image: the module is the entrypoint.
    WasiImage,
    /// OCI 1.1 artifact identified by `artifactType`.
    OciArtifact,
}

impl Variant {
    pub const ALL: [Variant; 7] = [
        Variant::Oci,
        Variant::Compat,
        Variant::WasmArtifact,
        Variant::WasmToOci,
        Variant::Wasmcloud,
        Variant::WasiImage,
        Variant::OciArtifact,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Oci => "oci",
            Variant::Compat => "compat",
            Variant::WasmArtifact => "wasm-artifact",
            Variant::WasmToOci => "wasm-to-oci",
            Variant::Wasmcloud => "wasmcloud",
            Variant::WasiImage => "wasi-image",
            Variant::OciArtifact => "oci-artifact",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Variant> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Variant::ALL.iter().map(|v| v.name()).collect();
                Error::invalid_argument(format!(
                    "unknown variant {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The runtime metadata of the Wasm Image specification. The typed fields are read from
/// every spelling the spec and its tools use; `raw` keeps the whole object, unknown fields
/// included, so a round trip loses nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    pub runtime_type: Option<String>,
    pub abi_versions: Vec<String>,
    pub root_ids: Vec<String>,
    pub raw: Map<String, Value>,
}

impl RuntimeConfig {
    /// Builds the object we write: `type`, `abiVersions`, `config.rootIds`.
    pub fn new(
        runtime_type: &str,
        abi_versions: Vec<String>,
        root_ids: Vec<String>,
    ) -> RuntimeConfig {
        let mut raw = Map::new();
        raw.insert("type".into(), Value::String(runtime_type.into()));
        if !abi_versions.is_empty() {
            raw.insert("abiVersions".into(), Value::from(abi_versions.clone()));
        }
        if !root_ids.is_empty() {
            let mut config = Map::new();
            config.insert("rootIds".into(), Value::from(root_ids.clone()));
            raw.insert("config".into(), Value::Object(config));
        }
        RuntimeConfig {
            runtime_type: Some(runtime_type.into()),
            abi_versions,
            root_ids,
            raw,
        }
    }

    pub fn parse(data: &[u8]) -> Result<RuntimeConfig> {
        let value: Value = serde_json::from_slice(data)
            .map_err(|e| Error::invalid_format(format!("runtime config is not valid JSON: {e}")))?;
        match value {
            Value::Object(raw) => RuntimeConfig::from_object(raw),
            other => Err(Error::invalid_format(format!(
                "runtime config must be a JSON object, found {}",
                json_kind(&other)
            ))),
        }
    }

    pub fn from_object(raw: Map<String, Value>) -> Result<RuntimeConfig> {
        let runtime_type = match raw.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(Error::invalid_format(format!(
                    "runtime config field \"type\" must be a string, found {}",
                    json_kind(other)
                )))
            }
        };
        let mut abi_versions = Vec::new();
        for key in ["abiVersions", "abiVersion", "abi_versions", "abi_version"] {
            if let Some(v) = raw.get(key) {
                abi_versions = strings_field(v, key)?;
                break;
            }
        }
        let mut root_ids = Vec::new();
        if let Some(Value::Object(config)) = raw.get("config") {
            for key in ["rootIds", "root_ids"] {
                if let Some(v) = config.get(key) {
                    root_ids = strings_field(v, key)?;
                    break;
                }
            }
        }
        Ok(RuntimeConfig {
            runtime_type,
            abi_versions,
            root_ids,
            raw,
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.raw).expect("a JSON map always serialises")
    }
}

/// A string, a comma-separated string, or an array of strings.
fn strings_field(value: &Value, key: &str) -> Result<Vec<String>> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(Error::invalid_format(format!(
                    "runtime config field {key:?} must hold strings, found {}",
                    json_kind(other)
                ))),
            })
            .collect(),
        other => Err(Error::invalid_format(format!(
            "runtime config field {key:?} must be a string or a list of strings, found {}",
            json_kind(other)
        ))),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Everything known about an image except the module bytes themselves.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub variant: Variant,
    pub module_digest: Digest,
    pub module_size: u64,
    /// The manifest exactly as stored, so its digest can be recomputed.
    pub manifest: Bytes,
    pub manifest_media_type: String,
    pub manifest_digest: Digest,
    /// Set when the reference resolved to an index and a manifest was chosen from it.
    pub index_digest: Option<Digest>,
    pub config: Bytes,
    pub config_descriptor: Descriptor,
    pub runtime_config: Option<RuntimeConfig>,
    pub annotations: BTreeMap<String, String>,
}

/// Where a blob's bytes can be had when an image is written somewhere.
#[derive(Clone)]
pub(crate) enum BlobBody {
    Bytes(Bytes),
    /// Not held in memory: fetched lazily from the store the image was read from.
    InStore(Arc<dyn Store>),
}

/// A Wasm module with its image: the result of `pull` and `build`, the input of `push`.
#[derive(Clone)]
pub struct WasmImage {
    pub(crate) info: ImageInfo,
    pub(crate) module: Bytes,
    /// Every blob the manifest references, in manifest order (config first).
    pub(crate) blobs: Vec<(Descriptor, BlobBody)>,
}

impl WasmImage {
    pub fn module(&self) -> &Bytes {
        &self.module
    }
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }
    pub fn variant(&self) -> Variant {
        self.info.variant
    }
    pub fn module_digest(&self) -> &Digest {
        &self.info.module_digest
    }
    pub fn manifest_digest(&self) -> &Digest {
        &self.info.manifest_digest
    }
    pub fn index_digest(&self) -> Option<&Digest> {
        self.info.index_digest.as_ref()
    }
    pub fn manifest(&self) -> &Bytes {
        &self.info.manifest
    }
    pub fn manifest_media_type(&self) -> &str {
        &self.info.manifest_media_type
    }
    pub fn config(&self) -> &Bytes {
        &self.info.config
    }
    pub fn runtime_config(&self) -> Option<&RuntimeConfig> {
        self.info.runtime_config.as_ref()
    }
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.info.annotations
    }
    pub fn into_module(self) -> Bytes {
        self.module
    }
}

impl fmt::Debug for WasmImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmImage")
            .field("variant", &self.info.variant)
            .field("module_digest", &self.info.module_digest)
            .field("module_size", &self.module.len())
            .field("manifest_digest", &self.info.manifest_digest)
            .field("index_digest", &self.info.index_digest)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_and_wasme_spelling_agree() {
        let spec = br#"{"type":"envoy_proxy","abi_version":"v0-541b2c1155fffb15ccde92b8324f3e38f7339ba6","config":{"root_ids":["add_header_root_id"]}}"#;
        let wasme = br#"{"type":"envoy_proxy","abiVersions":["v0-541b2c1155fffb15ccde92b8324f3e38f7339ba6"],"config":{"rootIds":["add_header_root_id"]}}"#;
        let prose = br#"{"type":"envoy_proxy","abiVersion":"v0-541b2c1155fffb15ccde92b8324f3e38f7339ba6","config":{"rootIds":["add_header_root_id"]}}"#;
        let a = RuntimeConfig::parse(spec).unwrap();
        for other in [&wasme[..], &prose[..]] {
            let b = RuntimeConfig::parse(other).unwrap();
            assert_eq!(
                (&a.runtime_type, &a.abi_versions, &a.root_ids),
                (&b.runtime_type, &b.abi_versions, &b.root_ids)
            );
        }
        assert_eq!(a.runtime_type.as_deref(), Some("envoy_proxy"));
        assert_eq!(a.root_ids, vec!["add_header_root_id"]);
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let data = br#"{"type":"envoy_proxy","vendor":{"x":1},"abiVersions":["v0.2.1"]}"#;
        let parsed = RuntimeConfig::parse(data).unwrap();
        let again = RuntimeConfig::parse(&parsed.to_json()).unwrap();
        assert_eq!(again.raw.get("vendor"), Some(&serde_json::json!({"x":1})));
    }

    #[test]
    fn malformed_runtime_config_is_invalid_format() {
        for bad in [
            &b"[]"[..],
            b"{\"type\":3}",
            b"{\"abiVersions\":[1]}",
            b"not json",
        ] {
            let err = RuntimeConfig::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat);
        }
    }
}
