//! Signing and verification keys as cosign writes them: public keys as SPKI PEM
//! (`cosign.pub`), private keys as PKCS#8. ECDSA P-256 (cosign's default, signatures in
//! ASN.1 DER over SHA-256 of the payload) and Ed25519 (pure, over the payload itself).

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::der::pem;
use p256::pkcs8::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use p256::pkcs8::PrivateKeyInfo;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A key that verifies signatures: an ECDSA P-256 or Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    /// SHA-256 of the SPKI DER: how messages tell keys apart.
    fingerprint: String,
}

#[derive(Clone, PartialEq, Eq)]
enum VerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

fn bad_key(what: &str, why: impl fmt::Display) -> Error {
    Error::invalid_argument(format!("{what}: {why}"))
}

/// The one PEM block of `text` with its label; text around it is ignored.
fn pem_block(text: &[u8], what: &str) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let text = std::str::from_utf8(text).map_err(|_| bad_key(what, "PEM text is not UTF-8"))?;
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| bad_key(what, "no PEM block (-----BEGIN …-----) found"))?;
    let (label, der) = pem::decode_vec(text[start..].trim_end().as_bytes())
        .map_err(|e| bad_key(what, format!("malformed PEM: {e}")))?;
    Ok((label.to_string(), Zeroizing::new(der)))
}

/// The error for a key of an algorithm signatures here cannot use.
fn unsupported_algorithm(
    what: &str,
    oid: ObjectIdentifier,
    parameter: Option<ObjectIdentifier>,
) -> Error {
    bad_key(
        what,
        format!(
            "{} is not supported (ECDSA P-256, as cosign makes, or Ed25519)",
            algorithm_name(oid, parameter)
        ),
    )
}

fn algorithm_name(oid: ObjectIdentifier, parameter: Option<ObjectIdentifier>) -> String {
    match (oid, parameter) {
        (EC_PUBLIC_KEY, Some(curve)) => format!("an ECDSA key on curve {curve}"),
        (RSA, _) => "an RSA key".to_string(),
        (other, _) => format!("a key of algorithm {other}"),
    }
}

impl PublicKey {
    /// A public key from PEM (`-----BEGIN PUBLIC KEY-----`, SPKI), as
    /// `cosign generate-key-pair` writes `cosign.pub`.
    pub fn from_pem(pem_text: &[u8]) -> Result<PublicKey> {
        let what = "public key";
        let (label, der) = pem_block(pem_text, what)?;
        if label != "PUBLIC KEY" {
            return Err(bad_key(
                what,
                format!("expected a PEM block PUBLIC KEY, found {label:?}"),
            ));
        }
        PublicKey::from_der(&der)
    }

    /// Every public key in PEM text holding one or more `PUBLIC KEY` blocks (at least
    /// one), as a list of trusted keys is often kept in one file.
    pub fn all_from_pem(pem_text: &[u8]) -> Result<Vec<PublicKey>> {
        let blocks = super::pem::parse_labelled(pem_text, "PUBLIC KEY")
            .map_err(|e| bad_key("public keys", e))?;
        if blocks.is_empty() {
            return Err(bad_key("public keys", "no PEM block PUBLIC KEY found"));
        }
        blocks.iter().map(|der| PublicKey::from_der(der)).collect()
    }

