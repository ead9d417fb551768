//! Building an image from a module: the writer side of the two specification variants.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::formats::{compat, oci, rfc3339, ManifestFormat};
use crate::image::{BlobBody, ImageInfo, RuntimeConfig, Variant, WasmImage};
use crate::media_types::annotations;
use crate::module_facts;

pub const DEFAULT_RUNTIME_TYPE: &str = "envoy_proxy";

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `Variant::Oci` (default) or `Variant::Compat`.
    pub variant: Option<Variant>,
    /// Defaults to `envoy_proxy`.
    pub runtime_type: Option<String>,
    /// Defaults to the versions the module exports (`proxy_abi_version_*`).
    pub abi_versions: Vec<String>,
    pub root_ids: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    pub manifest_format: ManifestFormat,
    /// Seconds since the epoch for timestamps. `None` reads `SOURCE_DATE_EPOCH`; without
    /// it the image carries no timestamps at all, so builds are reproducible.
    pub source_date_epoch: Option<u64>,
}

fn source_date_epoch(options: &BuildOptions) -> Result<Option<u64>> {
    if options.source_date_epoch.is_some() {
        return Ok(options.source_date_epoch);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map(Some).map_err(|_| {
            Error::invalid_argument(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds"
            ))
        }),
        _ => Ok(None),
    }
}

/// Modules above this size have their digest computed on a thread of its own.
const ALONGSIDE_ABOVE: usize = 1 << 20;

