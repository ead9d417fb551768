//! The certificate path of a keyless signature: from the Fulcio leaf, through the
//! intermediates the signature layer carries, to a root the caller trusts, checked the way
//! Go's `x509.Verify` checks it for cosign (signatures up the path, CA basic constraints,
//! path lengths, the code-signing EKU and its nesting, validity at one instant).
//!
//! The instant is the transparency log's `integratedTime`, not now: Fulcio certificates
//! live ten minutes, and the log proves the signature was made while the leaf was valid.

use std::time::Duration;

use x509_cert::certificate::Certificate;
use x509_cert::der::asn1::AnyRef;
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::{DateTime, Decode, Encode, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::public_key::{Hash, PublicKey};
use super::rejected;
use crate::error::{quoted, Result, QUOTED_CHARS};

/// Longest path from a leaf to a root, certificates counted; Fulcio's is three.
const MAX_PATH_LEN: usize = 8;
/// Most issuer signatures one path search checks, so that a chain of many certificates
/// sharing one name cannot make the search try every ordering of them.
const MAX_SIGNATURE_CHECKS: usize = 64;

const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// A certificate with the DER it was parsed from, and the parts a path check compares.
#[derive(Debug, Clone)]
pub(super) struct ParsedCert {
    pub(super) der: Vec<u8>,
    pub(super) cert: Certificate,
    /// The to-be-signed part exactly as it was encoded, for checking the issuer's signature.
    tbs_der: Vec<u8>,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
}

impl ParsedCert {
    /// `None` when `der` is not one whole X.509 certificate.
    pub(super) fn parse(der: &[u8]) -> Option<ParsedCert> {
        let cert = Certificate::from_der(der).ok()?;
        // The strict DER decoder accepted it, so the TBS element's header re-encodes to
        // the bytes the issuer signed and its content is sliced unchanged.
        let outer = AnyRef::from_der(der).ok()?;
        let mut reader = SliceReader::new(outer.value()).ok()?;
        let tbs_der = reader.decode::<AnyRef<'_>>().ok()?.to_der().ok()?;
        Some(ParsedCert {
            der: der.to_vec(),
            subject_der: cert.tbs_certificate.subject.to_der().ok()?,
            issuer_der: cert.tbs_certificate.issuer.to_der().ok()?,
            cert,
            tbs_der,
        })
    }

    pub(super) fn public_key(&self) -> Option<PublicKey> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .ok()?;
        PublicKey::from_spki_der(&spki)
    }

    fn is_self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }

    /// The subject's name, fit to quote in a message.
    pub(super) fn name(&self) -> String {
        format!(
            "'{}'",
            quoted(&self.cert.tbs_certificate.subject.to_string(), QUOTED_CHARS)
        )
    }
}

/// Checks that `leaf` is a code-signing certificate valid at `at` (seconds since the
/// epoch) that chains to one of `trusted` through certificates of `chain` or `trusted`.
/// Only a self-issued certificate of `trusted` ends a path: a trusted intermediate still
/// needs its root, as in cosign's pools of roots and intermediates.
pub(super) fn verify_path(
    leaf: &ParsedCert,
    chain: &[ParsedCert],
    trusted: &[ParsedCert],
    at: u64,
) -> Result<()> {
    check_extensions(leaf)?;
    check_valid_at(leaf, at, "the signing certificate")?;
    if !extended_key_usages(leaf)?.contains(&CODE_SIGNING) {
        return Err(rejected(
            "the signing certificate lacks the code-signing extended key usage",
        ));
    }
    if let Some(usage) = get::<KeyUsage>(leaf)? {
        if !usage.digital_signature() {
            return Err(rejected(
                "the signing certificate's key usage does not allow digital signatures",
            ));
        }
    }
    let mut search = PathSearch {
        chain,
        trusted,
        at,
        signature_checks: 0,
        path: vec![leaf],
    };
    search.extend()
}

struct PathSearch<'a> {
    chain: &'a [ParsedCert],
    trusted: &'a [ParsedCert],
    at: u64,
    signature_checks: usize,
    /// The path so far, leaf first.
    path: Vec<&'a ParsedCert>,
}