    /// A public key from SPKI DER.
    pub fn from_der(der: &[u8]) -> Result<PublicKey> {
        let what = "public key";
        let spki = SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| bad_key(what, format!("not a SubjectPublicKeyInfo: {e}")))?;
        let oid = spki.algorithm.oid;
        let parameter = spki.algorithm.parameters_oid().ok();
        let key = match (oid, parameter) {
            (EC_PUBLIC_KEY, Some(P256_CURVE)) => VerifyingKey::P256(
                p256::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map_err(|e| bad_key(what, format!("malformed P-256 key: {e}")))?,
            ),
            (ED25519, _) => VerifyingKey::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(der)
                    .map_err(|e| bad_key(what, format!("malformed Ed25519 key: {e}")))?,
            ),
            _ => return Err(unsupported_algorithm(what, oid, parameter)),
        };
        let fingerprint = crate::digest::Digest::sha256_of(der).hex()[..16].to_string();
        Ok(PublicKey { key, fingerprint })
    }

    /// Checks `signature` (raw bytes, not base64) over `payload`; the error says why not.
    pub fn verify(&self, payload: &[u8], signature: &[u8]) -> Result<()> {
        let invalid = |why: String| {
            Error::new(
                ErrorKind::SignatureInvalid,
                format!("key {}: {why}", self.fingerprint),
            )
        };
        match &self.key {
            VerifyingKey::P256(key) => {
                // cosign writes ASN.1 DER; a fixed-size r||s is accepted too.
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature))
                    .map_err(|_| invalid("the signature is not an ECDSA P-256 signature".into()))?;
                key.verify(payload, &sig)
                    .map_err(|_| invalid("the signature does not verify".into()))
            }
            VerifyingKey::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| invalid("the signature is not an Ed25519 signature".into()))?;
                key.verify_strict(payload, &sig)
                    .map_err(|_| invalid("the signature does not verify".into()))
            }
        }
    }

    /// A short stable name for the key: the first 16 hex digits of its SPKI's SHA-256.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn algorithm(&self) -> &'static str {
        match self.key {
            VerifyingKey::P256(_) => "ecdsa-p256",
            VerifyingKey::Ed25519(_) => "ed25519",
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm(), self.fingerprint)
    }
}

/// The password of an encrypted private key: the one given, or the value of the
/// environment variable `env` (cosign's convention is `COSIGN_PASSWORD`), never both.
/// An environment variable named but not set is an error, not an empty password.
pub fn password(given: Option<Vec<u8>>, env: Option<&str>) -> Result<Option<Zeroizing<Vec<u8>>>> {
    match (given, env) {
        (Some(_), Some(_)) => Err(Error::invalid_argument(
            "give the private key's password or the environment variable holding it, not both",
        )),
        (Some(p), None) => Ok(Some(Zeroizing::new(p))),
        (None, Some(name)) => match std::env::var_os(name) {
            Some(value) => Ok(Some(Zeroizing::new(value.into_encoded_bytes()))),
            None => Err(Error::invalid_argument(format!(
                "the private key's password should be in the environment variable {name}, which is not set"
            ))),
        },
        (None, None) => Ok(None),
    }
}

/// The environment variable cosign reads an encrypted key's password from when no other
/// is named.
pub const DEFAULT_PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// A private key that signs payloads. Its bytes are wiped when dropped and never printed.
pub struct SigningKey {
    key: PrivateKey,
}

