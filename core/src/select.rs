//! Resolving a reference to one image manifest, choosing from indexes the way a
//! platform-neutral Wasm consumer should (FORMATS.md §3).

use crate::digest::{Descriptor, Digest, Platform};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::location::Selector;
use crate::manifest::{self, ImageIndex, ImageManifest, Parsed};
use crate::media_types::{self as mt, annotations};
use crate::store::verified::{fetch_manifest, FetchedManifest};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct Selected {
    pub manifest: FetchedManifest,
    pub parsed: ImageManifest,
    pub media_type: String,
    /// The top-level index the manifest was chosen from, if any.
    pub index_digest: Option<Digest>,
}

pub async fn select(
    store: &dyn Store,
    selector: &Selector,
    limits: &Limits,
    platform: Option<&Platform>,
) -> Result<Selected> {
    let mut fetched = fetch_manifest(store, selector, limits.max_metadata_bytes).await?;
    let mut index_digest = None;
    let mut depth = 0;
    loop {
        let what = format!("{}{selector}", store.describe());
        let parsed = manifest::parse(&fetched.raw.bytes, fetched.raw.media_type.as_deref(), &what)?;
        let media_type = manifest::effective_media_type(&parsed, fetched.raw.media_type.as_deref());
        match parsed {
            Parsed::Manifest(m) => {
                return Ok(Selected {
                    manifest: fetched,
                    parsed: m,
                    media_type,
                    index_digest,
                })
            }
            Parsed::Index(index) => {
                depth += 1;
                if depth > limits.max_index_depth {
                    return Err(Error::limit_exceeded(format!(
                        "{what}: indexes nest deeper than the limit of {}",
                        limits.max_index_depth
                    )));
                }
                if index.manifests.len() as u64 > limits.max_index_entries {
                    return Err(Error::limit_exceeded(format!(
                        "{what}: index has {} entries, more than the limit of {}",
                        index.manifests.len(),
                        limits.max_index_entries
                    )));
                }
                index_digest.get_or_insert_with(|| fetched.digest.clone());
                let chosen = choose(&index, platform).map_err(|e| e.context(&what))?;
                let next = Selector {
                    tag: None,
                    digest: Some(chosen.digest.clone()),
                };
                fetched = fetch_manifest(store, &next, limits.max_metadata_bytes).await?;
                if fetched.raw.bytes.len() as u64 != chosen.size {
                    return Err(crate::digest::size_mismatch(
                        "manifest",
                        &chosen.digest,
                        chosen.size,
                        fetched.raw.bytes.len() as u64,
                    ));
                }
                if fetched.raw.media_type.is_none() {
                    fetched.raw.media_type = Some(chosen.media_type.clone());
                }
            }
        }
    }
}

fn is_attestation(d: &Descriptor) -> bool {
    d.annotation(annotations::DOCKER_REFERENCE_TYPE) == Some(annotations::ATTESTATION_MANIFEST)
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

fn is_wasm_platform(p: &Platform) -> bool {
    p.architecture == "wasm" || matches!(p.os.as_str(), "wasip1" | "wasip2" | "wasi")
}

fn matches(p: &Platform, wanted: &Platform) -> bool {
    p.os == wanted.os
        && p.architecture == wanted.architecture
        && (wanted.variant.is_none() || p.variant == wanted.variant)
}

/// The platform this process runs on, in OCI's words (`linux/amd64`, `darwin/arm64`).
pub fn host_platform() -> Platform {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7".to_string())),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    Platform {
        os: os.to_string(),
        architecture: architecture.to_string(),
        variant,
        os_version: None,
    }
}

