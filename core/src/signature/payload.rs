//! The simple-signing payload cosign signs: which manifest digest, in which repository.
//! Field names and order are cosign's (sigstore's `payload.Cosign`), so what we sign
//! `cosign verify` reads and what cosign signs we read.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};

/// The `critical.type` every cosign image signature carries; anything else is refused.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleSigning {
    pub critical: Critical,
    /// Free-form claims; cosign writes `null` when there are none.
    pub optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageClaim,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The repository the image was signed in, without tag or digest.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl SimpleSigning {
    /// The payload for an image `digest` in `repository`.
    pub fn for_image(repository: &str, digest: &Digest) -> SimpleSigning {
        SimpleSigning {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: ImageClaim {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: COSIGN_SIGNATURE_TYPE.to_string(),
            },
            optional: None,
        }
    }

    /// The bytes to sign, as cosign writes them (compact JSON, cosign's field order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload always serializes")
    }

    /// Parses signed payload bytes; what is not a cosign image signature is refused.
    pub fn parse(bytes: &[u8]) -> Result<SimpleSigning> {
        let payload: SimpleSigning = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::SignatureInvalid,
                format!("the signed payload is not a simple-signing document: {e}"),
            )
        })?;
        if payload.critical.kind != COSIGN_SIGNATURE_TYPE {
            return Err(Error::new(
                ErrorKind::SignatureInvalid,
                format!(
                    "the signed payload has type {}, not {COSIGN_SIGNATURE_TYPE:?}",
                    crate::error::quoted(&payload.critical.kind, crate::error::QUOTED_CHARS)
                ),
            ));
        }
        Ok(payload)
    }

    /// The digest the payload vouches for.
    pub fn digest(&self) -> &str {
        &self.critical.image.docker_manifest_digest
    }

    pub fn repository(&self) -> &str {
        &self.critical.identity.docker_reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_cosigns_layout() {
        let d = Digest::sha256_of(b"m");
        let bytes = SimpleSigning::for_image("127.0.0.1:5000/f/x", &d).to_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/f/x\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
        let back = SimpleSigning::parse(&bytes).unwrap();
        assert_eq!(back.digest(), d.to_string());
        assert_eq!(back.repository(), "127.0.0.1:5000/f/x");
    }

    #[test]
    fn reads_optional_claims_and_refuses_other_types() {
        let with_claims = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":{"creator":"me"}}"#;
        assert!(SimpleSigning::parse(with_claims)
            .unwrap()
            .optional
            .is_some());
        let other = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":null}"#;
        let err = SimpleSigning::parse(other).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SignatureInvalid);
        let err = SimpleSigning::parse(b"garbage").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SignatureInvalid);
    }
}
