//! Writes a keyless-signed image and the trust to check it with, for the Python, C and
//! Go tests: keyless verification is done by core, but each face translates the trust
//! (roots, log keys, issuer, subject, pattern or exact) and only an image signed by a
//! Fulcio certificate shows that the translation reaches core intact. The signature comes
//! from a test Fulcio and Rekor made here (`signature::keyless_testkit`), offline.
//!
//!     cargo run -p wasm-image --features testkit --example keyless_fixture -- DIR
//!
//! DIR then holds:
//! - `layout/`: an OCI layout, tag `v1`, whose signature is under cosign's `.sig` tag;
//! - `fulcio_root.pem`, `rekor.pub`: the trust material;
//! - `other_fulcio_root.pem`, `other_rekor.pub`: another test Sigstore's, which must not
//!   verify it;
//! - `issuer`, `subject`: the signing certificate's identity, as plain text.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::json;

use wasm_image::digest::{Descriptor, Digest};
use wasm_image::media_types as mt;
use wasm_image::signature::find::signature_tag;
use wasm_image::signature::keyless_testkit::{
    LeafOptions, TestSigstore, DEFAULT_EMAIL, DEFAULT_ISSUER,
};
use wasm_image::store::{self, verified, Access, RawManifest};
use wasm_image::{build, BuildOptions, CallOptions, Client, ClientOptions, Location};

/// The repository the signed payload names; the tests give no repository in their trust.
const SIGNED_REPOSITORY: &str = "example.test/plugins/keyless";

/// A small valid module (a custom section only).
const MODULE: &[u8] = b"\0asm\x01\0\0\0\x00\x08\x07keyless";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: keyless_fixture DIR")?
        .into();
    std::fs::create_dir_all(&out)?;
    let location = format!("oci:{}:v1", out.join("layout").display());

    let client = Client::new(ClientOptions {
        use_config_files: false,
        ..Default::default()
    })?;
    let image = build(Bytes::from_static(MODULE), &BuildOptions::default())?;
    let digest = client
        .push(&image, &location, &CallOptions::default())
        .await?;

    let sigstore = TestSigstore::new();
    let layer = sigstore.sign_image(
        &digest.to_string(),
        SIGNED_REPOSITORY,
        &LeafOptions::default(),
    );
    store_signature(&location, &digest, &layer.payload, layer.annotations).await?;

    let other = TestSigstore::new();
    write(&out, "fulcio_root.pem", &sigstore.fulcio_root_pem())?;
    write(&out, "rekor.pub", &sigstore.rekor_key_pem())?;
    write(&out, "other_fulcio_root.pem", &other.fulcio_root_pem())?;
    write(&out, "other_rekor.pub", &other.rekor_key_pem())?;
    write(&out, "issuer", DEFAULT_ISSUER)?;
    write(&out, "subject", DEFAULT_EMAIL)?;
    println!("{location} signed keyless by {DEFAULT_EMAIL} ({DEFAULT_ISSUER})");
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(name), text)
}

/// Stores the signature layer as cosign does: the only layer of a manifest tagged
/// `sha256-<hex>.sig` beside the image.
async fn store_signature(
    location: &str,
    digest: &Digest,
    payload: &[u8],
    annotations: std::collections::BTreeMap<String, String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = store::Context::new(ClientOptions::default())?;
    let store = store::open(&Location::parse(location)?, Access::Write, &ctx).await?;

    let mut layer = Descriptor::for_bytes(mt::COSIGN_SIMPLESIGNING, payload);
    layer.annotations = Some(annotations);
    verified::put_bytes(
        store.as_ref(),
        &layer,
        Bytes::copy_from_slice(payload),
        None,
    )
    .await?;
    let config: &[u8] =
        br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    let config_descriptor = Descriptor::for_bytes(mt::OCI_IMAGE_CONFIG, config);
    verified::put_bytes(
        store.as_ref(),
        &config_descriptor,
        Bytes::from_static(config),
        None,
    )
    .await?;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "config": config_descriptor, "layers": [layer],
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest)?);
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
        .await?;
    store.commit().await?;
    Ok(())
}