/// `main()` here and `side()` on another thread at the same time when `parallel`, so a
/// second core hashes the module while the layer is being made; one after the other
/// otherwise (a thread costs more than hashing a small module).
fn alongside<A: Send, B>(
    parallel: bool,
    side: impl FnOnce() -> A + Send,
    main: impl FnOnce() -> B,
) -> (B, A) {
    if !parallel {
        let b = main();
        return (b, side());
    }
    std::thread::scope(|s| {
        let side = s.spawn(side);
        let b = main();
        (
            b,
            side.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    })
}

pub fn build(module: Bytes, options: &BuildOptions) -> Result<WasmImage> {
    let facts = module_facts::inspect(&module)?;
    let variant = options.variant.unwrap_or(Variant::Oci);
    let created = source_date_epoch(options)?;
    let metadata_given = options.runtime_type.is_some()
        || !options.abi_versions.is_empty()
        || !options.root_ids.is_empty();
    let abi_versions = if options.abi_versions.is_empty() {
        facts.proxy_abi_versions.clone()
    } else {
        options.abi_versions.clone()
    };
    let runtime_config = RuntimeConfig::new(
        options
            .runtime_type
            .as_deref()
            .unwrap_or(DEFAULT_RUNTIME_TYPE),
        abi_versions,
        options.root_ids.clone(),
    );
    let mut extra = options.annotations.clone();
    if let Some(t) = created {
        extra
            .entry(annotations::CREATED.into())
            .or_insert_with(|| rfc3339(t));
    }
    let (encoded, runtime_config, module_digest) = match variant {
        Variant::Oci => {
            if options.manifest_format == ManifestFormat::Docker {
                return Err(Error::invalid_argument(
                    "the oci variant is written with an OCI manifest only; use the compat variant for a Docker manifest",
                ));
            }
            let module_digest = Digest::sha256_of(&module);
            (
                oci::encode(module.clone(), &module_digest, &runtime_config, &extra),
                Some(runtime_config),
                module_digest,
            )
        }
        Variant::Compat => {
            let rc = metadata_given.then_some(runtime_config);
            let (encoded, module_digest) = alongside(
                module.len() > ALONGSIDE_ABOVE,
                || Digest::sha256_of(&module),
                || {
                    compat::encode(
                        module.clone(),
                        &compat::CompatOptions {
                            runtime_config: rc.as_ref(),
                            annotations: &extra,
                            manifest_format: options.manifest_format,
                            created,
                        },
                    )
                },
            );
            (encoded?, rc, module_digest)
        }
        other => {
            return Err(Error::invalid_argument(format!(
                "cannot build the {other} format; build writes the \"oci\" and \"compat\" variants"
            )))
        }
    };
    let manifest: crate::manifest::ImageManifest = serde_json::from_slice(&encoded.manifest)
        .map_err(|e| Error::internal(format!("built manifest does not parse: {e}")))?;
    let mut blobs = vec![(
        encoded.config.0.clone(),
        BlobBody::Bytes(encoded.config.1.clone()),
    )];
    blobs.extend(
        encoded
            .layers
            .iter()
            .map(|(d, b)| (d.clone(), BlobBody::Bytes(b.clone()))),
    );
    let info = ImageInfo {
        variant,
        module_digest,
        module_size: module.len() as u64,
        manifest_digest: Digest::sha256_of(&encoded.manifest),
        manifest: encoded.manifest,
        manifest_media_type: encoded.media_type,
        index_digest: None,
        config: encoded.config.1,
        config_descriptor: encoded.config.0,
        runtime_config,
        annotations: manifest.annotations,
    };
    Ok(WasmImage {
        info,
        module,
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types as mt;

    const MODULE: &[u8] = &[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];

    #[test]
    fn oci_variant_has_the_two_layer_shape() {
        let img = build(
            Bytes::from_static(MODULE),
            &BuildOptions {
                abi_versions: vec!["v0.2.1".into(), "v0.2.0".into()],
                root_ids: vec!["add_header_root_id".into()],
                source_date_epoch: None,
                ..Default::default()
            },
        )
        .unwrap();
        let m: serde_json::Value = serde_json::from_slice(img.manifest()).unwrap();
        assert_eq!(m["mediaType"], mt::OCI_MANIFEST);
        assert_eq!(m["config"]["mediaType"], mt::SOLO_WASM_CONFIG);
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["mediaType"], mt::SOLO_WASM_CONFIG);
        assert_eq!(layers[0]["digest"], m["config"]["digest"]);
        assert_eq!(
            layers[0]["annotations"][annotations::TITLE],
            "runtime-config.json"
        );
        assert_eq!(layers[1]["mediaType"], mt::SOLO_WASM_LAYER);
        assert_eq!(layers[1]["annotations"][annotations::TITLE], "filter.wasm");
        assert_eq!(m["annotations"][annotations::RUNTIME_TYPE], "envoy_proxy");
        assert_eq!(m["annotations"][annotations::ABI_VERSION], "v0.2.1,v0.2.0");
        let config: serde_json::Value = serde_json::from_slice(img.config()).unwrap();
        assert_eq!(
            config["abiVersions"],
            serde_json::json!(["v0.2.1", "v0.2.0"])
        );
        assert_eq!(
            config["config"]["rootIds"],
            serde_json::json!(["add_header_root_id"])
        );
    }

    #[test]
    fn builds_are_reproducible_and_epoch_is_honoured() {
        for variant in [Variant::Oci, Variant::Compat] {
            let opts = BuildOptions {
                variant: Some(variant),
                source_date_epoch: None,
                ..Default::default()
            };
            let a = build(Bytes::from_static(MODULE), &opts).unwrap();
            let b = build(Bytes::from_static(MODULE), &opts).unwrap();
            assert_eq!(a.manifest(), b.manifest());
            assert!(!String::from_utf8_lossy(a.config()).contains("created"));
            let dated = build(
                Bytes::from_static(MODULE),
                &BuildOptions {
                    source_date_epoch: Some(1_700_000_000),
                    ..opts
                },
            )
            .unwrap();
            assert!(
                String::from_utf8_lossy(dated.manifest()).contains("2023-11-14T22:13:20Z")
                    || String::from_utf8_lossy(dated.config()).contains("2023-11-14T22:13:20Z")
            );
        }
    }

    #[test]
    fn compat_has_diff_ids_and_annotation() {
        let img = build(
            Bytes::from_static(MODULE),
            &BuildOptions {
                variant: Some(Variant::Compat),
                ..Default::default()
            },
        )
        .unwrap();
        let m: serde_json::Value = serde_json::from_slice(img.manifest()).unwrap();
        assert_eq!(m["annotations"][annotations::VARIANT], "compat");
        assert_eq!(m["layers"][0]["mediaType"], mt::OCI_LAYER_TAR_GZIP);
        let docker = build(
            Bytes::from_static(MODULE),
            &BuildOptions {
                variant: Some(Variant::Compat),
                manifest_format: ManifestFormat::Docker,
                ..Default::default()
            },
        )
        .unwrap();
        let m: serde_json::Value = serde_json::from_slice(docker.manifest()).unwrap();
        assert_eq!(m["mediaType"], mt::DOCKER_MANIFEST);
        assert!(m.get("annotations").is_none());
        // diff_id is the digest of the uncompressed tar.
        let (layer, body) = match &docker.blobs[1] {
            (d, BlobBody::Bytes(b)) => (d.clone(), b.clone()),
            _ => unreachable!(),
        };
        assert_eq!(layer.media_type, mt::DOCKER_LAYER_TAR_GZIP);
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut tar).unwrap();
        let config: serde_json::Value = serde_json::from_slice(docker.config()).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            Digest::sha256_of(&tar).to_string()
        );
    }

    #[test]
    fn non_wasm_is_refused() {
        let err = build(
            Bytes::from_static(b"#!/bin/sh\necho"),
            &BuildOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat);
    }
}

