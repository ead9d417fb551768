//! Keyless cosign signatures, verified offline against a test Fulcio and Rekor built in
//! memory (signature::keyless_testkit): what verifies, and each check refusing what it
//! must, with SIGNATURE_INVALID and a message naming the check.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use wasm_image::media_types::annotations;
use wasm_image::signature::keyless::{verify, CertificateIdentity, IdentityMatch, KeylessTrust};
use wasm_image::signature::keyless_testkit::{
    cosign_offline, default_identity, simple_signing_payload, CaOptions, Curve, IssuerExtension,
    LeafOptions, LeafUsage, SignedLayer, Subject, TestSigstore, DEFAULT_EMAIL, DEFAULT_ISSUER,
    LEAF_LIFETIME, T0,
};
use wasm_image::store::conformance;
use wasm_image::ErrorKind;

const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
const REPOSITORY: &str = "127.0.0.1:5000/plugins/filter";

fn sign(sigstore: &TestSigstore, options: &LeafOptions) -> SignedLayer {
    sigstore.sign_image(DIGEST, REPOSITORY, options)
}

fn check(trust: &KeylessTrust, layer: &SignedLayer) -> wasm_image::Result<()> {
    verify(
        trust,
        &layer.payload,
        &layer.signature_b64,
        &layer.annotations,
    )
}

/// Asserts a SIGNATURE_INVALID refusal whose message contains `expected`.
#[track_caller]
fn assert_refused(result: wasm_image::Result<()>, expected: &str) {
    let err = result.expect_err("the signature must be refused");
    assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "{err}");
    assert!(
        err.message().contains(expected),
        "expected a message containing {expected:?}, got: {err}"
    );
}

fn identity(issuer: IdentityMatch, subject: IdentityMatch) -> CertificateIdentity {
    CertificateIdentity { issuer, subject }
}

fn exact(value: &str) -> IdentityMatch {
    IdentityMatch::Exact(value.to_string())
}

#[test]
fn a_signature_made_as_cosign_makes_it_verifies() {
    let sigstore = TestSigstore::new();
    let layer = sign(&sigstore, &LeafOptions::default());
    check(&sigstore.trust(default_identity()), &layer).unwrap();
    let v2_only = LeafOptions {
        issuer_extension: IssuerExtension::V2,
        ..LeafOptions::default()
    };
    check(
        &sigstore.trust(default_identity()),
        &sign(&sigstore, &v2_only),
    )
    .unwrap();

    // The payload is the simple-signing document cosign signs.
    let payload: serde_json::Value = serde_json::from_slice(&layer.payload).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        DIGEST
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        REPOSITORY
    );
}

#[test]
fn uri_subjects_the_v1_issuer_extension_and_p384_leaves_verify() {
    let sigstore = TestSigstore::new();
    let workflow = "https://github.com/acme/filters/.github/workflows/release.yml@refs/tags/v1";
    let layer = sign(
        &sigstore,
        &LeafOptions {
            subject: Subject::Uri(workflow.to_string()),
            issuer: "https://token.actions.githubusercontent.com".to_string(),
            issuer_extension: IssuerExtension::V1,
            curve: Curve::P384,
            ..LeafOptions::default()
        },
    );
    let trust = sigstore.trust(identity(
        IdentityMatch::regex(r"https://token\.actions\.githubusercontent\.com").unwrap(),
        IdentityMatch::regex(r"https://github\.com/acme/.+@refs/tags/v[0-9]+").unwrap(),
    ));
    check(&trust, &layer).unwrap();
}

#[test]
fn the_leaf_is_judged_at_the_logs_time_across_its_ten_minutes() {
    let sigstore = TestSigstore::new();
    let trust = sigstore.trust(default_identity());
    for integrated_time in [T0, T0 + LEAF_LIFETIME] {
        let options = LeafOptions {
            integrated_time,
            ..LeafOptions::default()
        };
        check(&trust, &sign(&sigstore, &options)).unwrap();
    }
    for integrated_time in [T0 - 1, T0 + LEAF_LIFETIME + 1] {
        let options = LeafOptions {
            integrated_time,
            ..LeafOptions::default()
        };
        assert_refused(
            check(&trust, &sign(&sigstore, &options)),
            "was not valid at the log's integratedTime",
        );
    }
}

