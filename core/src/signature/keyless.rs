//! Verifying a cosign *keyless* signature offline, against trust material the caller
//! gives: Fulcio's certificates and Rekor's keys. Nothing here talks to a Sigstore
//! service.
//!
//! A keyless signature layer carries a short-lived Fulcio certificate (annotation
//! `dev.sigstore.cosign/certificate`), its chain (`dev.sigstore.cosign/chain`) and a Rekor
//! bundle (`dev.sigstore.cosign/bundle`). [`verify`] accepts the layer when, as cosign
//! checks it:
//!
//! 1. the signature over the payload verifies with the certificate's key;
//! 2. the bundle's SignedEntryTimestamp verifies with a trusted Rekor key, the one its
//!    `logID` names;
//! 3. the logged entry names this payload's digest, this signature and this certificate;
//! 4. the certificate chains to a trusted Fulcio root and has the code-signing EKU, all
//!    of it valid at the log's `integratedTime` (the certificate lives ten minutes; the
//!    log proves the signature was made within them);
//! 5. the certificate's identity matches: its OIDC issuer extension and its subject
//!    alternative name (email or URI).
//!
//! Every failure is `SIGNATURE_INVALID`, with a message naming the check that failed.
//!
//! Not checked, as cosign run with `--insecure-ignore-sct` and without timestamp
//! authorities does not check them: the certificate's embedded SCT (it needs CT log keys)
//! and RFC 3161 timestamps. Only cosign's layer form is read (annotations and the Rekor
//! bundle), not the protobuf Sigstore bundle; keys are ECDSA P-256 or P-384. Unlike
//! cosign 2.6, whose identity policy reads only the V1 issuer extension, the V2 one is
//! preferred, as sigstore-go does; Fulcio writes both with the same value. And a leaf
//! without an extended key usage extension is refused, where Go's x509 (so cosign) lets
//! it serve any purpose: Fulcio always marks its leaves for code signing.

use std::collections::BTreeMap;

use base64::Engine as _;
use regex::Regex;
use x509_cert::der::asn1::Utf8StringRef;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use crate::error::{quoted, Error, ErrorKind, Result, QUOTED_CHARS};
use crate::media_types::annotations;
use crate::signature::pem;

mod chain;
mod public_key;
mod rekor;

use chain::ParsedCert;
use public_key::{Hash, PublicKey};
use rekor::Bundle;

/// Most certificates a signature layer's chain annotation may hold.
const MAX_CHAIN_CERTIFICATES: usize = 10;

/// Fulcio's OIDC issuer extension ("Issuer (V2)", a DER UTF8String), and the deprecated
/// one before it (the raw issuer string).
const OIDC_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
const OIDC_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");

/// What a keyless signature is checked against.
#[derive(Clone, Debug)]
pub struct KeylessTrust {
    /// DER certificates: Fulcio roots, and intermediates the caller trusts. A path must
    /// end at a self-signed one; a trusted intermediate shortens the chain the layer must
    /// carry but still needs its root here.
    pub fulcio_roots: Vec<Vec<u8>>,
    /// DER SubjectPublicKeyInfo of each trusted Rekor log key (ECDSA P-256 or P-384).
    pub rekor_keys: Vec<Vec<u8>>,
    /// Whose signatures are accepted.
    pub identity: CertificateIdentity,
}

