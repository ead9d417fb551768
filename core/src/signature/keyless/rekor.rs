//! The Rekor bundle cosign attaches to a keyless signature (annotation
//! `dev.sigstore.cosign/bundle`): the transparency log's signed promise (the
//! SignedEntryTimestamp, SET) that it logged an entry at `integratedTime`, checked offline
//! as cosign's `VerifyBundle` does.
//!
//! ```text
//! {"SignedEntryTimestamp": base64 ECDSA signature,
//!  "Payload": {"body": base64 entry, "integratedTime": s, "logIndex": n, "logID": hex}}
//! ```
//!
//! The SET signs the RFC 8785 canonical JSON of `Payload` (keys sorted, no spaces) with
//! SHA-256; `logID` is the hex SHA-256 of the log key's DER SubjectPublicKeyInfo; the body
//! is a `hashedrekord` v0.0.1 entry naming the payload's digest, the signature and the
//! signing certificate.

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::chain::ParsedCert;
use super::public_key::{Hash, PublicKey};
use super::rejected;
use crate::error::{quoted, Result, QUOTED_CHARS};
use crate::signature::pem;

/// Largest integer RFC 8785 writes in plain decimal (it formats numbers as doubles).
const MAX_CANONICAL_INTEGER: i64 = 1 << 53;

/// The bundle as cosign writes it (Go struct `bundle.RekorBundle`; unknown fields are
/// ignored there too, and are not covered by the SET).
#[derive(Debug, Deserialize)]
pub(super) struct Bundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: BundlePayload,
}

#[derive(Debug, Deserialize)]
struct BundlePayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// A `hashedrekord` v0.0.1 entry, the kind cosign logs for a signature of a blob.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    spec: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct HashedRekordSpec {
    data: HashedRekordData,
    signature: HashedRekordSignature,
}

#[derive(Debug, Deserialize)]
struct HashedRekordData {
    hash: HashedRekordHash,
}

#[derive(Debug, Deserialize)]
struct HashedRekordHash {
    algorithm: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct HashedRekordSignature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: HashedRekordPublicKey,
}

#[derive(Debug, Deserialize)]
struct HashedRekordPublicKey {
    content: String,
}

impl Bundle {
    pub(super) fn parse(json: &str) -> Result<Bundle> {
        let bundle: Bundle = serde_json::from_str(json).map_err(|e| {
            rejected(format!(
                "the Rekor bundle is not the JSON cosign writes: {}",
                quoted(&e.to_string(), QUOTED_CHARS)
            ))
        })?;
        for (name, value) in [
            ("integratedTime", bundle.payload.integrated_time),
            ("logIndex", bundle.payload.log_index),
        ] {
            if !(0..=MAX_CANONICAL_INTEGER).contains(&value) {
                return Err(rejected(format!(
                    "the Rekor bundle's {name} {value} is out of range"
                )));
            }
        }
        Ok(bundle)
    }

    /// When the log says it recorded the entry, in seconds since the epoch. Trust it only
    /// once [`Bundle::verify_set`] has passed.
    pub(super) fn integrated_time(&self) -> u64 {
        // Non-negative: parse() checked.
        self.payload.integrated_time.unsigned_abs()
    }

    /// The SET verifies with the trusted log key whose ID the bundle names.
    pub(super) fn verify_set(&self, rekor_keys: &[Vec<u8>]) -> Result<()> {
        let log_id = &self.payload.log_id;
        let key_der = rekor_keys
            .iter()
            .find(|der| hex::encode(Sha256::digest(der)).eq_ignore_ascii_case(log_id))
            .ok_or_else(|| {
                rejected(format!(
                    "the Rekor bundle's logID {} names no trusted Rekor key",
                    quoted(log_id, QUOTED_CHARS)
                ))
            })?;
        let key = PublicKey::from_spki_der(key_der).ok_or_else(|| {
            rejected(
                "the trusted Rekor key the bundle names is not an ECDSA P-256 or P-384 \
                 SubjectPublicKeyInfo",
            )
        })?;
        let set = base64::engine::general_purpose::STANDARD
            .decode(&self.signed_entry_timestamp)
            .map_err(|_| rejected("the Rekor bundle's SignedEntryTimestamp is not base64"))?;
        if !key.verifies(&self.canonical_payload(), Hash::Sha256, &set) {
            return Err(rejected(format!(
                "the Rekor bundle's SignedEntryTimestamp does not verify with the Rekor key \
                 of logID {}",
                quoted(log_id, QUOTED_CHARS)
            )));
        }
        Ok(())
    }

