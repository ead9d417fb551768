//! A stand-in Sigstore for tests: a Fulcio (root CA → intermediate → ten-minute leaf
//! certificates with the code-signing EKU, a subject alternative name and the OIDC issuer
//! extension) and a Rekor (a P-256 log key that signs bundles), producing cosign keyless
//! signature layers exactly as cosign and Rekor write them. Everything stays in memory;
//! nothing reaches a network. Behind `cfg(test)` or the `testkit` feature.
//!
//! ```ignore
//! let sigstore = TestSigstore::new();
//! let layer = sigstore.sign_image("sha256:…", "127.0.0.1:5000/plugins/filter", &LeafOptions::default());
//! // layer.payload: the simple-signing layer's bytes; layer.annotations: its annotations,
//! // the signature among them. Trust: sigstore.fulcio_root_pem(), sigstore.rekor_key_pem().
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
    SigningKey,
};
use sha2::{Digest, Sha256};

use super::keyless::{CertificateIdentity, IdentityMatch, KeylessTrust};
use super::pem;
use crate::media_types::annotations;

/// 2026-01-01T00:00:00Z: when test leaf certificates start, unless told otherwise.
pub const T0: u64 = 1_767_225_600;
/// How long Fulcio's certificates live.
pub const LEAF_LIFETIME: u64 = 600;
pub const DEFAULT_EMAIL: &str = "signer@example.test";
pub const DEFAULT_ISSUER: &str = "https://issuer.example.test";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The subject alternative name Fulcio puts in a leaf.
#[derive(Debug, Clone)]
pub enum Subject {
    Email(String),
    Uri(String),
}

/// Which Fulcio extensions record the OIDC issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerExtension {
    /// Both, as Fulcio writes them today (cosign 2.6 reads only V1 for its identity
    /// policy; sigstore-go and this crate prefer V2).
    Both,
    /// 1.3.6.1.4.1.57264.1.8, a DER UTF8String.
    V2,
    /// 1.3.6.1.4.1.57264.1.1, the raw string (older Fulcio).
    V1,
    /// Neither.
    None,
}

/// The leaf's extended key usage extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafUsage {
    /// Code signing, as Fulcio issues.
    CodeSigning,
    /// Another purpose only (TLS server authentication).
    ServerAuth,
    /// No extended key usage extension (Go's x509 then allows any usage; Fulcio never
    /// issues such a leaf).
    Unrestricted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// How one signature's leaf certificate and log entry are made.
#[derive(Debug, Clone)]
pub struct LeafOptions {
    pub subject: Subject,
    pub issuer: String,
    pub issuer_extension: IssuerExtension,
    pub usage: LeafUsage,
    pub curve: Curve,
    /// Seconds since the epoch; the leaf is valid for [`LEAF_LIFETIME`] from then.
    pub not_before: u64,
    /// The log's `integratedTime`.
    pub integrated_time: u64,
    pub log_index: i64,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            subject: Subject::Email(DEFAULT_EMAIL.to_string()),
            issuer: DEFAULT_ISSUER.to_string(),
            issuer_extension: IssuerExtension::Both,
            usage: LeafUsage::CodeSigning,
            curve: Curve::P256,
            not_before: T0,
            integrated_time: T0 + 60,
            log_index: 42,
        }
    }
}

/// How the test Fulcio's intermediate is made.
#[derive(Debug, Clone, Copy)]
pub struct CaOptions {
    /// Whether its basic constraints say it is a CA.
    pub intermediate_is_ca: bool,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            intermediate_is_ca: true,
        }
    }
}

/// One signature layer as cosign pushes it.
#[derive(Debug, Clone)]
pub struct SignedLayer {
    /// The layer's bytes.
    pub payload: Vec<u8>,
    /// The `dev.cosignproject.cosign/signature` annotation.
    pub signature_b64: String,
    /// Every annotation of the layer: signature, certificate, chain, bundle.
    pub annotations: BTreeMap<String, String>,
}

/// A test Fulcio and Rekor, with fresh keys each time.
pub struct TestSigstore {
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
    rekor: KeyPair,
}

impl Default for TestSigstore {
    fn default() -> Self {
        TestSigstore::new()
    }
}

impl TestSigstore {
    pub fn new() -> TestSigstore {
        TestSigstore::with_ca(CaOptions::default())
    }