#[test]
fn a_wrong_identity_is_refused_exact_or_regex() {
    let sigstore = TestSigstore::new();
    let layer = sign(&sigstore, &LeafOptions::default());
    let cases = [
        (
            identity(
                exact("https://other-issuer.example.test"),
                exact(DEFAULT_EMAIL),
            ),
            "OIDC issuer",
        ),
        (
            identity(exact(DEFAULT_ISSUER), exact("someone-else@example.test")),
            "subject",
        ),
        (
            identity(
                IdentityMatch::regex(r"https://accounts\.google\.com").unwrap(),
                exact(DEFAULT_EMAIL),
            ),
            "OIDC issuer",
        ),
        (
            identity(
                exact(DEFAULT_ISSUER),
                IdentityMatch::regex(r".*@elsewhere\.test").unwrap(),
            ),
            "subject",
        ),
        // A pattern matching only part of the value does not match it.
        (
            identity(
                exact(DEFAULT_ISSUER),
                IdentityMatch::regex("signer").unwrap(),
            ),
            "subject",
        ),
        (
            identity(
                IdentityMatch::Regex(regex::Regex::new("issuer").unwrap()),
                exact(DEFAULT_EMAIL),
            ),
            "OIDC issuer",
        ),
    ];
    for (identity, expected) in cases {
        assert_refused(check(&sigstore.trust(identity), &layer), expected);
    }

    // The same patterns anchored to the whole value match.
    let whole = identity(
        IdentityMatch::Regex(regex::Regex::new(r"https://issuer\.example\.test").unwrap()),
        IdentityMatch::regex(r"[a-z]+@example\.test").unwrap(),
    );
    check(&sigstore.trust(whole), &layer).unwrap();
}

#[test]
fn a_leaf_without_the_oidc_issuer_extension_is_refused() {
    let sigstore = TestSigstore::new();
    let options = LeafOptions {
        issuer_extension: IssuerExtension::None,
        ..LeafOptions::default()
    };
    assert_refused(
        check(
            &sigstore.trust(default_identity()),
            &sign(&sigstore, &options),
        ),
        "no Fulcio OIDC issuer extension",
    );
}

#[test]
fn a_leaf_from_another_fulcio_is_refused() {
    let trusted = TestSigstore::new();
    let other = TestSigstore::new();
    let layer = sign(&other, &LeafOptions::default());
    // The other Fulcio's root is not trusted; its Rekor key is, so only the chain fails.
    let trust = KeylessTrust::from_pem(
        trusted.fulcio_root_pem().as_bytes(),
        other.rekor_key_pem().as_bytes(),
        default_identity(),
    )
    .unwrap();
    assert_refused(
        check(&trust, &layer),
        "signature does not verify with the key of",
    );

    // Without the chain annotation, no certificate issued the leaf at all.
    let mut bare = layer.clone();
    bare.annotations.remove(annotations::COSIGN_CHAIN);
    assert_refused(
        check(&trust, &bare),
        "does not lead to a trusted Fulcio root",
    );
}

#[test]
fn a_trusted_intermediate_needs_no_chain_annotation_but_still_needs_its_root() {
    let sigstore = TestSigstore::new();
    let mut layer = sign(&sigstore, &LeafOptions::default());
    layer.annotations.remove(annotations::COSIGN_CHAIN);
    let chain_pem = sigstore.chain_pem(); // intermediate, then root
    let with_root = KeylessTrust::from_pem(
        chain_pem.as_bytes(),
        sigstore.rekor_key_pem().as_bytes(),
        default_identity(),
    )
    .unwrap();
    check(&with_root, &layer).unwrap();

    let intermediate_only = chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    let without_root = KeylessTrust::from_pem(
        intermediate_only.as_bytes(),
        sigstore.rekor_key_pem().as_bytes(),
        default_identity(),
    )
    .unwrap();
    assert_refused(
        check(&without_root, &layer),
        "does not lead to a trusted Fulcio root",
    );
}