/// Timings of large compat builds, run by hand:
/// `cargo test --release -p wasm-image --lib -- --ignored compat_build_timing --nocapture`.
#[cfg(test)]
mod timing {
    use super::*;

    /// A valid module of exactly `total` bytes: the empty module plus one custom section
    /// whose payload is random bytes, or (compressible) a random sequence of 6-byte words
    /// from a vocabulary of 2048, which gzip -6 shrinks about 2.6 times like real code.
    pub(crate) fn big_module(total: usize, compressible: bool, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let name = b"bench.random";
        let mut out = vec![0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0];
        // A 5-byte LEB128 section size keeps the arithmetic simple.
        let content = total - out.len() - 5;
        let c = content as u32;
        out.extend([
            (c & 0x7f) as u8 | 0x80,
            ((c >> 7) & 0x7f) as u8 | 0x80,
            ((c >> 14) & 0x7f) as u8 | 0x80,
            ((c >> 21) & 0x7f) as u8 | 0x80,
            (c >> 28) as u8,
        ]);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        let vocab: Vec<[u8; 6]> = (0..2048)
            .map(|_| next().to_le_bytes()[..6].try_into().unwrap())
            .collect();
        while out.len() < total {
            let r = next();
            if compressible {
                out.extend_from_slice(&vocab[(r & 2047) as usize]);
            } else {
                out.extend_from_slice(&r.to_le_bytes());
            }
        }
        out.truncate(total);
        out
    }

    #[test]
    #[ignore]
    fn compat_build_timing() {
        for compressible in [false, true] {
            let module = Bytes::from(big_module(50 << 20, compressible, 42));
            let opts = BuildOptions {
                variant: Some(Variant::Compat),
                ..Default::default()
            };
            let mut times = Vec::new();
            let mut layer = 0;
            for _ in 0..7 {
                let start = std::time::Instant::now();
                let img = build(module.clone(), &opts).unwrap();
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                layer = img.blobs[1].0.size;
            }
            times.sort_by(f64::total_cmp);
            eprintln!(
                "compat build 50 MiB {}: median {:.1} ms, min {:.1} ms (layer {} bytes, ratio {:.2})",
                if compressible { "compressible" } else { "random" },
                times[times.len() / 2],
                times[0],
                layer,
                module.len() as f64 / layer as f64
            );
        }
    }
}