impl KeylessTrust {
    /// Trust material from PEM: one or more `CERTIFICATE` blocks of Fulcio roots (and
    /// intermediates), one or more `PUBLIC KEY` blocks of Rekor keys. Malformed or empty
    /// material is `INVALID_ARGUMENT`.
    pub fn from_pem(
        fulcio_roots_pem: &[u8],
        rekor_keys_pem: &[u8],
        identity: CertificateIdentity,
    ) -> Result<KeylessTrust> {
        let fulcio_roots = pem_blocks(fulcio_roots_pem, "CERTIFICATE", "Fulcio roots")?;
        for (i, der) in fulcio_roots.iter().enumerate() {
            if ParsedCert::parse(der).is_none() {
                return Err(Error::invalid_argument(format!(
                    "Fulcio root PEM block {} is not an X.509 certificate",
                    i + 1
                )));
            }
        }
        let rekor_keys = pem_blocks(rekor_keys_pem, "PUBLIC KEY", "Rekor keys")?;
        for (i, der) in rekor_keys.iter().enumerate() {
            if PublicKey::from_spki_der(der).is_none() {
                return Err(Error::invalid_argument(format!(
                    "Rekor key PEM block {} is not an ECDSA P-256 or P-384 public key",
                    i + 1
                )));
            }
        }
        Ok(KeylessTrust {
            fulcio_roots,
            rekor_keys,
            identity,
        })
    }
}

impl KeylessTrust {
    /// The keyless part of a trust as a face's caller gives it: Fulcio roots and Rekor
    /// keys (PEM) together or neither, and the identity built by `identity` only when
    /// they are given. Neither is `Ok(None)`; one without the other is
    /// `INVALID_ARGUMENT`, as is anything [`KeylessTrust::from_pem`] refuses.
    pub fn from_optional_pem(
        fulcio_roots_pem: Option<&[u8]>,
        rekor_keys_pem: Option<&[u8]>,
        identity: impl FnOnce() -> Result<CertificateIdentity>,
    ) -> Result<Option<KeylessTrust>> {
        match (fulcio_roots_pem, rekor_keys_pem) {
            (None, None) => Ok(None),
            (Some(roots), Some(rekor)) => {
                KeylessTrust::from_pem(roots, rekor, identity()?).map(Some)
            }
            _ => Err(Error::invalid_argument(
                "keyless verification needs both Fulcio roots and Rekor keys",
            )),
        }
    }
}

fn pem_blocks(text: &[u8], label: &str, what: &str) -> Result<Vec<Vec<u8>>> {
    pem::parse_labelled(text, label).map_err(|e| Error::invalid_argument(format!("{what}: {e}")))
}

/// The signer a certificate must name: the OIDC issuer that vouched for them and their
/// identity there (an email, or a URI such as a CI workflow's).
#[derive(Clone, Debug)]
pub struct CertificateIdentity {
    pub issuer: IdentityMatch,
    pub subject: IdentityMatch,
}

/// How an identity value is matched: always against the whole value.
#[derive(Clone, Debug)]
pub enum IdentityMatch {
    Exact(String),
    /// Matches when the pattern matches the whole value, as if written `^(?:…)$`
    /// ([`IdentityMatch::regex`] anchors it so; a `Regex` built elsewhere is anchored
    /// when matched, inline flags kept).
    Regex(Regex),
}

impl IdentityMatch {
    /// A regular expression (Rust `regex` syntax) that must match the whole value.
    /// A malformed pattern is `INVALID_ARGUMENT`.
    pub fn regex(pattern: &str) -> Result<IdentityMatch> {
        Regex::new(&anchored(pattern))
            .map(IdentityMatch::Regex)
            .map_err(|e| {
                Error::invalid_argument(format!(
                    "identity pattern {} is not a valid regular expression: {e}",
                    quoted(pattern, QUOTED_CHARS)
                ))
            })
    }

    /// `value` matched exactly, or, when `is_regex`, as a regular expression over the
    /// whole value ([`IdentityMatch::regex`]).
    pub fn new(value: &str, is_regex: bool) -> Result<IdentityMatch> {
        if is_regex {
            IdentityMatch::regex(value)
        } else {
            Ok(IdentityMatch::Exact(value.to_string()))
        }
    }

