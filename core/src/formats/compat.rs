//! The Wasm Image specification's *compat* variant: an ordinary one-file image that docker
//! or buildah can build, `plugin.wasm` (and optionally `runtime-config.json`) in a tar layer.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use serde_json::json;

use super::{
    is_image_config, tar_layers_last_first, ConfigView, Encoded, Format, ManifestFormat,
    ModuleSource, Plan, TarTarget,
};
use crate::digest::{Descriptor, Digest};
use crate::error::{Error, Result};
use crate::gzip::{self, Pieces};
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

/// Options the compat writer needs beyond the module.
pub struct CompatOptions<'a> {
    pub runtime_config: Option<&'a RuntimeConfig>,
    pub annotations: &'a BTreeMap<String, String>,
    pub manifest_format: ManifestFormat,
    /// Seconds since the epoch for timestamps (`SOURCE_DATE_EPOCH`); none means no
    /// timestamps at all, so builds are reproducible.
    pub created: Option<u64>,
}

fn tar_header(name: &str, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_path(name).expect("a short relative path");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_cksum();
    header
}

/// The uncompressed layer tar, `plugin.wasm` then `runtime-config.json` when given, as the
/// bytes before the module and the bytes after it, so the module itself is never copied.
fn layer_tar_around(
    module_len: usize,
    runtime_config: Option<&RuntimeConfig>,
    mtime: u64,
) -> ([u8; 512], Vec<u8>) {
    let head = tar_header(mt::COMPAT_MODULE_FILE, module_len as u64, mtime);
    let padding = (512 - module_len % 512) % 512;
    let mut builder = tar::Builder::new(vec![0; padding]);
    if let Some(rc) = runtime_config {
        let json = rc.to_json();
        let header = tar_header(mt::COMPAT_RUNTIME_CONFIG_FILE, json.len() as u64, mtime);
        builder
            .append(&header, &json[..])
            .expect("writing to memory");
    }
    // Finishing writes the two zero blocks that end an archive.
    let tail = builder.into_inner().expect("writing to memory");
    (*head.as_bytes(), tail)
}

/// Bytes sampled from the layer to decide whether compressing it is worth the time.
const PROBE_SLICE: usize = 256 * 1024;
/// Compressed to more than this fraction of their size, the samples say "incompressible".
const WORTH_COMPRESSING: f64 = 0.95;

/// Deflate spends its time searching for matches even where there are none, so a layer
/// whose samples do not shrink (a module of already-compressed or random data) is stored
/// instead: at the speed of a copy, not tens of MB/s. The choice depends on the bytes
/// only, so builds stay reproducible.
fn compression_for(data: Pieces<'_>) -> flate2::Compression {
    if data.len() <= PROBE_SLICE {
        return flate2::Compression::default();
    }
    let last = data.len() - PROBE_SLICE;
    let starts = [0, last / 2, last];
    let mut probe = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    for start in starts {
        probe
            .write_all(&data.range(start, start + PROBE_SLICE))
            .expect("writing to memory");
    }
    let compressed = probe.finish().expect("writing to memory").len() as f64;
    if compressed > WORTH_COMPRESSING * (starts.len() * PROBE_SLICE) as f64 {
        flate2::Compression::none()
    } else {
        flate2::Compression::default()
    }
}

/// Layers up to this size are gzipped as one stream, the bytes they always had (tests pin
/// their digests, and so may users); larger ones in parallel blocks (`parallel_gzip`).
const PARALLEL_ABOVE: usize = 2 << 20;

/// One gzip stream, on this thread.
fn gzip(data: &[u8]) -> Vec<u8> {
    // Fixed header: no name, mtime 0, unknown OS, so output depends on the bytes only.
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(data.len() / 2 + 1024),
            compression_for(Pieces::new(&[data])),
        );
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// The gzipped layer tar, with its digest and its diff_id (digest of the uncompressed tar).
fn layer(tar: Pieces<'_>) -> (Vec<u8>, Digest, Digest) {
    if tar.len() <= PARALLEL_ABOVE {
        let tar = tar.to_vec();
        let gz = gzip(&tar);
        let digest = Digest::sha256_of(&gz);
        return (gz, digest, Digest::sha256_of(&tar));
    }
    let gz = gzip::gzip(tar, compression_for(tar));
    (gz.bytes, gz.digest, gz.input_digest)
}

