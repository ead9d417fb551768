//! Signed plugins against the test bed's registries and the real cosign CLI: images
//! cosign signs verify here, images signed here pass `cosign verify --key`, and every
//! way a signature can be wrong is `SIGNATURE_INVALID` (or the fitting typed error)
//! with nothing written.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};

use wasm_image::digest::{Descriptor, Digest};
use wasm_image::location::Selector;
use wasm_image::media_types as mt;
use wasm_image::signature::find::signature_tag;
use wasm_image::store::{self, Access, RawManifest};
use wasm_image::{
    build, BuildOptions, CallOptions, Client, ClientOptions, ErrorKind, Location, PublicKey,
    Requirement, SigningKey, Trust, VerificationPolicy,
};

use common::cosign::Cosign;
use common::{bed_str, fault_log, testbed};

fn options(bed: &Value) -> ClientOptions {
    ClientOptions {
        use_config_files: false,
        insecure_registries: vec![
            bed_str(bed, &["plain", "host"]),
            bed_str(bed, &["faulty", "host"]),
        ],
        retry_base_delay: Duration::from_millis(20),
        read_timeout: Duration::from_secs(20),
        ..ClientOptions::default()
    }
}

fn client(bed: &Value) -> Client {
    Client::new(options(bed)).unwrap()
}

/// A small valid module, different for each seed.
fn module(seed: u8) -> Bytes {
    let mut m = b"\0asm\x01\0\0\0\x00\x06\x04name".to_vec();
    m.push(seed);
    Bytes::from(m)
}

/// Pushes a fresh image to `host/NAME:v1`; (repository, digest).
async fn push_image(c: &Client, host: &str, test: &str, seed: u8) -> (String, Digest) {
    let repository = format!("{host}/signing/{}", common::unique(test));
    let image = build(module(seed), &BuildOptions::default()).unwrap();
    let digest = c
        .push(&image, &format!("{repository}:v1"), &CallOptions::default())
        .await
        .unwrap();
    (repository, digest)
}

fn trust_from(public_pem: &[u8]) -> Trust {
    Trust::keys(vec![PublicKey::from_pem(public_pem).unwrap()]).unwrap()
}

fn verify_with(trust: Trust) -> CallOptions {
    CallOptions {
        verify: Some(Requirement::signed(trust)),
        ..Default::default()
    }
}

/// A fresh P-256 key pair as unencrypted PEM: (PKCS#8 private, SPKI public).
fn p256_pair(seed: u8) -> (String, String) {
    let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (private, public)
}

