//! Verifying an image against a trust: find its signatures, check that a payload names
//! exactly the digest being pulled (and the repository, when the trust says which), and
//! that its signature verifies. Anything short of one valid signature is
//! `SIGNATURE_INVALID`, with every reason found.

use base64::Engine as _;

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::store::Store;

use super::find::{self, SignatureLayer};
use super::payload::SimpleSigning;
use super::policy::Trust;

/// Which signature vouched for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The digest the signature names.
    pub digest: Digest,
    /// Where the signature was found.
    pub source: String,
    /// The key that verified it (its fingerprint).
    pub signer: String,
}

/// Checks one signature layer against `digest` and `trust`; the error is the reason.
pub fn check_layer(
    layer: &SignatureLayer,
    digest: &Digest,
    trust: &Trust,
) -> std::result::Result<String, String> {
    let payload = layer.payload.as_ref().map_err(|e| e.clone())?;
    let parsed = SimpleSigning::parse(payload).map_err(|e| e.message().to_string())?;
    if parsed.digest() != digest.to_string() {
        return Err(format!(
            "the payload names digest {}, not {digest}",
            crate::error::quoted(parsed.digest(), crate::error::QUOTED_CHARS)
        ));
    }
    if let Some(repository) = trust.repository() {
        if parsed.repository() != repository {
            return Err(format!(
                "the payload names repository {}, not {repository}",
                crate::error::quoted(parsed.repository(), crate::error::QUOTED_CHARS)
            ));
        }
    }
    let signature_b64 = layer
        .signature_b64
        .as_deref()
        .ok_or("the layer has no signature annotation")?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "the signature annotation is not base64".to_string())?;
    let mut reasons = Vec::new();
    for key in trust.public_keys() {
        match key.verify(payload, &signature) {
            Ok(()) => return Ok(format!("key {}", key.fingerprint())),
            Err(e) => reasons.push(e.message().to_string()),
        }
    }
    for (i, keyless) in trust.keyless_trusts().iter().enumerate() {
        match super::keyless::verify(keyless, payload, signature_b64, &layer.annotations) {
            Ok(()) => return Ok(format!("keyless trust {}", i + 1)),
            Err(e) => reasons.push(format!("keyless: {}", e.message())),
        }
    }
    Err(reasons.join("; "))
}

fn no_signature(what: &str, reasons: &[String], looked: &[Digest]) -> Error {
    let names: Vec<String> = looked.iter().map(find::signature_tag).collect();
    let message = if reasons.is_empty() {
        format!(
            "{what}: no signature found (looked for tag {} and OCI referrers); the verification policy requires one",
            names.join(", ")
        )
    } else {
        format!("{what}: no valid signature: {}", reasons.join("; "))
    };
    Error::new(ErrorKind::SignatureInvalid, message)
}

/// Verifies the image `digests` name in `store` (the top-level digest first, then the
/// manifest chosen from an index): the first valid signature over any of them wins.
/// The signature tag is read first (two requests for a signed image: its manifest and
/// payload); referrers only when that found nothing valid.
pub async fn verify_image(
    store: &dyn Store,
    what: &str,
    digests: &[Digest],
    trust: &Trust,
    limits: &Limits,
) -> Result<Verified> {
    let mut reasons = Vec::new();
    let check_all = |layers: Vec<SignatureLayer>, digest: &Digest, reasons: &mut Vec<String>| {
        for layer in layers {
            match check_layer(&layer, digest, trust) {
                Ok(signer) => {
                    return Some(Verified {
                        digest: digest.clone(),
                        source: layer.source,
                        signer,
                    })
                }
                Err(why) => reasons.push(format!("{}: {why}", layer.source)),
            }
        }
        None
    };
    for digest in digests {
        match find::by_tag(store, digest, limits).await? {
            Some(Ok(layers)) => {
                if let Some(v) = check_all(layers, digest, &mut reasons) {
                    return Ok(v);
                }
            }
            Some(Err(why)) => reasons.push(why),
            None => {}
        }
    }
    for digest in digests {
        for found in find::by_referrers(store, digest, limits).await? {
            match found {
                Ok(layers) => {
                    if let Some(v) = check_all(layers, digest, &mut reasons) {
                        return Ok(v);
                    }
                }
                Err(why) => reasons.push(why),
            }
        }
    }
    Err(no_signature(what, &reasons, digests))
}
