//! The Wasm Image specification's *compat* variant: an ordinary one-file image that docker
//! or buildah can build, `plugin.wasm` (and optionally `runtime-config.json`) in a tar layer.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use serde_json::json;

use super::{
    is_image_config, ConfigView, Encoded, Format, ManifestFormat, ModuleSource, Plan, TarTarget,
};
use crate::digest::{Descriptor, Digest};
use crate::error::{Error, Result};
use crate::image::{RuntimeConfig, Variant};
use crate::manifest::ImageManifest;
use crate::media_types::{self as mt, annotations};

pub struct Compat;

impl Format for Compat {
    fn variant(&self) -> Variant {
        Variant::Compat
    }

    fn detect(&self, _manifest: &ImageManifest, config: &ConfigView<'_>) -> bool {
        is_image_config(config.media_type())
    }

    fn plan(&self, manifest: &ImageManifest, config: &ConfigView<'_>) -> Result<Plan> {
        if !config.json.as_ref().is_some_and(|v| v.is_object()) {
            return Err(Error::invalid_format(
                "compat image config is not a JSON object",
            ));
        }
        Ok(Plan {
            variant: Variant::Compat,
            source: ModuleSource::InTar {
                layers: tar_layers_last_first(manifest)?,
                target: TarTarget::BaseName(mt::COMPAT_MODULE_FILE),
                runtime_config_file: true,
            },
            runtime_config: None,
        })
    }
}

/// The tar layers of an image, from the last to the first (where the module usually is).
pub(crate) fn tar_layers_last_first(manifest: &ImageManifest) -> Result<Vec<Descriptor>> {
    let layers: Vec<Descriptor> = manifest
        .layers
        .iter()
        .rev()
        .filter(|l| mt::tar_layer_compression(&l.media_type).is_some())
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

/// Options the compat writer needs beyond the module.
pub struct CompatOptions<'a> {
    pub runtime_config: Option<&'a RuntimeConfig>,
    pub annotations: &'a BTreeMap<String, String>,
    pub manifest_format: ManifestFormat,
    /// Seconds since the epoch for timestamps (`SOURCE_DATE_EPOCH`); none means no
    /// timestamps at all, so builds are reproducible.
    pub created: Option<u64>,
}

fn tar_file(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    data: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_path(name)?;
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_cksum();
    builder.append(&header, data)
}

/// The uncompressed layer tar: `plugin.wasm`, then `runtime-config.json` when given.
fn layer_tar(module: &[u8], runtime_config: Option<&RuntimeConfig>, mtime: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::with_capacity(module.len() + 4096));
    builder.mode(tar::HeaderMode::Deterministic);
    tar_file(&mut builder, mt::COMPAT_MODULE_FILE, module, mtime).expect("writing to memory");
    if let Some(rc) = runtime_config {
        tar_file(
            &mut builder,
            mt::COMPAT_RUNTIME_CONFIG_FILE,
            &rc.to_json(),
            mtime,
        )
        .expect("writing to memory");
    }
    builder.into_inner().expect("writing to memory")
}

/// Bytes sampled from the layer to decide whether compressing it is worth the time.
const PROBE_SLICE: usize = 256 * 1024;
/// Compressed to more than this fraction of their size, the samples say "incompressible".
const WORTH_COMPRESSING: f64 = 0.95;

/// Deflate spends its time searching for matches even where there are none, so a layer
/// whose samples do not shrink (a module of already-compressed or random data) is stored
/// instead: at the speed of a copy, not tens of MB/s. The choice depends on the bytes
/// only, so builds stay reproducible.
fn compression_for(data: &[u8]) -> flate2::Compression {
    if data.len() <= PROBE_SLICE {
        return flate2::Compression::default();
    }
    let last = data.len() - PROBE_SLICE;
    let starts = [0, last / 2, last];
    let mut probe = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    for start in starts {
        probe
            .write_all(&data[start..start + PROBE_SLICE])
            .expect("writing to memory");
    }
    let compressed = probe.finish().expect("writing to memory").len() as f64;
    if compressed > WORTH_COMPRESSING * (starts.len() * PROBE_SLICE) as f64 {
        flate2::Compression::none()
    } else {
        flate2::Compression::default()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // Fixed header: no name, mtime 0, unknown OS, so output depends on the bytes only.
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(data.len() / 2 + 1024),
            compression_for(data),
        );
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

pub fn encode(module: Bytes, options: &CompatOptions<'_>) -> Result<Encoded> {
    let tar = layer_tar(
        &module,
        options.runtime_config,
        options.created.unwrap_or(0),
    );
    let diff_id = Digest::sha256_of(&tar);
    let layer_bytes = Bytes::from(gzip(&tar));
    drop(tar);
    let docker = options.manifest_format == ManifestFormat::Docker;
    let (manifest_type, config_type, layer_type) = if docker {
        (
            mt::DOCKER_MANIFEST,
            mt::DOCKER_IMAGE_CONFIG,
            mt::DOCKER_LAYER_TAR_GZIP,
        )
    } else {
        (
            mt::OCI_MANIFEST,
            mt::OCI_IMAGE_CONFIG,
            mt::OCI_LAYER_TAR_GZIP,
        )
    };
    // Consumers that pull compat images as ordinary images (image volumes, docker) expect a
    // Linux platform in a single-manifest image, as buildah writes it.
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    });
    if let Some(created) = options.created {
        config["created"] = json!(crate::build::rfc3339(created));
    }
    let config_bytes = Bytes::from(serde_json::to_vec(&config).expect("config serialises"));
    let config_descriptor = Descriptor::for_bytes(config_type, &config_bytes);
    let layer_descriptor = Descriptor::for_bytes(layer_type, &layer_bytes);

    let manifest_annotations = if docker {
        // Docker schema 2 has no annotations; buildah drops them the same way.
        BTreeMap::new()
    } else {
        let mut a = options.annotations.clone();
        a.insert(annotations::VARIANT.into(), "compat".into());
        a
    };
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(manifest_type.into()),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers: vec![layer_descriptor.clone()],
        subject: None,
        annotations: manifest_annotations,
    };
    Ok(Encoded {
        manifest: Bytes::from(serde_json::to_vec(&manifest).expect("manifest serialises")),
        media_type: manifest_type.into(),
        config: (config_descriptor, config_bytes),
        layers: vec![(layer_descriptor, layer_bytes)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompressible_layers_are_stored_and_others_compressed() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let random: Vec<u8> = (0..2_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(compression_for(&random).level(), 0);
        let code: Vec<u8> = b"\x20\x00\x41\x01\x6a\x21\x00\x0b".repeat(250_000);
        assert!(compression_for(&code).level() > 0);
        assert!(gzip(&code).len() < code.len() / 10);
        // Stored or not, the result is valid gzip of the same bytes.
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzip(&random)[..]),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, random);
    }
}