    /// One side of a certificate identity given as two optional arguments, an exact
    /// value and a pattern, of which exactly one must be set; `what` ("issuer",
    /// "subject") names the side in the `INVALID_ARGUMENT` error otherwise.
    pub fn one_of(what: &str, exact: Option<&str>, pattern: Option<&str>) -> Result<IdentityMatch> {
        match (exact, pattern) {
            (Some(e), None) => IdentityMatch::new(e, false),
            (None, Some(p)) => IdentityMatch::new(p, true),
            (None, None) => Err(Error::invalid_argument(format!(
                "keyless verification needs the certificate's {what}: an exact value or a regular expression"
            ))),
            (Some(_), Some(_)) => Err(Error::invalid_argument(format!(
                "the certificate's {what} is given both exactly and as a regular expression: give one"
            ))),
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            IdentityMatch::Exact(expected) => expected == value,
            IdentityMatch::Regex(re) => {
                let pattern = re.as_str();
                if pattern.starts_with("^(?:") && pattern.ends_with(")$") {
                    re.is_match(value)
                } else {
                    Regex::new(&anchored(pattern)).is_ok_and(|whole| whole.is_match(value))
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            IdentityMatch::Exact(expected) => {
                format!("the expected '{}'", quoted(expected, QUOTED_CHARS))
            }
            IdentityMatch::Regex(re) => {
                format!("the pattern '{}'", quoted(re.as_str(), QUOTED_CHARS))
            }
        }
    }
}

fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// Verifies one cosign keyless signature layer: `payload` is the layer's bytes (the
/// simple-signing JSON), `signature_b64` its `dev.cosignproject.cosign/signature`
/// annotation, `annotations` all of the layer's annotations (the certificate, chain and
/// bundle among them). `Ok` only when every check in the module documentation passes;
/// otherwise `SIGNATURE_INVALID` naming the check that failed.
pub fn verify(
    trust: &KeylessTrust,
    payload: &[u8],
    signature_b64: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<()> {
    let leaf = leaf_certificate(annotations)?;
    let chain = chain_certificates(annotations)?;
    let bundle = Bundle::parse(annotation(annotations, annotations::COSIGN_BUNDLE)?)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| rejected("the signature annotation is not base64"))?;
    let trusted = trusted_certificates(trust)?;

    let key = leaf.public_key().ok_or_else(|| {
        rejected(
            "the signing certificate's key is not an ECDSA P-256 or P-384 key (the kinds supported)",
        )
    })?;
    // cosign hashes with SHA-256 whatever the curve; other signers pair P-384 with SHA-384.
    let signed = [key.curve_hash(), Hash::Sha256]
        .into_iter()
        .any(|hash| key.verifies(payload, hash, &signature));
    if !signed {
        return Err(rejected(
            "the signature over the payload does not verify with the signing certificate's key",
        ));
    }

    bundle.verify_set(&trust.rekor_keys)?;
    bundle.verify_entry(payload, &signature, &leaf)?;
    chain::verify_path(&leaf, &chain, &trusted, bundle.integrated_time())?;
    check_identity(&trust.identity, &leaf)
}

/// A `SIGNATURE_INVALID` error: every refusal of a keyless signature is one.
fn rejected(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::SignatureInvalid, message)
}

fn annotation<'a>(annotations: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str> {
    annotations.get(key).map(String::as_str).ok_or_else(|| {
        rejected(format!(
            "the signature layer has no {key} annotation, which a keyless signature needs"
        ))
    })
}

fn leaf_certificate(annotations: &BTreeMap<String, String>) -> Result<ParsedCert> {
    let text = annotation(annotations, annotations::COSIGN_CERTIFICATE)?;
    let ders = certificate_blocks(text, "signing certificate")?;
    let [der] = ders.as_slice() else {
        return Err(rejected(format!(
            "the signing certificate annotation holds {} certificates, not one",
            ders.len()
        )));
    };
    ParsedCert::parse(der)
        .ok_or_else(|| rejected("the signing certificate is not an X.509 certificate"))
}

