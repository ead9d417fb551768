//! Lenient parsing of image manifests and indexes (OCI and Docker schema 2), and the one
//! rule for what media type manifest bytes have.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Descriptor;
use crate::error::{Error, Result};
use crate::limits::MAX_IMAGE_LAYERS;
use crate::media_types as mt;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Short-lived (parsed, inspected, dropped), so the size difference between variants
/// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Parsed {
    Manifest(ImageManifest),
    Index(ImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
    fs_layers: Option<serde_json::Value>,
}

/// Parses manifest bytes. `declared` is the media type the store reported (a registry's
/// `Content-Type`, a layout's descriptor), used when the JSON has no `mediaType`.
pub fn parse(data: &[u8], declared: Option<&str>, what: &str) -> Result<Parsed> {
    let probe: Probe = serde_json::from_slice(data).map_err(|e| {
        Error::invalid_format(format!("{what}: the manifest is not valid JSON: {e}"))
    })?;
    if probe.fs_layers.is_some()
        || matches!(probe.schema_version, Some(serde_json::Value::Number(ref n)) if n.as_u64() == Some(1))
    {
        return Err(Error::invalid_format(format!(
            "{what}: Docker schema 1 manifests are not supported (expected an OCI or Docker schema 2 manifest)"
        )));
    }
    let media_type = probe
        .media_type
        .as_deref()
        .or(declared.filter(|d| mt::is_index(d) || mt::is_manifest(d)));
    let is_index = match media_type {
        Some(m) if mt::is_index(m) => true,
        Some(m) if mt::is_manifest(m) => false,
        _ => probe.manifests.is_some() && probe.config.is_none(),
    };
    if is_index {
        let index: ImageIndex = serde_json::from_slice(data)
            .map_err(|e| Error::invalid_format(format!("{what}: malformed image index: {e}")))?;
        Ok(Parsed::Index(index))
    } else {
        if probe.config.is_none() {
            return Err(Error::invalid_format(format!(
                "{what}: not an image manifest or index (media type {}, no \"config\" and no \"manifests\")",
                media_type.unwrap_or("absent")
            )));
        }
        let manifest: ImageManifest = serde_json::from_slice(data)
            .map_err(|e| Error::invalid_format(format!("{what}: malformed image manifest: {e}")))?;
        if manifest.layers.len() > MAX_IMAGE_LAYERS {
            return Err(Error::limit_exceeded(format!(
                "{what}: the manifest lists {} layers, more than the limit of {MAX_IMAGE_LAYERS}",
                manifest.layers.len()
            )));
        }
        Ok(Parsed::Manifest(manifest))
    }
}

/// The media type to report for manifest bytes: the JSON's own, else what the store said,
/// else the OCI default.
pub fn effective_media_type(parsed: &Parsed, declared: Option<&str>) -> String {
    let own = match parsed {
        Parsed::Manifest(m) => m.media_type.clone(),
        Parsed::Index(i) => i.media_type.clone(),
    };
    own.or_else(|| declared.map(String::from))
        .unwrap_or_else(|| {
            match parsed {
                Parsed::Manifest(_) => mt::OCI_MANIFEST,
                Parsed::Index(_) => mt::OCI_INDEX,
            }
            .to_string()
        })
}

/// The media type of manifest bytes, by the one rule every store follows: the JSON's own
/// `mediaType`, else what the source declared, else its shape (an index has `manifests`,
/// a manifest has `config`). Bytes that are neither are `INVALID_FORMAT`.
pub fn media_type_of(data: &[u8], declared: Option<&str>, what: &str) -> Result<String> {
    let parsed = parse(data, declared, what)?;
    Ok(effective_media_type(&parsed, declared))
}