#[test]
fn ca_rules_are_enforced_up_the_chain() {
    let sigstore = TestSigstore::with_ca(CaOptions {
        intermediate_is_ca: false,
    });
    assert_refused(
        check(
            &sigstore.trust(default_identity()),
            &sign(&sigstore, &LeafOptions::default()),
        ),
        "is not a CA",
    );

    // Fulcio leaves are for code signing; one without the EKU is refused (stricter than
    // Go's x509, which lets a leaf with no EKU extension serve any purpose).
    let sigstore = TestSigstore::new();
    for usage in [LeafUsage::ServerAuth, LeafUsage::Unrestricted] {
        let options = LeafOptions {
            usage,
            ..LeafOptions::default()
        };
        assert_refused(
            check(
                &sigstore.trust(default_identity()),
                &sign(&sigstore, &options),
            ),
            "code-signing",
        );
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    let sigstore = TestSigstore::new();
    let mut layer = sign(&sigstore, &LeafOptions::default());
    let other_digest = DIGEST.replace("6c3c", "0000");
    layer.payload = String::from_utf8(layer.payload)
        .unwrap()
        .replace(DIGEST, &other_digest)
        .into_bytes();
    assert_refused(
        check(&sigstore.trust(default_identity()), &layer),
        "signature over the payload does not verify",
    );
}

#[test]
fn a_bundle_from_an_untrusted_log_is_refused() {
    let sigstore = TestSigstore::new();
    let other_log = TestSigstore::new();
    let layer = sign(&sigstore, &LeafOptions::default());
    let trust = KeylessTrust::from_pem(
        sigstore.fulcio_root_pem().as_bytes(),
        other_log.rekor_key_pem().as_bytes(),
        default_identity(),
    )
    .unwrap();
    assert_refused(check(&trust, &layer), "names no trusted Rekor key");

    // Claiming the trusted log's ID does not make another log's SET verify.
    let mut forged = layer.clone();
    let bundle = &forged.annotations[annotations::COSIGN_BUNDLE];
    let bundle = bundle.replace(&sigstore.log_id(), &other_log.log_id());
    forged
        .annotations
        .insert(annotations::COSIGN_BUNDLE.to_string(), bundle);
    assert_refused(
        check(&trust, &forged),
        "SignedEntryTimestamp does not verify",
    );
}

#[test]
fn an_edited_bundle_is_refused() {
    let sigstore = TestSigstore::new();
    let trust = sigstore.trust(default_identity());
    // Signed out of the leaf's lifetime, then the time moved back into it.
    let late = LeafOptions {
        integrated_time: T0 + 3600,
        ..LeafOptions::default()
    };
    let mut layer = sign(&sigstore, &late);
    let bundle = layer.annotations[annotations::COSIGN_BUNDLE].replace(
        &format!("\"integratedTime\":{}", T0 + 3600),
        &format!("\"integratedTime\":{}", T0 + 60),
    );
    layer
        .annotations
        .insert(annotations::COSIGN_BUNDLE.to_string(), bundle);
    assert_refused(
        check(&trust, &layer),
        "SignedEntryTimestamp does not verify",
    );
}

#[test]
fn a_bundle_for_another_signature_is_refused() {
    let sigstore = TestSigstore::new();
    let trust = sigstore.trust(default_identity());
    let first = sign(&sigstore, &LeafOptions::default());
    let second = sign(&sigstore, &LeafOptions::default());

    // Same payload, another signature (and certificate): its log entry is not ours.
    let mut swapped = first.clone();
    swapped.annotations.insert(
        annotations::COSIGN_BUNDLE.to_string(),
        second.annotations[annotations::COSIGN_BUNDLE].clone(),
    );
    assert_refused(check(&trust, &swapped), "another signature");

    // Another payload's entry names another digest.
    let other_image = sigstore.sign_image(
        DIGEST,
        "127.0.0.1:5000/plugins/other",
        &LeafOptions::default(),
    );
    let mut swapped = first.clone();
    swapped.annotations.insert(
        annotations::COSIGN_BUNDLE.to_string(),
        other_image.annotations[annotations::COSIGN_BUNDLE].clone(),
    );
    assert_refused(check(&trust, &swapped), "payload digest");
}

/// A change to a log entry before the log signs it.
type EntryEdit<'a> = Box<dyn FnOnce(&mut serde_json::Value) + 'a>;

#[test]
fn a_logged_entry_must_name_this_payload_signature_and_certificate() {
    let sigstore = TestSigstore::new();
    let trust = sigstore.trust(default_identity());
    let payload = simple_signing_payload(REPOSITORY, DIGEST);
    let options = LeafOptions::default();
    let other_leaf = sign(&sigstore, &options).annotations[annotations::COSIGN_CERTIFICATE].clone();
    let base64 = &base64::engine::general_purpose::STANDARD;

    // The log vouches for an entry, but not one for this layer.
    let cases: [(EntryEdit, &str); 7] = [
        (
            Box::new(|entry| {
                entry["spec"]["signature"]["publicKey"]["content"] =
                    base64.encode(&other_leaf).into()
            }),
            "another certificate",
        ),
        (
            Box::new(|entry| entry["spec"]["data"]["hash"]["algorithm"] = "sha512".into()),
            "payload digest",
        ),
        (
            Box::new(|entry| {
                entry["spec"]["data"]["hash"]["value"] = hex::encode([0u8; 32]).into()
            }),
            "payload digest",
        ),
        (
            Box::new(|entry| {
                entry["spec"]["signature"]["content"] = base64.encode(b"another").into()
            }),
            "another signature",
        ),
        (
            Box::new(|entry| entry["kind"] = "intoto".into()),
            "hashedrekord v0.0.1",
        ),
        (
            Box::new(|entry| entry["apiVersion"] = "0.0.2".into()),
            "hashedrekord v0.0.1",
        ),
        (
            Box::new(|entry| entry["spec"].as_object_mut().unwrap().clear()),
            "spec is malformed",
        ),
    ];
    for (edit, expected) in cases {
        let layer = sigstore.sign_payload_logging(&payload, &options, edit);
        assert_refused(check(&trust, &layer), expected);
    }

    // The older form names the signing key instead of the certificate: it verifies.
    let layer = sigstore.sign_payload_logging(&payload, &options, |entry| {
        let content = &mut entry["spec"]["signature"]["publicKey"]["content"];
        let certificate_pem = base64.decode(content.as_str().unwrap()).unwrap();
        *content = base64.encode(public_key_pem(&certificate_pem)).into();
    });
    check(&trust, &layer).unwrap();
}

/// The PEM SubjectPublicKeyInfo of a PEM certificate.
fn public_key_pem(certificate_pem: &[u8]) -> String {
    use x509_cert::der::{Decode, Encode};
    let text = std::str::from_utf8(certificate_pem).unwrap();
    let base64_text: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .unwrap();
    let certificate = x509_cert::Certificate::from_der(&der).unwrap();
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(spki)
    )
}