    pub fn with_ca(options: CaOptions) -> TestSigstore {
        let mut root = ca_params(
            "wasm-image test Fulcio root",
            IsCa::Ca(BasicConstraints::Unconstrained),
        );
        root.extended_key_usages = Vec::new();
        let root = CertifiedIssuer::self_signed(root, key(Curve::P384)).expect("root certificate");

        let intermediate_ca = if options.intermediate_is_ca {
            IsCa::Ca(BasicConstraints::Constrained(0))
        } else {
            IsCa::ExplicitNoCa
        };
        let intermediate = ca_params("wasm-image test Fulcio intermediate", intermediate_ca);
        let intermediate = CertifiedIssuer::signed_by(intermediate, key(Curve::P384), &root)
            .expect("intermediate certificate");
        TestSigstore {
            root,
            intermediate,
            rekor: key(Curve::P256),
        }
    }

    /// The root certificate, PEM: the Fulcio trust anchor.
    pub fn fulcio_root_pem(&self) -> String {
        pem::encode("CERTIFICATE", self.root.der())
    }

    /// The intermediate, then the root: the chain annotation.
    pub fn chain_pem(&self) -> String {
        pem::encode("CERTIFICATE", self.intermediate.der()) + &self.fulcio_root_pem()
    }

    /// The Rekor log key, PEM SubjectPublicKeyInfo.
    pub fn rekor_key_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.rekor.subject_public_key_info())
    }

    /// The log's ID: the hex SHA-256 of its key's DER SubjectPublicKeyInfo.
    pub fn log_id(&self) -> String {
        hex::encode(Sha256::digest(self.rekor.subject_public_key_info()))
    }

    /// Trust in this Fulcio and Rekor, for `identity`.
    pub fn trust(&self, identity: CertificateIdentity) -> KeylessTrust {
        KeylessTrust::from_pem(
            self.fulcio_root_pem().as_bytes(),
            self.rekor_key_pem().as_bytes(),
            identity,
        )
        .expect("the test Sigstore's own PEM")
    }

    /// A cosign signature layer for the image `manifest_digest` in `repository`.
    pub fn sign_image(
        &self,
        manifest_digest: &str,
        repository: &str,
        options: &LeafOptions,
    ) -> SignedLayer {
        self.sign_payload(
            &simple_signing_payload(repository, manifest_digest),
            options,
        )
    }

    /// A cosign signature layer over any payload: a fresh leaf, the signature, the bundle.
    pub fn sign_payload(&self, payload: &[u8], options: &LeafOptions) -> SignedLayer {
        self.sign_payload_logging(payload, options, |_entry| {})
    }

    /// Like [`TestSigstore::sign_payload`], with the log entry changed by `edit_entry`
    /// before the log signs it: a log vouching for an entry that does not match the layer.
    pub fn sign_payload_logging(
        &self,
        payload: &[u8],
        options: &LeafOptions,
        edit_entry: impl FnOnce(&mut serde_json::Value),
    ) -> SignedLayer {
        let leaf_key = key(options.curve);
        let leaf = leaf_params(options)
            .signed_by(&leaf_key, &self.intermediate)
            .expect("leaf certificate");
        let leaf_pem = pem::encode("CERTIFICATE", leaf.der());
        let signature = sign_as_cosign(&leaf_key, options.curve, payload);
        let signature_b64 = base64::engine::general_purpose::STANDARD.encode(&signature);
        let bundle = self.bundle(payload, &signature_b64, &leaf_pem, options, edit_entry);
        let annotations = BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_string(), signature_b64.clone()),
            (annotations::COSIGN_CERTIFICATE.to_string(), leaf_pem),
            (annotations::COSIGN_CHAIN.to_string(), self.chain_pem()),
            (annotations::COSIGN_BUNDLE.to_string(), bundle),
        ]);
        SignedLayer {
            payload: payload.to_vec(),
            signature_b64,
            annotations,
        }
    }

    /// The Rekor bundle cosign attaches: a hashedrekord v0.0.1 entry, base64, and the
    /// log's SignedEntryTimestamp over the canonical JSON of the payload fields.
    fn bundle(
        &self,
        payload: &[u8],
        signature_b64: &str,
        leaf_pem: &str,
        options: &LeafOptions,
        edit_entry: impl FnOnce(&mut serde_json::Value),
    ) -> String {
        let base64 = &base64::engine::general_purpose::STANDARD;
        let mut entry = serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(payload))}},
                "signature": {
                    "content": signature_b64,
                    "publicKey": {"content": base64.encode(leaf_pem)},
                },
            },
        });
        edit_entry(&mut entry);
        let body = base64.encode(entry.to_string());
        let log_id = self.log_id();
        // RFC 8785 for these values: members sorted by name, no white space.
        let canonical = format!(
            "{{\"body\":\"{body}\",\"integratedTime\":{},\"logID\":\"{log_id}\",\"logIndex\":{}}}",
            options.integrated_time, options.log_index
        );
        let set = self.rekor.sign(canonical.as_bytes()).expect("SET");
        serde_json::json!({
            "SignedEntryTimestamp": base64.encode(set),
            "Payload": {
                "body": body,
                "integratedTime": options.integrated_time,
                "logIndex": options.log_index,
                "logID": log_id,
            },
        })
        .to_string()
    }
}

