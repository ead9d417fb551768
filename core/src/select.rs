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

/// Picks one entry: skip attestations; the requested platform when present; a single
/// remaining entry whatever its platform; else a Wasm platform; else an error listing them.
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

    #[test]
    fn ambiguous_index_lists_platforms() {
        let idx = index(vec![entry("linux", "amd64", 1), entry("linux", "arm64", 2)]);
        let err = choose(&idx, None).unwrap_err();
        assert!(
            err.message().contains("linux/amd64") && err.message().contains("linux/arm64"),
            "{err}"
        );
    }
}