#[test]
fn missing_and_garbage_annotations_are_refused_without_panicking() {
    let sigstore = TestSigstore::new();
    let trust = sigstore.trust(default_identity());
    let layer = sign(&sigstore, &LeafOptions::default());
    let garbage = [
        "",
        "garbage",
        "-----BEGIN CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "{}",
        "{\"SignedEntryTimestamp\":\"\",\"Payload\":{}}",
        "{\"SignedEntryTimestamp\":\"!\",\"Payload\":{\"body\":\"!\",\"integratedTime\":1,\"logIndex\":1,\"logID\":\"\"}}",
        "[1,2,3]",
        "null",
        "\u{0}\u{1b}[31m",
    ];
    for key in [
        annotations::COSIGN_CERTIFICATE,
        annotations::COSIGN_CHAIN,
        annotations::COSIGN_BUNDLE,
    ] {
        let mut missing = layer.clone();
        missing.annotations.remove(key);
        let result = check(&trust, &missing);
        if key == annotations::COSIGN_CHAIN {
            // The chain may come from the trust instead; here it does not.
            assert_refused(result, "does not lead to a trusted Fulcio root");
        } else {
            assert_refused(result, key);
        }
        for value in garbage {
            let mut bad = layer.clone();
            bad.annotations.insert(key.to_string(), value.to_string());
            let err = check(&trust, &bad).expect_err(value);
            assert_eq!(
                err.kind(),
                ErrorKind::SignatureInvalid,
                "{key}={value:?}: {err}"
            );
            assert!(!err.message().contains('\u{1b}'), "{err}");
        }
    }
    let mut long_chain = layer.clone();
    long_chain.annotations.insert(
        annotations::COSIGN_CHAIN.to_string(),
        sigstore.chain_pem().repeat(6),
    );
    assert_refused(check(&trust, &long_chain), "more than 10");
    for signature in ["", "not base64!", "AAAA", &"A".repeat(4096)] {
        let result = verify(&trust, &layer.payload, signature, &layer.annotations);
        assert_refused(result, "signature");
    }
    let result = verify(&trust, b"", &layer.signature_b64, &layer.annotations);
    assert_refused(result, "signature over the payload");
    let result = verify(
        &trust,
        &layer.payload,
        &layer.signature_b64,
        &BTreeMap::new(),
    );
    assert_refused(result, annotations::COSIGN_CERTIFICATE);
}