/// The chain annotation's certificates; none when the layer has no chain annotation
/// (then the trusted certificates must hold the intermediates).
fn chain_certificates(annotations: &BTreeMap<String, String>) -> Result<Vec<ParsedCert>> {
    let Some(text) = annotations.get(annotations::COSIGN_CHAIN) else {
        return Ok(Vec::new());
    };
    let ders = certificate_blocks(text, "certificate chain")?;
    if ders.len() > MAX_CHAIN_CERTIFICATES {
        return Err(rejected(format!(
            "the certificate chain annotation holds {} certificates, more than {MAX_CHAIN_CERTIFICATES}",
            ders.len()
        )));
    }
    parse_certificates(&ders, |i| {
        format!("certificate {i} of the chain annotation")
    })
}

fn certificate_blocks(text: &str, what: &str) -> Result<Vec<Vec<u8>>> {
    pem::parse_labelled(text.as_bytes(), "CERTIFICATE")
        .map_err(|e| rejected(format!("the {what} annotation: {e}")))
}

/// Each DER certificate parsed; `what(i)` names the i-th (from 1) when it does not parse.
fn parse_certificates(ders: &[Vec<u8>], what: impl Fn(usize) -> String) -> Result<Vec<ParsedCert>> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            ParsedCert::parse(der)
                .ok_or_else(|| rejected(format!("{} is not an X.509 certificate", what(i + 1))))
        })
        .collect()
}

fn trusted_certificates(trust: &KeylessTrust) -> Result<Vec<ParsedCert>> {
    if trust.fulcio_roots.is_empty() {
        return Err(rejected("no Fulcio root is trusted"));
    }
    parse_certificates(&trust.fulcio_roots, |i| {
        format!("trusted Fulcio certificate {i}")
    })
}

fn check_identity(identity: &CertificateIdentity, leaf: &ParsedCert) -> Result<()> {
    let issuer = oidc_issuer(leaf)?;
    if !identity.issuer.matches(&issuer) {
        return Err(rejected(format!(
            "the signing certificate's OIDC issuer '{}' does not match {}",
            quoted(&issuer, QUOTED_CHARS),
            identity.issuer.describe()
        )));
    }
    let subjects = subject_names(leaf)?;
    if subjects.is_empty() {
        return Err(rejected(
            "the signing certificate names no email or URI subject alternative name",
        ));
    }
    if !subjects.iter().any(|s| identity.subject.matches(s)) {
        let shown: Vec<String> = subjects
            .iter()
            .map(|s| format!("'{}'", quoted(s, QUOTED_CHARS)))
            .collect();
        return Err(rejected(format!(
            "the signing certificate's subject {} does not match {}",
            shown.join(", "),
            identity.subject.describe()
        )));
    }
    Ok(())
}

/// The OIDC issuer Fulcio recorded: the V2 extension, else the deprecated V1.
fn oidc_issuer(leaf: &ParsedCert) -> Result<String> {
    let extensions = leaf
        .cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or(&[]);
    let value = |oid: ObjectIdentifier| {
        extensions
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    };
    if let Some(der) = value(OIDC_ISSUER_V2) {
        return Utf8StringRef::from_der(der)
            .map(|s| s.as_str().to_string())
            .map_err(|_| {
                rejected("the signing certificate's OIDC issuer (V2) extension is not a UTF8String")
            });
    }
    if let Some(raw) = value(OIDC_ISSUER_V1) {
        return String::from_utf8(raw.to_vec()).map_err(|_| {
            rejected("the signing certificate's OIDC issuer (V1) extension is not UTF-8")
        });
    }
    Err(rejected(
        "the signing certificate has no Fulcio OIDC issuer extension (1.3.6.1.4.1.57264.1.8 or .1.1)",
    ))
}

/// The certificate's email and URI subject alternative names.
fn subject_names(leaf: &ParsedCert) -> Result<Vec<String>> {
    let names = chain::get::<SubjectAltName>(leaf)?.map_or_else(Vec::new, |san| san.0);
    Ok(names
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::Rfc822Name(email) => Some(email.to_string()),
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect())
}