async fn expect_invalid(c: &Client, location: &str, call: &CallOptions, why: &str) -> String {
    let err = c.pull(location, call).await.map(drop).expect_err(why);
    assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "{why}: {err}");
    // Nothing written: a pull to a file leaves no file.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("module.wasm");
    let err = c.pull_to_file(location, &out, call).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "{why}: {err}");
    assert!(!out.exists(), "{why}: a file was left behind");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{why}");
    err.to_string()
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn images_cosign_signed_verify_here_and_wrong_keys_do_not() {
    let Some(cosign) = Cosign::find() else { return };
    let bed = testbed();
    let c = client(&bed);
    let host = bed_str(&bed, &["plain", "host"]);
    let (repository, digest) = push_image(&c, &host, "cosign-signed", 1).await;
    let (key, public) = cosign.generate_key_pair();
    cosign.sign(&key, &format!("{repository}@{digest}"));

    let trust = trust_from(&std::fs::read(&public).unwrap());
    let location = format!("{repository}:v1");
    let image = c
        .pull(&location, &verify_with(trust.clone()))
        .await
        .unwrap();
    assert_eq!(image.module(), &module(1)[..]);
    // The repository identity, when required, is the one cosign wrote.
    c.pull(
        &location,
        &verify_with(trust.clone().with_repository(repository.clone())),
    )
    .await
    .unwrap();

    let (_, other_public) = p256_pair(9);
    let message = expect_invalid(
        &c,
        &location,
        &verify_with(trust_from(other_public.as_bytes())),
        "a wrong key",
    )
    .await;
    assert!(message.contains("does not verify"), "{message}");

    // A signature made for another repository is refused when the identity is required.
    let message = expect_invalid(
        &c,
        &location,
        &verify_with(trust.with_repository(format!("{host}/signing/elsewhere"))),
        "another repository",
    )
    .await;
    assert!(message.contains("names repository"), "{message}");
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn images_signed_here_pass_cosign_verify() {
    let Some(cosign) = Cosign::find() else { return };
    let bed = testbed();
    let c = client(&bed);
    let host = bed_str(&bed, &["plain", "host"]);
    let repository = format!("{host}/signing/{}", common::unique("signed-here"));
    let location = format!("{repository}:v1");
    let (private, public) = p256_pair(3);
    let key = Arc::new(SigningKey::from_pem(private.as_bytes(), None).unwrap());
    let image = build(module(2), &BuildOptions::default()).unwrap();
    let call = CallOptions {
        sign_with: Some(key.clone()),
        ..Default::default()
    };
    let digest = c.push(&image, &location, &call).await.unwrap();
    // Pushing again signed by the same key adds nothing; another key adds a layer.
    c.push(&image, &location, &call).await.unwrap();

    let public_file = cosign.dir.path().join("ours.pub");
    std::fs::write(&public_file, &public).unwrap();
    let out = cosign.verify(&public_file, &location);
    assert!(out.status.success(), "{}", common::cosign::text(&out));
    let out = cosign.verify(&public_file, &format!("{repository}@{digest}"));
    assert!(out.status.success(), "{}", common::cosign::text(&out));

    let (other_private, other_public) = p256_pair(4);
    let other = Arc::new(SigningKey::from_pem(other_private.as_bytes(), None).unwrap());
    c.push(
        &image,
        &location,
        &CallOptions {
            sign_with: Some(other),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ctx = wasm_image::store::Context::new(options(&bed)).unwrap();
    let store = store::open(&Location::parse(&location).unwrap(), Access::Read, &ctx)
        .await
        .unwrap();
    let sig = store
        .manifest(&Selector::tag(&signature_tag(&digest)))
        .await
        .unwrap();
    let sig: Value = serde_json::from_slice(&sig.bytes).unwrap();
    assert_eq!(sig["layers"].as_array().unwrap().len(), 2, "{sig}");
    for public in [&public, &other_public] {
        std::fs::write(&public_file, public).unwrap();
        let out = cosign.verify(&public_file, &location);
        assert!(out.status.success(), "{}", common::cosign::text(&out));
        c.pull(&location, &verify_with(trust_from(public.as_bytes())))
            .await
            .unwrap();
    }
    // cosign's own check of a key that signed nothing here fails.
    let (_, stranger) = p256_pair(5);
    std::fs::write(&public_file, &stranger).unwrap();
    assert!(!cosign.verify(&public_file, &location).status.success());
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn bad_signatures_are_signature_invalid_and_nothing_is_written() {
    let Some(cosign) = Cosign::find() else { return };
    let bed = testbed();
    let c = client(&bed);
    let host = bed_str(&bed, &["plain", "host"]);
    let (key, public) = cosign.generate_key_pair();
    let trust = trust_from(&std::fs::read(&public).unwrap());
    let call = verify_with(trust.clone());

    // A missing signature.
    let (unsigned, _) = push_image(&c, &host, "unsigned", 10).await;
    let message = expect_invalid(&c, &format!("{unsigned}:v1"), &call, "unsigned").await;
    assert!(message.contains("no signature found"), "{message}");

    // A signature for another digest, served under this image's signature tag.
    let (repository, signed) = push_image(&c, &host, "other-digest", 11).await;
    cosign.sign(&key, &format!("{repository}@{signed}"));
    let other = build(module(12), &BuildOptions::default()).unwrap();
    let other_digest = c
        .push(
            &other,
            &format!("{repository}:other"),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    let store = store::open(
        &Location::parse(&format!("{repository}:v1")).unwrap(),
        Access::Write,
        &wasm_image::store::Context::new(options(&bed)).unwrap(),
    )
    .await
    .unwrap();
    let sig = store
        .manifest(&Selector::tag(&signature_tag(&signed)))
        .await
        .unwrap();
    let sig_digest = Digest::sha256_of(&sig.bytes);
    store
        .put_manifest(&sig, &sig_digest, Some(&signature_tag(&other_digest)))
        .await
        .unwrap();
    let message = expect_invalid(&c, &format!("{repository}:other"), &call, "another digest").await;
    assert!(message.contains("names digest"), "{message}");
    // The signed one itself still verifies.
    c.pull(&format!("{repository}:v1"), &call).await.unwrap();

    // A tampered payload: the same signature over changed bytes.
    let mut manifest: Value = serde_json::from_slice(&sig.bytes).unwrap();
    let layer: Descriptor = serde_json::from_value(manifest["layers"][0].clone()).unwrap();
    let payload =
        wasm_image::store::verified::read_small_blob(store.as_ref(), &layer, 1 << 20, "payload")
            .await
            .unwrap();
    let tampered = String::from_utf8(payload.to_vec())
        .unwrap()
        .replace("\"optional\":null", "\"optional\":{\"x\":\"y\"}");
    assert_ne!(tampered.as_bytes(), &payload[..]);
    let tampered_descriptor = Descriptor::for_bytes(mt::COSIGN_SIMPLESIGNING, tampered.as_bytes());
    wasm_image::store::verified::put_bytes(
        store.as_ref(),
        &tampered_descriptor,
        Bytes::from(tampered.clone()),
        None,
    )
    .await
    .unwrap();
    manifest["layers"][0]["digest"] = json!(tampered_descriptor.digest.to_string());
    manifest["layers"][0]["size"] = json!(tampered_descriptor.size);
    let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let raw = RawManifest {
        bytes: bytes.clone(),
        media_type: Some(mt::OCI_MANIFEST.into()),
    };
    store
        .put_manifest(
            &raw,
            &Digest::sha256_of(&bytes),
            Some(&signature_tag(&signed)),
        )
        .await
        .unwrap();
    let message = expect_invalid(&c, &format!("{repository}:v1"), &call, "tampered").await;
    assert!(message.contains("does not verify"), "{message}");
    let out = cosign.verify(&public, &format!("{repository}:v1"));
    assert!(
        !out.status.success(),
        "cosign agrees: {}",
        common::cosign::text(&out)
    );

    // Nothing reached a cache either.
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = wasm_image::Cache::open(wasm_image::CacheOptions {
        dir: Some(cache_dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let cached = Client::new(ClientOptions {
        cache: Some(cache.clone()),
        ..options(&bed)
    })
    .unwrap();
    let err = cached
        .fetch(&format!("{repository}:v1"), &Default::default(), &call)
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "{err}");
    assert!(cache.entries().unwrap().is_empty());
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn garbage_under_the_signature_tag_is_signature_invalid() {
    let bed = testbed();
    let c = client(&bed);
    let faulty = bed_str(&bed, &["faulty", "host"]);
    let (repository, digest) = push_image(&c, &faulty, "garbage-tag", 20).await;
    let name = repository.split_once('/').unwrap().1.to_string();
    common::add_faults(
        &bed,
        json!({
            "match": format!("/v2/{name}/manifests/{}", signature_tag(&digest)),
            "action": "status", "status": 200, "body": "\u{0}garbage{",
            "headers": {"Content-Type": mt::OCI_MANIFEST},
            "times": null,
        }),
    );
    let (_, public) = p256_pair(6);
    let message = expect_invalid(
        &c,
        &format!("{repository}:v1"),
        &verify_with(trust_from(public.as_bytes())),
        "garbage",
    )
    .await;
    assert!(message.contains(&signature_tag(&digest)), "{message}");
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn the_client_policy_applies_per_location_and_fetch_verifies_cache_hits() {
    let bed = testbed();
    let host = bed_str(&bed, &["plain", "host"]);
    let plain = client(&bed);
    let (private, public) = p256_pair(7);
    let key = Arc::new(SigningKey::from_pem(private.as_bytes(), None).unwrap());
    let signed_repo = format!("{host}/signing/{}", common::unique("policy-signed"));
    let image = build(module(30), &BuildOptions::default()).unwrap();
    plain
        .push(
            &image,
            &format!("{signed_repo}:v1"),
            &CallOptions {
                sign_with: Some(key),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (unsigned_repo, _) = push_image(&plain, &host, "policy-unsigned", 31).await;
    let layout = tempfile::tempdir().unwrap();
    let layout_location = format!("oci:{}:v1", layout.path().display());
    plain
        .copy(
            &format!("{unsigned_repo}:v1"),
            &layout_location,
            &CallOptions::default(),
        )
        .await
        .unwrap();

    let mut policy = VerificationPolicy::new();
    policy
        .require(&format!("{host}/signing/*"), trust_from(public.as_bytes()))
        .unwrap();
    policy.exempt("oci:*").unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = wasm_image::Cache::open(wasm_image::CacheOptions {
        dir: Some(cache_dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let strict = Client::new(ClientOptions {
        verification: policy,
        cache: Some(cache.clone()),
        ..options(&bed)
    })
    .unwrap();
    let none = CallOptions::default();
    strict
        .pull(&format!("{signed_repo}:v1"), &none)
        .await
        .unwrap();
    let err = strict
        .pull(&format!("{unsigned_repo}:v1"), &none)
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "{err}");
    strict.pull(&layout_location, &none).await.unwrap();
    // A call may lift the policy.
    let lifted = CallOptions {
        verify: Some(Requirement::None),
        ..Default::default()
    };
    strict
        .pull(&format!("{unsigned_repo}:v1"), &lifted)
        .await
        .unwrap();

    // The unsigned image cached by a lenient client is not served by the strict one.
    let lenient = Client::new(ClientOptions {
        cache: Some(cache.clone()),
        ..options(&bed)
    })
    .unwrap();
    lenient
        .fetch(&format!("{unsigned_repo}:v1"), &Default::default(), &none)
        .await
        .unwrap();
    let err = strict
        .fetch(&format!("{unsigned_repo}:v1"), &Default::default(), &none)
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "{err}");
    let entry = strict
        .fetch(&format!("{signed_repo}:v1"), &Default::default(), &none)
        .await
        .unwrap();
    assert_eq!(std::fs::read(entry.path()).unwrap(), &module(30)[..]);
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn copies_through_an_oci_archive_keep_signatures() {
    let Some(cosign) = Cosign::find() else { return };
    let bed = testbed();
    let c = client(&bed);
    let host = bed_str(&bed, &["plain", "host"]);
    let (repository, digest) = push_image(&c, &host, "copy-source", 40).await;
    let (key, public) = cosign.generate_key_pair();
    cosign.sign(&key, &format!("{repository}@{digest}"));
    let call = verify_with(trust_from(&std::fs::read(&public).unwrap()));

    let dir = tempfile::tempdir().unwrap();
    let archive = format!("oci-archive:{}:v1", dir.path().join("plugin.tar").display());
    c.copy(
        &format!("{repository}:v1"),
        &archive,
        &CallOptions::default(),
    )
    .await
    .unwrap();
    // The archive alone verifies, offline.
    c.pull(&archive, &call).await.unwrap();
    let layout = format!("oci:{}:v1", dir.path().join("layout").display());
    c.copy(&archive, &layout, &CallOptions::default())
        .await
        .unwrap();
    c.pull(&layout, &call).await.unwrap();

    // And back into another registry repository: cosign and we both accept it there.
    let target = format!("{host}/signing/{}", common::unique("copy-target"));
    c.copy(&archive, &format!("{target}:v1"), &CallOptions::default())
        .await
        .unwrap();
    c.pull(&format!("{target}:v1"), &call).await.unwrap();
    let out = cosign.verify(&public, &format!("{target}:v1"));
    assert!(out.status.success(), "{}", common::cosign::text(&out));

    // An unsigned image copies as before, with nothing extra.
    let (unsigned, _) = push_image(&c, &host, "copy-unsigned", 41).await;
    let plain_layout = format!("oci:{}:v1", dir.path().join("plain").display());
    c.copy(
        &format!("{unsigned}:v1"),
        &plain_layout,
        &CallOptions::default(),
    )
    .await
    .unwrap();
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("plain/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
}

/// Stores `layer` as the only layer of `digest`'s signature manifest, as cosign would.
async fn store_signature_layer(
    bed: &Value,
    repository: &str,
    digest: &Digest,
    layer: &wasm_image::signature::keyless_testkit::SignedLayer,
) {
    let store = store::open(
        &Location::parse(&format!("{repository}:v1")).unwrap(),
        Access::Write,
        &wasm_image::store::Context::new(options(bed)).unwrap(),
    )
    .await
    .unwrap();
    let mut descriptor = Descriptor::for_bytes(mt::COSIGN_SIMPLESIGNING, &layer.payload);
    descriptor.annotations = Some(layer.annotations.clone());
    wasm_image::store::verified::put_bytes(
        store.as_ref(),
        &descriptor,
        Bytes::from(layer.payload.clone()),
        None,
    )
    .await
    .unwrap();
    let config =
        br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    let config_descriptor = Descriptor::for_bytes(mt::OCI_IMAGE_CONFIG, config);
    wasm_image::store::verified::put_bytes(
        store.as_ref(),
        &config_descriptor,
        Bytes::from_static(config),
        None,
    )
    .await
    .unwrap();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "config": config_descriptor, "layers": [descriptor],
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let raw = RawManifest {
        bytes: bytes.clone(),
        media_type: Some(mt::OCI_MANIFEST.into()),
    };
    store
        .put_manifest(
            &raw,
            &Digest::sha256_of(&bytes),
            Some(&signature_tag(digest)),
        )
        .await
        .unwrap();
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn keyless_signatures_verify_offline_against_the_callers_trust() {
    use wasm_image::signature::keyless::{CertificateIdentity, IdentityMatch};
    use wasm_image::signature::keyless_testkit::{
        default_identity, LeafOptions, TestSigstore, DEFAULT_EMAIL, DEFAULT_ISSUER,
    };
    let bed = testbed();
    let c = client(&bed);
    let host = bed_str(&bed, &["plain", "host"]);
    let (repository, digest) = push_image(&c, &host, "keyless", 50).await;
    let sigstore = TestSigstore::new();
    let layer = sigstore.sign_image(&digest.to_string(), &repository, &LeafOptions::default());
    store_signature_layer(&bed, &repository, &digest, &layer).await;
    let location = format!("{repository}:v1");

    let trust = Trust::keyless(vec![sigstore.trust(default_identity())]).unwrap();
    c.pull(
        &location,
        &verify_with(trust.clone().with_repository(repository.clone())),
    )
    .await
    .unwrap();
    // A subject given as a pattern matches the whole value.
    let pattern = CertificateIdentity {
        issuer: IdentityMatch::Exact(DEFAULT_ISSUER.into()),
        subject: IdentityMatch::regex(r".*@example\.test").unwrap(),
    };
    c.pull(
        &location,
        &verify_with(Trust::keyless(vec![sigstore.trust(pattern)]).unwrap()),
    )
    .await
    .unwrap();

    // The wrong identity, issuer, or another Sigstore's root: refused, nothing written.
    for (why, identity) in [
        (
            "another subject",
            CertificateIdentity {
                issuer: IdentityMatch::Exact(DEFAULT_ISSUER.into()),
                subject: IdentityMatch::Exact("someone-else@example.test".into()),
            },
        ),
        (
            "another issuer",
            CertificateIdentity {
                issuer: IdentityMatch::Exact("https://other-issuer.example.test".into()),
                subject: IdentityMatch::Exact(DEFAULT_EMAIL.into()),
            },
        ),
    ] {
        let trust = Trust::keyless(vec![sigstore.trust(identity)]).unwrap();
        expect_invalid(&c, &location, &verify_with(trust), why).await;
    }
    let stranger = TestSigstore::new();
    let trust = Trust::keyless(vec![stranger.trust(default_identity())]).unwrap();
    expect_invalid(
        &c,
        &location,
        &verify_with(trust),
        "another Fulcio and Rekor",
    )
    .await;
    // A key trust alone does not accept a keyless signature.
    let (_, public) = p256_pair(8);
    expect_invalid(
        &c,
        &location,
        &verify_with(trust_from(public.as_bytes())),
        "keys only",
    )
    .await;
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn cosigns_encrypted_keys_sign_here() {
    let Some(cosign) = Cosign::find() else { return };
    let bed = testbed();
    let c = client(&bed);
    let host = bed_str(&bed, &["plain", "host"]);
    let (key_file, public) = cosign.generate_key_pair();
    let pem = std::fs::read(&key_file).unwrap();
    let err = SigningKey::from_pem(&pem, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = SigningKey::from_pem(&pem, Some(b"wrong password")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let key = SigningKey::from_pem(&pem, Some(common::cosign::PASSWORD.as_bytes())).unwrap();
    let location = format!("{host}/signing/{}:v1", common::unique("encrypted-key"));
    let image = build(module(60), &BuildOptions::default()).unwrap();
    c.push(
        &image,
        &location,
        &CallOptions {
            sign_with: Some(Arc::new(key)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let out = cosign.verify(&public, &location);
    assert!(out.status.success(), "{}", common::cosign::text(&out));
}

/// A layout at `dir/src` holding an image whose signature is stored as an OCI 1.1
/// referrer (cosign's `--registry-referrers-mode oci-1-1` shape), listed by the referrers
/// tag schema; (its location, the signer's public key PEM).
async fn layout_with_referrer_signature(c: &Client, dir: &std::path::Path) -> (String, String) {
    let source = format!("oci:{}:v1", dir.join("src").display());
    let image = build(module(70), &BuildOptions::default()).unwrap();
    let digest = c
        .push(&image, &source, &CallOptions::default())
        .await
        .unwrap();
    let resolved = c.resolve(&source, &CallOptions::default()).await.unwrap();
    let subject = Descriptor::new(mt::OCI_MANIFEST, digest.clone(), resolved.size);

    // The signature manifest: a simple-signing layer, the image as its subject.
    let (private, public) = p256_pair(11);
    let key = SigningKey::from_pem(private.as_bytes(), None).unwrap();
    let payload =
        wasm_image::signature::payload::SimpleSigning::for_image("example.test/x", &digest)
            .to_bytes();
    let signature = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        key.sign(&payload),
    );
    let mut layer = Descriptor::for_bytes(mt::COSIGN_SIMPLESIGNING, &payload);
    layer.annotations = Some([(mt::annotations::COSIGN_SIGNATURE.to_string(), signature)].into());
    let config = b"{}";
    let config_descriptor = Descriptor::for_bytes(mt::OCI_EMPTY, config);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "artifactType": mt::COSIGN_SIGNATURE_ARTIFACT,
        "config": config_descriptor, "layers": [layer], "subject": subject,
    });
    let manifest_bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let mut referrer = Descriptor::for_bytes(mt::OCI_MANIFEST, &manifest_bytes);
    referrer.artifact_type = Some(mt::COSIGN_SIGNATURE_ARTIFACT.into());
    let index = json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [referrer]});
    let index_bytes = Bytes::from(serde_json::to_vec(&index).unwrap());

    let ctx = wasm_image::store::Context::new(ClientOptions::default()).unwrap();
    let store = store::open(&Location::parse(&source).unwrap(), Access::Write, &ctx)
        .await
        .unwrap();
    let put = |d: Descriptor, b: Bytes| {
        let store = store.clone();
        async move {
            wasm_image::store::verified::put_bytes(store.as_ref(), &d, b, None)
                .await
                .unwrap()
        }
    };
    put(layer.clone(), Bytes::from(payload.clone())).await;
    put(config_descriptor.clone(), Bytes::from_static(config)).await;
    let raw = |bytes: &Bytes, media_type: &str| RawManifest {
        bytes: bytes.clone(),
        media_type: Some(media_type.into()),
    };
    store
        .put_manifest(
            &raw(&manifest_bytes, mt::OCI_MANIFEST),
            &referrer.digest,
            None,
        )
        .await
        .unwrap();
    store
        .put_manifest(
            &raw(&index_bytes, mt::OCI_INDEX),
            &Digest::sha256_of(&index_bytes),
            Some(&wasm_image::store::referrers_tag(&digest)),
        )
        .await
        .unwrap();
    store.commit().await.unwrap();
    drop(store);
    (source, public)
}

/// A signature stored as an OCI 1.1 referrer in a layout: found, verified, and carried
/// along by a copy to another layout.
#[tokio::test]
async fn signatures_stored_as_referrers_verify_and_copy() {
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new(ClientOptions {
        use_config_files: false,
        ..Default::default()
    })
    .unwrap();
    let (source, public) = layout_with_referrer_signature(&c, dir.path()).await;
    let call = verify_with(trust_from(public.as_bytes()));
    c.pull(&source, &call).await.unwrap();
    let (_, stranger) = p256_pair(12);
    let err = c
        .pull(&source, &verify_with(trust_from(stranger.as_bytes())))
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignatureInvalid, "{err}");

    let copy = format!("oci:{}:v1", dir.path().join("dst").display());
    c.copy(&source, &copy, &CallOptions::default())
        .await
        .unwrap();
    c.pull(&copy, &call).await.unwrap();
}

/// A mirror that answers the referrers API with an empty list (a pull-through cache that
/// copied the image but not what refers to it) does not hide the signature the registry
/// itself lists: the search goes on to the registry.
#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn a_mirror_listing_no_referrers_does_not_hide_the_registrys() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let faulty = bed_str(&bed, &["faulty", "host"]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&bed);
    let (source, public) = layout_with_referrer_signature(&c, dir.path()).await;
    let repository = format!("signing/{}", common::unique("mirror-referrers"));
    let location = format!("{plain}/{repository}:v1");
    c.copy(&source, &location, &CallOptions::default())
        .await
        .unwrap();

    let empty = json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": []});
    common::add_faults(
        &bed,
        json!({
            "match": format!("{repository}/referrers/"), "times": null,
            "action": "status", "status": 200, "body": empty.to_string(),
            "headers": {"Content-Type": mt::OCI_INDEX},
        }),
    );
    let mut o = options(&bed);
    o.mirrors = std::collections::BTreeMap::from([(plain.clone(), vec![faulty])]);
    let through_mirror = Client::new(o).unwrap();
    let call = verify_with(trust_from(public.as_bytes()));
    through_mirror.pull(&location, &call).await.unwrap();
    let asked = fault_log(&bed, &format!("{repository}/referrers/"));
    assert!(
        asked.iter().any(|r| r["status"] == 200),
        "the mirror was not asked for referrers: {asked:?}"
    );

    let (_, stranger) = p256_pair(12);
    expect_invalid(
        &through_mirror,
        &location,
        &verify_with(trust_from(stranger.as_bytes())),
        "a stranger's key through the mirror",
    )
    .await;
}

#[tokio::test]
#[cfg_attr(not(testbed), ignore = "needs the test bed (WASM_IMAGE_TESTBED)")]
async fn no_module_bytes_are_asked_for_before_a_required_signature_checks_out() {
    let bed = testbed();
    let c = client(&bed);
    let host = bed_str(&bed, &["faulty", "host"]);
    let (repository, _) = push_image(&c, &host, "layer-requests", 20).await;
    let image = c
        .pull(&format!("{repository}:v1"), &CallOptions::default())
        .await
        .unwrap();
    let module_layer = format!("blobs/{}", image.module_digest());
    let name = repository.split_once('/').unwrap().1.to_string();
    let layer_gets = |log: &[Value]| {
        log.iter()
            .filter(|e| e["method"] == "GET")
            .filter(|e| {
                e["path"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&module_layer)
            })
            .count()
    };
    // Unverified, the module layer is asked for once (beside the config).
    assert_eq!(layer_gets(&fault_log(&bed, &name)), 1);

    let (_, public) = p256_pair(21);
    let call = verify_with(trust_from(public.as_bytes()));
    expect_invalid(&c, &format!("{repository}:v1"), &call, "unsigned").await;
    assert_eq!(
        layer_gets(&fault_log(&bed, &name)),
        1,
        "the unsigned image's module layer was requested"
    );
}