#[test]
fn every_corrupted_byte_of_the_certificate_or_bundle_is_refused() {
    let sigstore = TestSigstore::new();
    let trust = sigstore.trust(default_identity());
    let layer = sign(&sigstore, &LeafOptions::default());

    let leaf_pem = &layer.annotations[annotations::COSIGN_CERTIFICATE];
    let base64_body: String = leaf_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let leaf_der = base64::engine::general_purpose::STANDARD
        .decode(base64_body)
        .unwrap();
    for i in 0..leaf_der.len() {
        let mut der = leaf_der.clone();
        der[i] ^= 0x01;
        let text = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let mut bad = layer.clone();
        bad.annotations
            .insert(annotations::COSIGN_CERTIFICATE.to_string(), text);
        let err = check(&trust, &bad).expect_err("a corrupted certificate");
        assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "byte {i}: {err}");
    }

    let bundle = layer.annotations[annotations::COSIGN_BUNDLE].as_bytes();
    for i in 0..bundle.len() {
        let mut bytes = bundle.to_vec();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let mut bad = layer.clone();
        bad.annotations.insert(
            annotations::COSIGN_BUNDLE.to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        );
        // A change in white space or in a member the SET does not cover would still
        // verify; the bundle cosign writes is compact and has none.
        let err = check(&trust, &bad).expect_err("a corrupted bundle");
        assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "byte {i}: {err}");
    }
}

#[test]
fn trust_material_must_be_pem_of_the_right_kind() {
    let sigstore = TestSigstore::new();
    let root = sigstore.fulcio_root_pem();
    let rekor = sigstore.rekor_key_pem();
    let cases: [(&str, &str); 6] = [
        ("", &rekor),
        (&root, ""),
        (&rekor, &rekor),
        (&root, &root),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            &rekor,
        ),
        (
            &root,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ),
    ];
    for (roots, keys) in cases {
        let err = KeylessTrust::from_pem(roots.as_bytes(), keys.as_bytes(), default_identity())
            .expect_err("malformed trust material");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
    let err = IdentityMatch::regex("(unclosed").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    // Trust built by hand from DER that is not a certificate refuses, not panics.
    let layer = sign(&sigstore, &LeafOptions::default());
    let mut trust = sigstore.trust(default_identity());
    trust.fulcio_roots = vec![b"not DER".to_vec()];
    assert_refused(check(&trust, &layer), "trusted Fulcio certificate 1");
    trust.fulcio_roots.clear();
    assert_refused(check(&trust, &layer), "no Fulcio root is trusted");
}

