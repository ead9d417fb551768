//! The Wasm-in-OCI formats. Each format is one file that says how to recognise its images
//! and where their module lives (a [`Plan`]); `crate::extract` carries plans out, so the
//! formats hold no I/O. Writers for the two variants of the Wasm Image specification live
//! beside their readers.

use serde_json::Value;

use crate::digest::Descriptor;
use crate::error::{Error, Result};
use crate::image::{RuntimeConfig, Variant};
use crate::manifest::ImageManifest;
use crate::media_types as mt;

pub mod compat;
pub mod oci;
pub mod oci_artifact;
pub mod wasi_image;
pub mod wasm_artifact;
pub mod wasm_to_oci;
pub mod wasmcloud;

/// How to find a file inside tar layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarTarget {
    /// Any regular file with this base name (`plugin.wasm`, `./plugin.wasm`, `a/plugin.wasm`).
    BaseName(&'static str),
    /// Exactly this path, relative to the root (leading `/` and `./` ignored).
    Path(String),
}

#[derive(Debug, Clone)]
pub enum ModuleSource {
    /// The layer's bytes are the module.
    Raw(Descriptor),
    /// The module is a file in one of these tar layers, tried in order.
    InTar {
        layers: Vec<Descriptor>,
        target: TarTarget,
        /// Also read `runtime-config.json` from the layer holding the module.
        runtime_config_file: bool,
    },
}

impl ModuleSource {
    /// The layers the module is read from.
    pub fn layers(&self) -> &[Descriptor] {
        match self {
            ModuleSource::Raw(layer) => std::slice::from_ref(layer),
            ModuleSource::InTar { layers, .. } => layers,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub variant: Variant,
    pub source: ModuleSource,
    /// Runtime metadata found in the config blob (the oci variant keeps it there).
    pub runtime_config: Option<RuntimeConfig>,
}

/// The image config as read: its descriptor, and its JSON when it is JSON.
pub struct ConfigView<'a> {
    pub descriptor: &'a Descriptor,
    pub bytes: &'a [u8],
    pub json: Option<Value>,
}

impl<'a> ConfigView<'a> {
    pub fn new(descriptor: &'a Descriptor, bytes: &'a [u8]) -> ConfigView<'a> {
        ConfigView {
            descriptor,
            bytes,
            json: serde_json::from_slice(bytes).ok(),
        }
    }

    pub fn media_type(&self) -> &str {
        &self.descriptor.media_type
    }

    /// A top-level string field of the config JSON (`architecture`, `os`, …).
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.json.as_ref()?.get(key)?.as_str()
    }
}

pub trait Format: Sync {
    fn variant(&self) -> Variant;
    /// Whether the image is of this format. Decided from the config media type first,
    /// since layer media types collide between formats.
    fn detect(&self, manifest: &ImageManifest, config: &ConfigView<'_>) -> bool;
    fn plan(&self, manifest: &ImageManifest, config: &ConfigView<'_>) -> Result<Plan>;
}

/// In order: formats with their own config media type first, then the generic ones.
static FORMATS: &[&dyn Format] = &[
    &oci::OciVariant,
    &wasm_artifact::WasmArtifact,
    &wasm_to_oci::WasmToOci,
    &wasmcloud::Wasmcloud,
    &wasi_image::WasiImage,
    &compat::Compat,
    &oci_artifact::OciArtifact,
];

pub fn classify(manifest: &ImageManifest, config: &ConfigView<'_>, what: &str) -> Result<Plan> {
    for format in FORMATS {
        if format.detect(manifest, config) {
            return format.plan(manifest, config).map_err(|e| e.context(what));
        }
    }
    let layers: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    Err(Error::invalid_format(format!(
        "{what}: not a Wasm image: config media type {:?}{}, layer media types [{}]",
        config.media_type(),
        manifest
            .artifact_type
            .as_ref()
            .map(|a| format!(", artifact type {a:?}"))
            .unwrap_or_default(),
        layers.join(", ")
    )))
}

/// The one layer of a given media type; none or several is a format error.
pub(crate) fn single_layer_of<'m>(
    manifest: &'m ImageManifest,
    media_types: &[&str],
    format: &str,
) -> Result<&'m Descriptor> {
    let found: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| media_types.contains(&l.media_type.as_str()))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::invalid_format(format!(
            "{format} image has no module layer (expected one layer of media type {})",
            media_types.join(" or ")
        ))),
        many => Err(Error::invalid_format(format!(
            "{format} image has {} module layers of media type {}; expected exactly one",
            many.len(),
            media_types.join(" or ")
        ))),
    }
}

/// The tar layers of an image, from the last to the first (where the module usually is),
/// each digest once: a layer listed many times is searched (downloaded, decompressed)
/// once, where it is listed last.
pub(crate) fn tar_layers_last_first(manifest: &ImageManifest) -> Result<Vec<Descriptor>> {
    let mut seen = std::collections::HashSet::new();
    let layers: Vec<Descriptor> = manifest
        .layers
        .iter()
        .rev()
        .filter(|l| mt::tar_layer_compression(&l.media_type).is_some())
        .filter(|l| seen.insert(&l.digest))
        .cloned()
        .collect();
    if layers.is_empty() {
        let types: Vec<&str> = manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        return Err(Error::invalid_format(format!(
            "image has no tar layers to search for the module (layer media types: [{}])",
            types.join(", ")
        )));
    }
    Ok(layers)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

pub(crate) fn is_image_config(media_type: &str) -> bool {
    media_type == mt::OCI_IMAGE_CONFIG || media_type == mt::DOCKER_IMAGE_CONFIG
}

/// Writer-side choices shared by the encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    #[default]
    Oci,
    Docker,
}

impl std::str::FromStr for ManifestFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<ManifestFormat> {
        match s {
            "oci" => Ok(ManifestFormat::Oci),
            "docker" => Ok(ManifestFormat::Docker),
            other => Err(Error::invalid_argument(format!(
                "unknown manifest format {other:?}; expected \"oci\" or \"docker\""
            ))),
        }
    }
}

/// An image ready to be written: manifest bytes and every blob it references.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub manifest: bytes::Bytes,
    pub media_type: String,
    pub config: (Descriptor, bytes::Bytes),
    pub layers: Vec<(Descriptor, bytes::Bytes)>,
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