/// Picks one entry: skip attestations; the requested platform when present; a single
/// remaining entry whatever its platform; else a Wasm platform; with no platform
/// requested, the host's, then `linux/amd64` (a module is the same on every platform of
/// an index, and Istio takes `linux/amd64`); else an error listing them.
pub fn choose<'a>(index: &'a ImageIndex, wanted: Option<&Platform>) -> Result<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| !is_attestation(d))
        .filter(|d| {
            mt::is_manifest(&d.media_type) || mt::is_index(&d.media_type) || d.media_type.is_empty()
        })
        .collect();
    if let Some(wanted) = wanted {
        if let Some(d) = candidates
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| matches(p, wanted)))
        {
            return Ok(d);
        }
    }
    match candidates.as_slice() {
        [] => Err(Error::invalid_format(
            "the index lists no image manifests (only attestations or other artifacts)",
        )),
        [only] => Ok(only),
        several => {
            if let Some(d) = several
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(is_wasm_platform))
            {
                return Ok(d);
            }
            if wanted.is_none() {
                let host = host_platform();
                let amd64 = Platform {
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    ..Default::default()
                };
                // The host's variant (arm/v7) is a preference, not a requirement.
                let loose_host = Platform {
                    variant: None,
                    ..host.clone()
                };
                for (preferred, why) in [
                    (&host, "the host's platform"),
                    (&loose_host, "the host's platform"),
                    (&amd64, "linux/amd64, as Istio takes"),
                ] {
                    if let Some(d) = several
                        .iter()
                        .find(|d| d.platform.as_ref().is_some_and(|p| matches(p, preferred)))
                    {
                        tracing::info!(
                            manifest = %d.digest,
                            platform = %preferred,
                            "the index offers no Wasm platform and none was requested; taking {why}"
                        );
                        return Ok(d);
                    }
                }
            }
            let platforms: Vec<String> = several
                .iter()
                .map(|d| {
                    d.platform
                        .as_ref()
                        .map_or_else(|| format!("(no platform) {}", d.digest), |p| p.to_string())
                })
                .collect();
            let asked = wanted.map_or_else(
                || "no platform was requested".to_string(),
                |w| format!("{w} was requested"),
            );
            Err(Error::new(
                crate::ErrorKind::NotFound,
                format!(
                    "the index offers no Wasm platform and {asked}; available: {}; choose one with the platform option",
                    platforms.join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, n: u8) -> Descriptor {
        let mut d = Descriptor::for_bytes(mt::OCI_MANIFEST, &[n]);
        d.platform = Some(Platform {
            os: os.into(),
            architecture: arch.into(),
            ..Default::default()
        });
        d
    }

    fn index(entries: Vec<Descriptor>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(mt::OCI_INDEX.into()),
            manifests: entries,
            annotations: Default::default(),
        }
    }

    #[test]
    fn buildx_attestations_are_skipped_and_the_single_image_taken() {
        let mut att = entry("unknown", "unknown", 2);
        att.annotations = Some(
            [(
                annotations::DOCKER_REFERENCE_TYPE.to_string(),
                "attestation-manifest".to_string(),
            )]
            .into(),
        );
        let idx = index(vec![entry("wasip1", "wasm", 1), att]);
        assert_eq!(choose(&idx, None).unwrap().digest, Digest::sha256_of(&[1]));
        let idx = index(vec![entry("linux", "arm64", 3)]);
        assert_eq!(choose(&idx, None).unwrap().digest, Digest::sha256_of(&[3]));
    }

    #[test]
    fn wasm_is_preferred_and_explicit_platform_wins() {
        let idx = index(vec![entry("linux", "amd64", 1), entry("wasip2", "wasm", 2)]);
        assert_eq!(choose(&idx, None).unwrap().digest, Digest::sha256_of(&[2]));
        let amd64: Platform = "linux/amd64".parse().unwrap();
        assert_eq!(
            choose(&idx, Some(&amd64)).unwrap().digest,
            Digest::sha256_of(&[1])
        );
    }

    /// A compat module built for several platforms is the same module in each: with no
    /// platform requested, the host's is taken, then linux/amd64.
    #[test]
    fn without_wasm_the_host_then_amd64_is_taken() {
        let host = host_platform();
        let idx = index(vec![
            entry("plan9", "mips", 1),
            entry(&host.os, &host.architecture, 2),
            entry("linux", "amd64", 3),
        ]);
        assert_eq!(choose(&idx, None).unwrap().digest, Digest::sha256_of(&[2]));
        let idx = index(vec![
            entry("plan9", "mips", 1),
            entry("linux", "amd64", 3),
            entry("plan9", "386", 4),
        ]);
        assert_eq!(choose(&idx, None).unwrap().digest, Digest::sha256_of(&[3]));
        // A platform that was asked for and is missing is not replaced by another.
        let riscv: Platform = "linux/riscv64".parse().unwrap();
        let err = choose(&idx, Some(&riscv)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::NotFound, "{err}");
        assert!(
            err.message().contains("linux/riscv64 was requested"),
            "{err}"
        );
    }

    #[test]
    fn ambiguous_index_lists_platforms() {
        let idx = index(vec![entry("plan9", "mips", 1), entry("plan9", "386", 2)]);
        let err = choose(&idx, None).unwrap_err();
        assert!(
            err.message().contains("plan9/mips") && err.message().contains("plan9/386"),
            "{err}"
        );
    }
}