#[test]
fn cosign_itself_verifies_what_the_test_sigstore_makes() {
    let Some(cosign) = conformance::tool("cosign") else {
        return;
    };
    let sigstore = TestSigstore::new();
    let other_log = TestSigstore::new();
    let dir = tempfile::tempdir().unwrap();
    let workflow = "https://github.com/acme/filters/.github/workflows/release.yml@refs/heads/main";
    let cases = [
        (
            LeafOptions::default(),
            "--certificate-identity",
            DEFAULT_EMAIL,
        ),
        (
            LeafOptions {
                subject: Subject::Uri(workflow.to_string()),
                curve: Curve::P384,
                ..LeafOptions::default()
            },
            "--certificate-identity-regexp",
            "^https://github.com/acme/.*$",
        ),
    ];
    for (options, identity_flag, identity_value) in cases {
        let layer = sign(&sigstore, &options);
        let subject = match &options.subject {
            Subject::Email(email) => email.clone(),
            Subject::Uri(uri) => uri.clone(),
        };
        let trust = sigstore.trust(identity(exact(DEFAULT_ISSUER), exact(&subject)));
        check(&trust, &layer).unwrap();

        let verify_blob = |rekor_key_pem: &str| {
            cosign_verify_blob(
                &cosign,
                dir.path(),
                &layer,
                &sigstore.chain_pem(),
                rekor_key_pem,
                &[identity_flag, identity_value],
            )
        };
        let accepted = verify_blob(&sigstore.rekor_key_pem());
        assert!(
            accepted.status.success(),
            "{}",
            String::from_utf8_lossy(&accepted.stderr)
        );
        // cosign checks the log's signature too: another log's key is refused.
        let refused = verify_blob(&other_log.rekor_key_pem());
        assert!(!refused.status.success());
    }

    // What this verifier refuses for the chain, cosign refuses too.
    let not_a_ca = TestSigstore::with_ca(CaOptions {
        intermediate_is_ca: false,
    });
    let refusals = [
        (
            &sigstore,
            LeafOptions {
                integrated_time: T0 + LEAF_LIFETIME + 1,
                ..LeafOptions::default()
            },
            "integratedTime",
        ),
        (
            &sigstore,
            LeafOptions {
                usage: LeafUsage::ServerAuth,
                ..LeafOptions::default()
            },
            "code-signing",
        ),
        (&not_a_ca, LeafOptions::default(), "is not a CA"),
    ];
    for (signer, options, expected) in refusals {
        let layer = sign(signer, &options);
        assert_refused(check(&signer.trust(default_identity()), &layer), expected);
        let refused = cosign_verify_blob(
            &cosign,
            dir.path(),
            &layer,
            &signer.chain_pem(),
            &signer.rekor_key_pem(),
            &["--certificate-identity", DEFAULT_EMAIL],
        );
        assert!(
            !refused.status.success(),
            "cosign accepted what {expected:?} refuses"
        );
    }
}