impl<'a> PathSearch<'a> {
    /// Depth-first: each certificate that could have issued the last one on the path,
    /// trusted ones first. The first refusal met is the one reported, since it is the
    /// one nearest the leaf along the most promising path.
    fn extend(&mut self) -> Result<()> {
        let current = *self.path.last().expect("the path starts with the leaf");
        if self.path.len() >= MAX_PATH_LEN {
            return Err(rejected(format!(
                "the certificate chain is longer than {MAX_PATH_LEN} certificates"
            )));
        }
        let mut first_refusal = None;
        for issuer in self.trusted.iter().chain(self.chain) {
            if issuer.subject_der != current.issuer_der
                || self.path.iter().any(|on_path| on_path.der == issuer.der)
            {
                continue;
            }
            let checked = self.check_issuer(issuer, current).and_then(|()| {
                if issuer.is_self_issued() && self.is_trusted(issuer) {
                    return Ok(());
                }
                self.path.push(issuer);
                let extended = self.extend();
                self.path.pop();
                extended
            });
            match checked {
                Ok(()) => return Ok(()),
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        Err(first_refusal.unwrap_or_else(|| {
            rejected(format!(
                "the certificate chain does not lead to a trusted Fulcio root: no trusted or \
                 chain certificate is named {}, the issuer of {}",
                issuer_name(current),
                current.name()
            ))
        }))
    }

    fn is_trusted(&self, cert: &ParsedCert) -> bool {
        self.trusted.iter().any(|t| t.der == cert.der)
    }

    /// Whether `issuer` may have issued `subject`, and did.
    fn check_issuer(&mut self, issuer: &ParsedCert, subject: &ParsedCert) -> Result<()> {
        self.signature_checks += 1;
        if self.signature_checks > MAX_SIGNATURE_CHECKS {
            return Err(rejected(format!(
                "the certificate chain needs more than {MAX_SIGNATURE_CHECKS} signature checks"
            )));
        }
        check_signed_by(subject, issuer)?;
        check_extensions(issuer)?;
        check_valid_at(
            issuer,
            self.at,
            &format!("CA certificate {}", issuer.name()),
        )?;
        let constraints = get::<BasicConstraints>(issuer)?;
        if !constraints.as_ref().is_some_and(|c| c.ca) {
            return Err(rejected(format!(
                "certificate {} is not a CA (basic constraints) but issued {}",
                issuer.name(),
                subject.name()
            )));
        }
        // CA certificates between this issuer and the leaf.
        let below = self.path.len() - 1;
        if let Some(limit) = constraints.and_then(|c| c.path_len_constraint) {
            if below > usize::from(limit) {
                return Err(rejected(format!(
                    "CA certificate {} allows {limit} intermediate(s) below it, the chain has {below}",
                    issuer.name()
                )));
            }
        }
        if let Some(usage) = get::<KeyUsage>(issuer)? {
            if !usage.key_cert_sign() {
                return Err(rejected(format!(
                    "CA certificate {}'s key usage does not allow signing certificates",
                    issuer.name()
                )));
            }
        }
        // As Go does: a CA that restricts its extended key usages must allow code signing.
        if let Some(usages) = get::<ExtendedKeyUsage>(issuer)? {
            if !usages.0.contains(&CODE_SIGNING) && !usages.0.contains(&ANY_EXTENDED_KEY_USAGE) {
                return Err(rejected(format!(
                    "CA certificate {} is not allowed to issue code-signing certificates \
                     (extended key usage)",
                    issuer.name()
                )));
            }
        }
        Ok(())
    }
}

fn issuer_name(cert: &ParsedCert) -> String {
    format!(
        "'{}'",
        quoted(&cert.cert.tbs_certificate.issuer.to_string(), QUOTED_CHARS)
    )
}

fn check_signed_by(subject: &ParsedCert, issuer: &ParsedCert) -> Result<()> {
    let algorithm = &subject.cert.signature_algorithm;
    if algorithm != &subject.cert.tbs_certificate.signature {
        return Err(rejected(format!(
            "certificate {} names two different signature algorithms",
            subject.name()
        )));
    }
    let hash = Hash::of_ecdsa_algorithm(&algorithm.oid).ok_or_else(|| {
        rejected(format!(
            "certificate {} is signed with an unsupported algorithm ({}); ECDSA is supported",
            subject.name(),
            algorithm.oid
        ))
    })?;
    let key = issuer.public_key().ok_or_else(|| {
        rejected(format!(
            "CA certificate {} has an unsupported public key (ECDSA P-256 and P-384 are supported)",
            issuer.name()
        ))
    })?;
    let signature = subject.cert.signature.as_bytes().unwrap_or_default();
    if !key.verifies(&subject.tbs_der, hash, signature) {
        return Err(rejected(format!(
            "certificate {}'s signature does not verify with the key of {}",
            subject.name(),
            issuer.name()
        )));
    }
    Ok(())
}

fn check_valid_at(cert: &ParsedCert, at: u64, what: &str) -> Result<()> {
    let validity = &cert.cert.tbs_certificate.validity;
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if at < not_before || at > not_after {
        let when = DateTime::from_unix_duration(Duration::from_secs(at))
            .map_or_else(|_| format!("{at} s after the epoch"), |t| t.to_string());
        return Err(rejected(format!(
            "{what} was not valid at the log's integratedTime {when} (valid from {} to {})",
            validity.not_before, validity.not_after
        )));
    }
    Ok(())
}

/// Extensions must each appear once, and a critical one must be one this check reads
/// (Go refuses unhandled critical extensions too).
fn check_extensions(cert: &ParsedCert) -> Result<()> {
    let handled = [
        BasicConstraints::OID,
        KeyUsage::OID,
        ExtendedKeyUsage::OID,
        SubjectAltName::OID,
    ];
    let extensions = cert
        .cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or(&[]);
    for (i, extension) in extensions.iter().enumerate() {
        if extensions[..i]
            .iter()
            .any(|e| e.extn_id == extension.extn_id)
        {
            return Err(rejected(format!(
                "certificate {} has extension {} twice",
                cert.name(),
                extension.extn_id
            )));
        }
        if extension.critical && !handled.contains(&extension.extn_id) {
            return Err(rejected(format!(
                "certificate {} has an unsupported critical extension {}",
                cert.name(),
                extension.extn_id
            )));
        }
    }
    Ok(())
}

fn extended_key_usages(cert: &ParsedCert) -> Result<Vec<ObjectIdentifier>> {
    Ok(get::<ExtendedKeyUsage>(cert)?
        .map(|u| u.0)
        .unwrap_or_default())
}

/// One extension, decoded; a malformed one refuses the certificate.
pub(super) fn get<'a, T>(cert: &'a ParsedCert) -> Result<Option<T>>
where
    T: Decode<'a> + AssociatedOid,
{
    cert.cert
        .tbs_certificate
        .get::<T>()
        .map(|found| found.map(|(_critical, value)| value))
        .map_err(|_| {
            rejected(format!(
                "certificate {} has a malformed or repeated extension {}",
                cert.name(),
                T::OID
            ))
        })
}