    /// RFC 8785 canonical JSON of the payload: its four members in sorted order.
    fn canonical_payload(&self) -> Vec<u8> {
        let p = &self.payload;
        let mut out = String::from("{\"body\":");
        push_canonical_string(&mut out, &p.body);
        out.push_str(&format!(
            ",\"integratedTime\":{},\"logID\":",
            p.integrated_time
        ));
        push_canonical_string(&mut out, &p.log_id);
        out.push_str(&format!(",\"logIndex\":{}}}", p.log_index));
        out.into_bytes()
    }

    /// The logged entry is a `hashedrekord` of this payload, this signature and this
    /// certificate: otherwise the SET vouches for some other signature.
    pub(super) fn verify_entry(
        &self,
        payload: &[u8],
        signature: &[u8],
        leaf: &ParsedCert,
    ) -> Result<()> {
        let body = base64::engine::general_purpose::STANDARD
            .decode(&self.payload.body)
            .map_err(|_| rejected("the Rekor entry body is not base64"))?;
        let entry: Entry = serde_json::from_slice(&body)
            .map_err(|_| rejected("the Rekor entry body is not a JSON log entry"))?;
        if entry.kind != "hashedrekord" || entry.api_version != "0.0.1" {
            return Err(rejected(format!(
                "the Rekor entry is {} v{}; hashedrekord v0.0.1 is supported",
                quoted(&entry.kind, QUOTED_CHARS),
                quoted(&entry.api_version, QUOTED_CHARS)
            )));
        }
        let spec: HashedRekordSpec = serde_json::from_value(entry.spec)
            .map_err(|_| rejected("the Rekor entry's hashedrekord spec is malformed"))?;

        let hash = &spec.data.hash;
        let payload_sha256 = hex::encode(Sha256::digest(payload));
        if hash.algorithm != "sha256" || !hash.value.eq_ignore_ascii_case(&payload_sha256) {
            return Err(rejected(format!(
                "the Rekor entry names payload digest {}:{}, the payload's is sha256:{payload_sha256}",
                quoted(&hash.algorithm, QUOTED_CHARS),
                quoted(&hash.value, QUOTED_CHARS)
            )));
        }

        let logged_signature = base64::engine::general_purpose::STANDARD
            .decode(&spec.signature.content)
            .map_err(|_| rejected("the Rekor entry's signature is not base64"))?;
        if logged_signature != signature {
            return Err(rejected(
                "the Rekor entry is for another signature than this layer's",
            ));
        }

        if !names_certificate(&spec.signature.public_key.content, leaf) {
            return Err(rejected(
                "the Rekor entry is for another certificate than this layer's",
            ));
        }
        Ok(())
    }
}

/// Whether the entry's `publicKey.content` (base64 of PEM) is the signing certificate,
/// or, in the older form, its public key.
fn names_certificate(content: &str, leaf: &ParsedCert) -> bool {
    let Ok(pem_text) = base64::engine::general_purpose::STANDARD.decode(content) else {
        return false;
    };
    let Ok(blocks) = pem::parse_all(&pem_text) else {
        return false;
    };
    let [block] = blocks.as_slice() else {
        return false;
    };
    match block.label.as_str() {
        "CERTIFICATE" => block.der == leaf.der,
        "PUBLIC KEY" => {
            let spki =
                x509_cert::der::Encode::to_der(&leaf.cert.tbs_certificate.subject_public_key_info);
            spki.is_ok_and(|spki| spki == block.der)
        }
        _ => false,
    }
}

/// A JSON string as RFC 8785 writes it: only `"`, `\` and control characters escaped,
/// with the short escapes where JSON has them and lower-case `\u00xx` otherwise.
fn push_canonical_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_covers_the_payload_in_canonical_json() {
        // Members reordered, spaced, with a field the SET does not cover: the canonical
        // form is the four members, sorted, compact.
        let bundle = Bundle::parse(
            r#"{ "Payload": { "logIndex": 7, "logID": "ab", "integratedTime": 1700000000,
                 "body": "eyJ9", "extra": true }, "SignedEntryTimestamp": "" }"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(bundle.canonical_payload()).unwrap(),
            r#"{"body":"eyJ9","integratedTime":1700000000,"logID":"ab","logIndex":7}"#
        );
    }

    #[test]
    fn canonical_strings_escape_only_what_rfc_8785_escapes() {
        let mut out = String::new();
        push_canonical_string(&mut out, "a\"b\\c\n\u{1}é/<>&€");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001é/<>&€\"");
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        for (time, index) in [("-1", "0"), ("0", "9007199254740993"), ("1.5", "0")] {
            let json = format!(
                r#"{{"SignedEntryTimestamp":"","Payload":{{"body":"","integratedTime":{time},
                   "logIndex":{index},"logID":""}}}}"#
            );
            let err = Bundle::parse(&json).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::SignatureInvalid, "{json}");
        }
    }
}
