//! Finding an image's cosign signatures in the store it lives in: the `sha256-<hex>.sig`
//! tag cosign writes by default, and OCI 1.1 referrers of the signature artifact type
//! (the referrers API, or the referrers tag schema where there is none).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::digest::{Descriptor, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::location::Selector;
use crate::manifest::{self, Parsed};
use crate::media_types as mt;
use crate::store::verified;
use crate::store::Store;

/// One signature as cosign stores it: a layer of a signature manifest.
#[derive(Debug, Clone)]
pub struct SignatureLayer {
    /// Where it was found, for messages (`…:sha256-….sig layer 0`).
    pub source: String,
    pub descriptor: Descriptor,
    /// The signed payload, read and verified against the layer's digest; `None` with the
    /// reason when it could not be read (a signature that cannot be checked).
    pub payload: std::result::Result<Bytes, String>,
    /// The `dev.cosignproject.cosign/signature` annotation (base64).
    pub signature_b64: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// The tag cosign stores an image's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm_name(), digest.hex())
}

/// Failures that say nothing about the signature but about reaching the store: they are
/// reported as they are (a control plane retries a timeout; it does not distrust the
/// image for it).
pub(crate) fn is_transport(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Network
            | ErrorKind::Timeout
            | ErrorKind::Cancelled
            | ErrorKind::RateLimited
            | ErrorKind::Unauthorized
            | ErrorKind::Forbidden
            | ErrorKind::Io
    )
}

/// The signature layers under `digest`'s signature tag. `Ok(None)` when there is no such
/// tag; `Err` for a transport failure; a tag that holds something unreadable gives the
/// reason as `Ok(Some(Err(…)))`, which the caller counts as an invalid signature.
pub async fn by_tag(
    store: &dyn Store,
    digest: &Digest,
    limits: &Limits,
) -> Result<Option<std::result::Result<Vec<SignatureLayer>, String>>> {
    let tag = signature_tag(digest);
    let source = format!("{}:{tag}", store.describe());
    let fetched = match verified::fetch_manifest(
        store,
        &Selector::tag(&tag),
        limits.max_metadata_bytes,
    )
    .await
    {
        Ok(fetched) => fetched,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if is_transport(&e) => return Err(e),
        Err(e) => return Ok(Some(Err(format!("{source}: {}", e.message())))),
    };
    Ok(Some(
        layers_of(
            store,
            &fetched.raw.bytes,
            fetched.raw.media_type.as_deref(),
            &source,
            limits,
        )
        .await?,
    ))
}

/// The signature layers of every referrer of `digest` with cosign's signature artifact
/// type (or, for manifests whose artifact type is unset, a simple-signing layer).
pub async fn by_referrers(
    store: &dyn Store,
    digest: &Digest,
    limits: &Limits,
) -> Result<Vec<std::result::Result<Vec<SignatureLayer>, String>>> {
    let referrers = match store.referrers(digest).await {
        Ok(list) => list,
        Err(e) if is_transport(&e) => return Err(e),
        Err(e) => return Ok(vec![Err(format!("referrers of {digest}: {}", e.message()))]),
    };
    let mut found = Vec::new();
    for referrer in referrers
        .iter()
        .filter(|r| r.artifact_type.as_deref() == Some(mt::COSIGN_SIGNATURE_ARTIFACT))
        .take(limits.max_index_entries as usize)
    {
        let source = format!("{}@{}", store.describe(), referrer.digest);
        let fetched = match verified::fetch_manifest(
            store,
            &Selector::digest(&referrer.digest),
            limits.max_metadata_bytes,
        )
        .await
        {
            Ok(fetched) => fetched,
            Err(e) if is_transport(&e) => return Err(e),
            Err(e) => {
                found.push(Err(format!("{source}: {}", e.message())));
                continue;
            }
        };
        found.push(
            layers_of(
                store,
                &fetched.raw.bytes,
                fetched.raw.media_type.as_deref(),
                &source,
                limits,
            )
            .await?,
        );
    }
    Ok(found)
}

/// The simple-signing layers of a signature manifest, payloads read (small, verified).
async fn layers_of(
    store: &dyn Store,
    bytes: &[u8],
    media_type: Option<&str>,
    source: &str,
    limits: &Limits,
) -> Result<std::result::Result<Vec<SignatureLayer>, String>> {
    let parsed = match manifest::parse(bytes, media_type, source) {
        Ok(Parsed::Manifest(m)) => m,
        Ok(Parsed::Index(_)) => {
            return Ok(Err(format!("{source}: an index, not a signature manifest")))
        }
        Err(e) => return Ok(Err(e.message().to_string())),
    };
    let mut layers = Vec::new();
    for (i, layer) in parsed.layers.iter().enumerate() {
        if layer.media_type != mt::COSIGN_SIMPLESIGNING {
            continue;
        }
        let payload = match verified::read_small_blob(
            store,
            layer,
            limits.max_metadata_bytes,
            "signature payload",
        )
        .await
        {
            Ok(bytes) => Ok(bytes),
            Err(e) if is_transport(&e) => return Err(e),
            Err(e) => Err(e.message().to_string()),
        };
        let annotations = layer.annotations.clone().unwrap_or_default();
        layers.push(SignatureLayer {
            source: format!("{source} layer {i}"),
            descriptor: layer.clone(),
            payload,
            signature_b64: annotations.get(mt::annotations::COSIGN_SIGNATURE).cloned(),
            annotations,
        });
    }
    if layers.is_empty() {
        return Ok(Err(format!(
            "{source}: no {} layer",
            mt::COSIGN_SIMPLESIGNING
        )));
    }
    Ok(Ok(layers))
}
