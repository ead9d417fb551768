//! The public keys keyless signing uses (ECDSA on P-256 and P-384, as Fulcio and Rekor
//! issue them) and the one way every signature in a keyless check is verified: a digest
//! of the message, then an ASN.1 DER ECDSA signature over it.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::oid::ObjectIdentifier;

/// The digest a signature was made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
            Hash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    /// The digest an X.509 `signatureAlgorithm` names, for the ECDSA algorithms only:
    /// Fulcio signs with them, and no other family is accepted up a keyless chain.
    pub(super) fn of_ecdsa_algorithm(oid: &ObjectIdentifier) -> Option<Hash> {
        const ECDSA_WITH_SHA256: ObjectIdentifier =
            ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
        const ECDSA_WITH_SHA384: ObjectIdentifier =
            ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
        const ECDSA_WITH_SHA512: ObjectIdentifier =
            ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
        match *oid {
            ECDSA_WITH_SHA256 => Some(Hash::Sha256),
            ECDSA_WITH_SHA384 => Some(Hash::Sha384),
            ECDSA_WITH_SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }
}

/// An ECDSA verifying key.
#[derive(Debug, Clone)]
pub(super) enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// A key from its DER SubjectPublicKeyInfo; `None` for anything but an ECDSA key on
    /// P-256 or P-384 (the algorithm and curve OIDs decide, then the point must be on it).
    pub(super) fn from_spki_der(der: &[u8]) -> Option<PublicKey> {
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Some(PublicKey::P256(key));
        }
        p384::ecdsa::VerifyingKey::from_public_key_der(der)
            .ok()
            .map(PublicKey::P384)
    }

    /// The digest cosign pairs with this key's curve when it signs a payload.
    pub(super) fn curve_hash(&self) -> Hash {
        match self {
            PublicKey::P256(_) => Hash::Sha256,
            PublicKey::P384(_) => Hash::Sha384,
        }
    }

    /// Whether `signature_der` is this key's ECDSA signature over the `hash` of `message`.
    /// A digest longer than the curve's order is truncated, as ECDSA specifies.
    pub(super) fn verifies(&self, message: &[u8], hash: Hash, signature_der: &[u8]) -> bool {
        let digest = hash.digest(message);
        match self {
            PublicKey::P256(key) => p256::ecdsa::Signature::from_der(signature_der)
                .is_ok_and(|signature| key.verify_prehash(&digest, &signature).is_ok()),
            PublicKey::P384(key) => p384::ecdsa::Signature::from_der(signature_der)
                .is_ok_and(|signature| key.verify_prehash(&digest, &signature).is_ok()),
        }
    }
}
