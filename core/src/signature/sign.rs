//! Signing an image the way `cosign sign` does: a simple-signing payload naming the
//! manifest digest and repository, signed, stored as a layer of the manifest tagged
//! `sha256-<hex>.sig` beside the image. A signature already under that tag keeps its
//! layers; ours is added to them (cosign does the same), never replacing another's.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::json;

use crate::digest::{Descriptor, Digest};
use crate::error::{ErrorKind, Result};
use crate::limits::Limits;
use crate::location::Selector;
use crate::manifest::{self, Parsed};
use crate::media_types as mt;
use crate::store::{verified, RawManifest, Store};

use super::find::signature_tag;
use super::keys::SigningKey;
use super::payload::SimpleSigning;

/// cosign's config for a signature manifest: empty but for one diff id per layer.
fn config_for(layers: &[Descriptor]) -> Vec<u8> {
    let zero_time = "0001-01-01T00:00:00Z";
    let config = json!({
        "architecture": "",
        "created": zero_time,
        "history": layers.iter().map(|_| json!({"created": zero_time})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>(),
        },
        "config": {},
    });
    serde_json::to_vec(&config).expect("json serializes")
}

/// Signs `digest` (an image in `repository`, written as `HOST/NAME`) with `key` and
/// stores the signature in `store`; returns the signature manifest's digest. The caller
/// commits the store.
pub async fn push_signature(
    store: &dyn Store,
    repository: &str,
    digest: &Digest,
    key: &SigningKey,
    limits: &Limits,
) -> Result<Digest> {
    let payload = SimpleSigning::for_image(repository, digest).to_bytes();
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload));
    let mut layer = Descriptor::for_bytes(mt::COSIGN_SIMPLESIGNING, &payload);
    layer.annotations = Some(BTreeMap::from([(
        mt::annotations::COSIGN_SIGNATURE.to_string(),
        signature,
    )]));

    let tag = signature_tag(digest);
    let what = format!("{}:{tag}", store.describe());
    let mut layers = match verified::fetch_manifest(
        store,
        &Selector::tag(&tag),
        limits.max_metadata_bytes,
    )
    .await
    {
        Ok(existing) => {
            match manifest::parse(
                &existing.raw.bytes,
                existing.raw.media_type.as_deref(),
                &what,
            )? {
                Parsed::Manifest(m) => m.layers,
                Parsed::Index(_) => {
                    return Err(crate::Error::invalid_format(format!(
                        "{what}: holds an index, not a signature manifest; refusing to overwrite it"
                    )))
                }
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    // The same payload signed with the same deterministic key is already there.
    if !layers.contains(&layer) {
        layers.push(layer.clone());
    }
    let config = config_for(&layers);
    let config_descriptor = Descriptor::for_bytes(mt::OCI_IMAGE_CONFIG, &config);
    verified::put_bytes(store, &layer, Bytes::from(payload), None).await?;
    verified::put_bytes(store, &config_descriptor, Bytes::from(config), None).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config_descriptor,
        "layers": layers,
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).expect("json serializes"));
    let manifest_digest = Digest::sha256_of(&bytes);
    let raw = RawManifest {
        bytes,
        media_type: Some(mt::OCI_MANIFEST.to_string()),
    };
    store
        .put_manifest(&raw, &manifest_digest, Some(&tag))
        .await?;
    tracing::info!(image = %digest, signature = %manifest_digest, store = %store.describe(), "signed");
    Ok(manifest_digest)
}