/// `cosign verify-blob` of a signature layer's payload, offline: the layer as the
/// blob-signing bundle (signature, certificate, Rekor bundle), Fulcio's chain and the Rekor
/// key from files, home and TUF root inside `dir`, no SCT (the test Fulcio has no CT log).
fn cosign_verify_blob(
    cosign: &Path,
    dir: &Path,
    layer: &SignedLayer,
    chain_pem: &str,
    rekor_key_pem: &str,
    identity: &[&str],
) -> std::process::Output {
    let bundle: serde_json::Value =
        serde_json::from_str(&layer.annotations[annotations::COSIGN_BUNDLE]).unwrap();
    let certificate = &layer.annotations[annotations::COSIGN_CERTIFICATE];
    let local_bundle = serde_json::json!({
        "base64Signature": layer.signature_b64,
        "cert": base64::engine::general_purpose::STANDARD.encode(certificate),
        "rekorBundle": bundle,
    });
    std::fs::write(dir.join("payload.json"), &layer.payload).unwrap();
    std::fs::write(dir.join("bundle.json"), local_bundle.to_string()).unwrap();
    std::fs::write(dir.join("fulcio.pem"), chain_pem).unwrap();
    std::fs::write(dir.join("rekor.pub"), rekor_key_pem).unwrap();
    cosign_offline(cosign, &dir.join("home"))
        .args(["verify-blob", "--offline", "--insecure-ignore-sct"])
        .args(["--bundle", "bundle.json"])
        .args(["--certificate-oidc-issuer", DEFAULT_ISSUER])
        .args(identity)
        .arg("payload.json")
        .current_dir(dir)
        .env("SIGSTORE_ROOT_FILE", dir.join("fulcio.pem"))
        .env("SIGSTORE_REKOR_PUBLIC_KEY", dir.join("rekor.pub"))
        .output()
        .unwrap()
}

#[test]
fn a_faces_arguments_build_one_keyless_trust_or_a_clear_refusal() {
    let sigstore = TestSigstore::new();
    let roots = sigstore.fulcio_root_pem();
    let rekor = sigstore.rekor_key_pem();
    let layer = sign(&sigstore, &LeafOptions::default());
    let default = default_identity();
    let (issuer, subject) = match (&default.issuer, &default.subject) {
        (IdentityMatch::Exact(i), IdentityMatch::Exact(s)) => (i.clone(), s.clone()),
        _ => panic!("the default identity is exact"),
    };
    let build = |issuer: (Option<&str>, Option<&str>), subject: (Option<&str>, Option<&str>)| {
        KeylessTrust::from_optional_pem(Some(roots.as_bytes()), Some(rekor.as_bytes()), || {
            Ok(CertificateIdentity {
                issuer: IdentityMatch::one_of("issuer", issuer.0, issuer.1)?,
                subject: IdentityMatch::one_of("subject", subject.0, subject.1)?,
            })
        })
    };

    let exact = build((Some(&issuer), None), (Some(&subject), None))
        .unwrap()
        .unwrap();
    check(&exact, &layer).unwrap();
    let any_subject = build((Some(&issuer), None), (None, Some(".*@example[.]test")))
        .unwrap()
        .unwrap();
    check(&any_subject, &layer).unwrap();
    let other = build((Some(&issuer), None), (None, Some("someone-else@.*")))
        .unwrap()
        .unwrap();
    assert_eq!(
        check(&other, &layer).unwrap_err().kind(),
        ErrorKind::SignatureInvalid
    );

    for (issuer_arg, subject_arg, expected) in [
        (
            (None, None),
            (Some(subject.as_str()), None),
            "the certificate's issuer",
        ),
        (
            (Some(issuer.as_str()), Some("x")),
            (Some(subject.as_str()), None),
            "both exactly and as a regular expression",
        ),
        (
            (Some(issuer.as_str()), None),
            (None, Some("(")),
            "not a valid regular expression",
        ),
    ] {
        let error = build(issuer_arg, subject_arg).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidArgument);
        assert!(error.to_string().contains(expected), "{error}");
    }

    let none = KeylessTrust::from_optional_pem(None, None, || unreachable!("no material"));
    assert!(none.unwrap().is_none());
    let half = KeylessTrust::from_optional_pem(Some(roots.as_bytes()), None, || {
        unreachable!("refused first")
    });
    let error = half.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert!(
        error
            .to_string()
            .contains("both Fulcio roots and Rekor keys"),
        "{error}"
    );
}