pub fn encode(module: Bytes, options: &CompatOptions<'_>) -> Result<Encoded> {
    let (head, tail) = layer_tar_around(
        module.len(),
        options.runtime_config,
        options.created.unwrap_or(0),
    );
    let (layer_bytes, layer_digest, diff_id) = layer(Pieces::new(&[&head, &module, &tail]));
    let layer_size = layer_bytes.len() as u64;
    let layer_bytes = Bytes::from(layer_bytes);
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
        config["created"] = json!(super::rfc3339(created));
    }
    let config_bytes = Bytes::from(serde_json::to_vec(&config).expect("config serialises"));
    let config_descriptor = Descriptor::for_bytes(config_type, &config_bytes);
    let layer_descriptor = Descriptor::new(layer_type, layer_digest, layer_size);

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
    use std::io::Read;

    use super::*;

    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    fn random(len: usize) -> Vec<u8> {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        (0..len).map(|_| next() as u8).collect()
    }

    /// Words from a small vocabulary: compresses like code, about 2.5 times.
    fn compressible(len: usize) -> Vec<u8> {
        let mut next = xorshift(7);
        let words: Vec<u64> = (0..2048).map(|_| next()).collect();
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&words[(next() & 2047) as usize].to_le_bytes()[..6]);
        }
        out.truncate(len);
        out
    }

    fn runtime_config() -> RuntimeConfig {
        RuntimeConfig::new("envoy_proxy", vec!["v0.2.1".into()], vec!["root".into()])
    }

    /// The layer tar as `tar::Builder` writes it whole, the way it was always made.
    fn reference_tar(module: &[u8], rc: Option<&RuntimeConfig>, mtime: u64) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        let header = tar_header(mt::COMPAT_MODULE_FILE, module.len() as u64, mtime);
        builder.append(&header, module).unwrap();
        if let Some(rc) = rc {
            let json = rc.to_json();
            let header = tar_header(mt::COMPAT_RUNTIME_CONFIG_FILE, json.len() as u64, mtime);
            builder.append(&header, &json[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn tar_of(module: &[u8], rc: Option<&RuntimeConfig>, mtime: u64) -> Vec<u8> {
        let (head, tail) = layer_tar_around(module.len(), rc, mtime);
        Pieces::new(&[&head, module, &tail]).to_vec()
    }

    fn encode_with(module: &[u8], rc: Option<&RuntimeConfig>) -> Encoded {
        encode(
            Bytes::copy_from_slice(module),
            &CompatOptions {
                runtime_config: rc,
                annotations: &BTreeMap::new(),
                manifest_format: ManifestFormat::Oci,
                created: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_tar_around_the_module_is_the_whole_tar() {
        let rc = runtime_config();
        for len in [0, 1, 8, 511, 512, 513, 1024, 5000] {
            let module = random(len);
            for rc in [None, Some(&rc)] {
                for mtime in [0, 1_700_000_000] {
                    assert_eq!(
                        tar_of(&module, rc, mtime),
                        reference_tar(&module, rc, mtime),
                        "{len} bytes, runtime config {}",
                        rc.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn incompressible_layers_are_stored_and_others_compressed() {
        let random = random(2_000_000);
        assert_eq!(compression_for(Pieces::new(&[&random])).level(), 0);
        let code: Vec<u8> = b"\x20\x00\x41\x01\x6a\x21\x00\x0b".repeat(250_000);
        assert!(compression_for(Pieces::new(&[&code])).level() > 0);
        assert!(gzip(&code).len() < code.len() / 10);
        // Stored or not, the result is valid gzip of the same bytes.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&random)[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, random);
    }

    #[test]
    fn small_layers_keep_the_bytes_they_always_had() {
        // Manifest digests written before large layers were gzipped in parallel blocks.
        let rc = runtime_config();
        // The tar adds 2.5 KiB (3 KiB with the runtime config) to the module.
        let just_below = PARALLEL_ABOVE - 4096;
        for (module, rc, manifest) in [
            (
                compressible(just_below),
                Some(&rc),
                "sha256:ee0721cc1c57e04724c8af33a40afb23fbe3d6136c2143d5dad35d3f8debf19e",
            ),
            (
                random(just_below),
                None,
                "sha256:8aaca7a6e22a768ac98c5d7bc3e15e48acf34c6cfca96a31a4cf851b7c9cb296",
            ),
            (
                compressible(300_000),
                None,
                "sha256:c53e2a36497193390f5344beb654fbfe28025fe0f78ced39e2d6a4fdb566cacd",
            ),
        ] {
            let (head, tail) = layer_tar_around(module.len(), rc, 0);
            assert!(Pieces::new(&[&head, &module, &tail]).len() <= PARALLEL_ABOVE);
            let encoded = encode_with(&module, rc);
            assert_eq!(Digest::sha256_of(&encoded.manifest).to_string(), manifest);
        }
    }

    #[test]
    fn large_layers_are_one_gzip_member_of_the_same_tar() {
        let rc = runtime_config();
        for (module, stored) in [
            (compressible(5 * gzip::BLOCK + 1234), false),
            (random(3 * gzip::BLOCK), true),
        ] {
            let encoded = encode_with(&module, Some(&rc));
            let (layer, body) = &encoded.layers[0];
            assert_eq!(layer.digest, Digest::sha256_of(body));
            assert_eq!(layer.size, body.len() as u64);
            assert_eq!(stored, body.len() > module.len());
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut tar)
                .unwrap();
            assert!(tar == reference_tar(&module, Some(&rc), 0));
            let config: serde_json::Value = serde_json::from_slice(&encoded.config.1).unwrap();
            assert_eq!(
                config["rootfs"]["diff_ids"][0],
                Digest::sha256_of(&tar).to_string()
            );
            let again = encode_with(&module, Some(&rc));
            assert_eq!(again.manifest, encoded.manifest);
        }
    }
}