enum PrivateKey {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl SigningKey {
    /// A private key from PEM: unencrypted PKCS#8 (`-----BEGIN PRIVATE KEY-----`), or
    /// cosign's encrypted format (`ENCRYPTED SIGSTORE PRIVATE KEY`, also the older
    /// `ENCRYPTED COSIGN PRIVATE KEY`, as `cosign generate-key-pair` writes `cosign.key`)
    /// opened with `password`.
    pub fn from_pem(pem_text: &[u8], password: Option<&[u8]>) -> Result<SigningKey> {
        let what = "private key";
        let (label, der) = pem_block(pem_text, what)?;
        match label.as_str() {
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der),
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let password = password.ok_or_else(|| {
                    bad_key(
                        what,
                        "the key is encrypted (cosign's format) and no password was given",
                    )
                })?;
                let der = super::cosign_key::decrypt_cosign_private_key(pem_text, password)?;
                SigningKey::from_pkcs8_der(&der)
            }
            other => Err(bad_key(
                what,
                format!(
                    "expected a PEM block PRIVATE KEY (PKCS#8) or ENCRYPTED SIGSTORE PRIVATE KEY, found {other:?}"
                ),
            )),
        }
    }

    /// A private key from PEM as `cosign sign --key` opens one: an encrypted key's
    /// password is `password`, else the value of the environment variable `password_env`,
    /// else of [`DEFAULT_PASSWORD_ENV`]; an unencrypted key needs none. Every face opens
    /// keys through here so the fallback to `COSIGN_PASSWORD` is decided once.
    pub fn open(
        pem_text: &[u8],
        password: Option<Vec<u8>>,
        password_env: Option<&str>,
    ) -> Result<SigningKey> {
        let (label, _) = pem_block(pem_text, "private key")?;
        let encrypted = label.starts_with("ENCRYPTED ");
        let env = match (&password, password_env) {
            (None, None) if encrypted => Some(DEFAULT_PASSWORD_ENV),
            _ => password_env,
        };
        let password = self::password(password, env)?;
        SigningKey::from_pem(pem_text, password.as_deref().map(|p| p.as_slice()))
    }

    /// A private key from PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey> {
        let what = "private key";
        let info = PrivateKeyInfo::try_from(der)
            .map_err(|e| bad_key(what, format!("not a PKCS#8 private key: {e}")))?;
        let oid = info.algorithm.oid;
        let parameter = info.algorithm.parameters_oid().ok();
        let key = match (oid, parameter) {
            (EC_PUBLIC_KEY, Some(P256_CURVE)) => PrivateKey::P256(
                p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| bad_key(what, format!("malformed P-256 key: {e}")))?,
            ),
            (ED25519, _) => PrivateKey::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| bad_key(what, format!("malformed Ed25519 key: {e}")))?,
            ),
            _ => return Err(unsupported_algorithm(what, oid, parameter)),
        };
        Ok(SigningKey { key })
    }

    /// The signature over `payload`, raw (ECDSA: ASN.1 DER, as cosign writes it).
    /// Deterministic (RFC 6979 for ECDSA), so no random source is needed.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        match &self.key {
            PrivateKey::P256(key) => {
                let sig: p256::ecdsa::Signature = key.sign(payload);
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::Ed25519(key) => key.sign(payload).to_bytes().to_vec(),
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        use p256::pkcs8::EncodePublicKey;
        let der = match &self.key {
            PrivateKey::P256(key) => key.verifying_key().to_public_key_der(),
            PrivateKey::Ed25519(key) => key.verifying_key().to_public_key_der(),
        }
        .expect("a valid key encodes");
        PublicKey::from_der(der.as_bytes()).expect("a key we encoded parses")
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(<redacted>, public {:?})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    fn p256_pem() -> Zeroizing<String> {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap()
    }

    #[test]
    fn p256_signs_and_verifies() {
        let key = SigningKey::from_pem(p256_pem().as_bytes(), None).unwrap();
        let public = key.public_key();
        let sig = key.sign(b"payload");
        public.verify(b"payload", &sig).unwrap();
        let err = public.verify(b"other", &sig).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SignatureInvalid);
        let err = public.verify(b"payload", b"garbage").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SignatureInvalid);
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn ed25519_signs_and_verifies() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let key = SigningKey::from_pem(pem.as_bytes(), None).unwrap();
        let public_pem = {
            use p256::pkcs8::EncodePublicKey;
            ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
        };
        let public = PublicKey::from_pem(public_pem.as_bytes()).unwrap();
        assert_eq!(public, key.public_key());
        public.verify(b"p", &key.sign(b"p")).unwrap();
        assert!(public.verify(b"q", &key.sign(b"p")).is_err());
    }

    #[test]
    fn bad_keys_are_invalid_arguments() {
        for text in [
            &b"not pem"[..],
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let err = PublicKey::from_pem(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        }
        let err = SigningKey::from_pem(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        // A P-384 key is refused by name.
        let mut der = hex::decode("3076301006072a8648ce3d020106052b81040022036200").unwrap();
        der.extend([4u8; 97]);
        let err = PublicKey::from_der(&der).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
}