/// A `cosign` command kept offline: nothing inherited from the environment but PATH, and
/// its home, Docker config and TUF root under `home` (created), so it finds no
/// credentials and no Sigstore root to refresh. Add the arguments and the rest of the
/// environment (`COSIGN_PASSWORD`, `SIGSTORE_ROOT_FILE`, …).
pub fn cosign_offline(cosign: &Path, home: &Path) -> Command {
    std::fs::create_dir_all(home).expect("cosign's home");
    let mut command = Command::new(cosign);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DOCKER_CONFIG", home)
        .env("TUF_ROOT", home.join("tuf"));
    command
}

/// The simple-signing payload cosign signs for an image.
pub fn simple_signing_payload(repository: &str, manifest_digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// The identity [`LeafOptions::default`] signs as, matched exactly.
pub fn default_identity() -> CertificateIdentity {
    CertificateIdentity {
        issuer: IdentityMatch::Exact(DEFAULT_ISSUER.to_string()),
        subject: IdentityMatch::Exact(DEFAULT_EMAIL.to_string()),
    }
}

/// The payload signature as cosign makes it: ECDSA over SHA-256 whatever the curve (cosign
/// 2.6 verifies a P-384 leaf's signature with SHA-256 too).
fn sign_as_cosign(key: &KeyPair, curve: Curve, payload: &[u8]) -> Vec<u8> {
    match curve {
        Curve::P256 => key.sign(payload).expect("payload signature"),
        Curve::P384 => {
            use p384::ecdsa::signature::hazmat::PrehashSigner;
            use p384::pkcs8::DecodePrivateKey;
            let signing_key = p384::ecdsa::SigningKey::from_pkcs8_der(key.serialized_der())
                .expect("the P-384 key rcgen made");
            let signature: p384::ecdsa::Signature = signing_key
                .sign_prehash(&Sha256::digest(payload))
                .expect("payload signature");
            signature.to_der().as_bytes().to_vec()
        }
    }
}

fn key(curve: Curve) -> KeyPair {
    let algorithm = match curve {
        Curve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    };
    KeyPair::generate_for(algorithm).expect("ECDSA key generation")
}

/// Validity from `not_before` to `not_after`, in seconds since the epoch.
fn set_validity(params: &mut CertificateParams, not_before: u64, not_after: u64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(not_before);
    params.not_after = epoch + Duration::from_secs(not_after);
}

fn ca_params(common_name: &str, is_ca: IsCa) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "wasm-image tests");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = is_ca;
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Fulcio's intermediate restricts itself to code signing.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    set_validity(&mut params, T0 - 365 * 86_400, T0 + 10 * 365 * 86_400);
    params
}

fn leaf_params(options: &LeafOptions) -> CertificateParams {
    let mut params = CertificateParams::default();
    // Fulcio leaves have an empty subject; the identity is in the (then critical) SAN.
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![match &options.subject {
        Subject::Email(email) => SanType::Rfc822Name(email.clone().try_into().expect("email")),
        Subject::Uri(uri) => SanType::URI(uri.clone().try_into().expect("URI")),
    }];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match options.usage {
        LeafUsage::CodeSigning => vec![ExtendedKeyUsagePurpose::CodeSigning],
        LeafUsage::ServerAuth => vec![ExtendedKeyUsagePurpose::ServerAuth],
        LeafUsage::Unrestricted => vec![],
    };
    let v2 = || {
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
            der_utf8_string(&options.issuer),
        )
    };
    let v1 = || {
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
            options.issuer.as_bytes().to_vec(),
        )
    };
    params.custom_extensions = match options.issuer_extension {
        IssuerExtension::Both => vec![v1(), v2()],
        IssuerExtension::V2 => vec![v2()],
        IssuerExtension::V1 => vec![v1()],
        IssuerExtension::None => vec![],
    };
    set_validity(
        &mut params,
        options.not_before,
        options.not_before + LEAF_LIFETIME,
    );
    params
}

fn der_utf8_string(value: &str) -> Vec<u8> {
    use x509_cert::der::Encode;
    x509_cert::der::asn1::Utf8StringRef::new(value)
        .and_then(|s| s.to_der())
        .expect("issuer as a DER UTF8String")
}
