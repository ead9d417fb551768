//! The one conformance kit every store's tests call, like go-containerregistry's
//! `validate`: [`check_store`] reads back what was written (digests and sizes verified,
//! tags, indexes, missing things `NOT_FOUND`) and checks that a read-only store refuses
//! writes with one error kind. Behind `cfg(test)` or the `testkit` feature (for the
//! integration tests of `core/tests`).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::digest::{Descriptor, Digest, VerifyingReader};
use crate::error::ErrorKind;
use crate::location::Selector;
use crate::manifest::{self, Parsed};
use crate::media_types as mt;
use crate::store::{Access, BlobStream, RawManifest, Store};

/// Checks a store against the contract every store keeps.
///
/// With `Access::Write` it writes a fresh image under `image`'s tag (and an index of it
/// under the tag with `-index` appended), then reads both back by tag and by digest,
/// every blob verified, and checks that a blob whose bytes do not match its descriptor
/// is not stored. With `Access::Read`, `image` must name an image already in the store:
/// it is read back the same way, and every kind of write must fail with
/// `INVALID_ARGUMENT`. In both modes an unknown tag and an unknown blob are `NOT_FOUND`.
pub async fn check_store(store: &dyn Store, access: Access, image: &Selector) {
    let what = store.describe();
    if access == Access::Write {
        let tag_name = image
            .tag
            .as_deref()
            .expect("a writable store is checked under a tag");
        let sample = tiny_image(&format!("{what} {tag_name}"));
        store_image(store, &sample, Some(tag_name)).await;
        let index = index_of(&sample);
        let index_tag = format!("{tag_name}-index");
        store
            .put_manifest(&index.0, &index.1, Some(&index_tag))
            .await
            .unwrap_or_else(|e| panic!("{what}: storing an index: {e}"));
        assert_serves(store, &sample, image).await;
        assert_serves(store, &sample, &digest(&sample.manifest_digest)).await;
        let resolved = check_image(store, &tag(&index_tag)).await;
        assert_eq!(
            resolved.media_type,
            mt::OCI_INDEX,
            "{what}: index media type"
        );
        assert_eq!(resolved.digest, index.1, "{what}: index digest");
        check_wrong_bytes_are_not_stored(store).await;
    } else {
        check_image(store, image).await;
        check_writes_are_refused(store).await;
    }
    let missing = store
        .resolve(&tag("no-such-tag-in-any-conformance-check"))
        .await
        .expect_err("an unknown tag resolves to nothing");
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{what}: {missing}");
    let absent = Descriptor::for_bytes(mt::OCI_LAYER_TAR, b"never stored anywhere");
    assert!(
        !store.has_blob(&absent).await.unwrap(),
        "{what}: has_blob of an absent blob"
    );
    let err = match store.open_blob(&absent).await {
        Ok(mut stream) => {
            let mut sink = Vec::new();
            stream
                .read_to_end(&mut sink)
                .await
                .map_err(crate::Error::from_io)
                .expect_err("an absent blob cannot be read")
        }
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::NotFound, "{what}: {err}");
}

/// Reads what a selector names (a manifest and its blobs, or an index and every manifest
/// it lists), checking every byte against its descriptor; returns the top descriptor.
pub async fn check_image(store: &dyn Store, selector: &Selector) -> Descriptor {
    let what = store.describe();
    let descriptor = store
        .resolve(selector)
        .await
        .unwrap_or_else(|e| panic!("{what}: resolve {selector:?}: {e}"));
    let by_digest = store.resolve(&digest(&descriptor.digest)).await.unwrap();
    assert_eq!(
        by_digest.digest, descriptor.digest,
        "{what}: resolve by digest"
    );
    assert_eq!(by_digest.size, descriptor.size, "{what}: resolve by digest");
    check_manifest(store, &descriptor, selector).await;
    descriptor
}

async fn check_manifest(store: &dyn Store, descriptor: &Descriptor, selector: &Selector) {
    let what = store.describe();
    let raw = store.manifest(selector).await.unwrap();
    descriptor
        .verify(&raw.bytes, "manifest")
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let media_type = manifest::media_type_of(&raw.bytes, raw.media_type.as_deref(), &what).unwrap();
    assert_eq!(media_type, descriptor.media_type, "{what}: media type");
    match manifest::parse(&raw.bytes, raw.media_type.as_deref(), &what).unwrap() {
        Parsed::Index(index) => {
            for child in &index.manifests {
                let child_selector = digest(&child.digest);
                let resolved = store.resolve(&child_selector).await.unwrap();
                assert_eq!(resolved.digest, child.digest, "{what}: index entry");
                Box::pin(check_manifest(store, child, &child_selector)).await;
            }
        }
        Parsed::Manifest(image) => {
            for blob in std::iter::once(&image.config).chain(&image.layers) {
                assert!(
                    store.has_blob(blob).await.unwrap(),
                    "{what}: {}",
                    blob.digest
                );
                let data = read_all(store, blob).await;
                blob.verify(&data, "blob")
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            }
        }
    }
}

async fn check_wrong_bytes_are_not_stored(store: &dyn Store) {
    let what = store.describe();
    let claimed = Descriptor::for_bytes(mt::OCI_LAYER_TAR, b"what the descriptor promises");
    let err = store
        .put_blob(&claimed, verified(b"something else entirely", &claimed))
        .await
        .expect_err("a blob whose bytes do not match is refused");
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{what}: {err}");
    assert!(
        !store.has_blob(&claimed).await.unwrap(),
        "{what}: a refused blob was kept"
    );
}

async fn check_writes_are_refused(store: &dyn Store) {
    let what = store.describe();
    let sample = tiny_image("refused");
    let errors = [
        store
            .put_blob(
                &sample.layer_descriptor,
                verified(&sample.layer, &sample.layer_descriptor),
            )
            .await,
        store
            .put_manifest(&raw_manifest(&sample), &sample.manifest_digest, Some("x"))
            .await,
    ];
    for result in errors {
        let err = result.expect_err("a read-only store refuses writes");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{what}: {err}");
    }
}

fn raw_manifest(image: &TinyImage) -> RawManifest {
    RawManifest {
        bytes: Bytes::from(image.manifest.clone()),
        media_type: Some(mt::OCI_MANIFEST.into()),
    }
}

/// An OCI index listing one image, and its digest.
fn index_of(image: &TinyImage) -> (RawManifest, Digest) {
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": [{
            "mediaType": mt::OCI_MANIFEST,
            "digest": image.manifest_digest,
            "size": image.manifest.len(),
            "platform": {"architecture": "wasm", "os": "wasip1"},
        }],
    }))
    .unwrap();
    let digest = Digest::sha256_of(&bytes);
    (
        RawManifest {
            bytes: Bytes::from(bytes),
            media_type: Some(mt::OCI_INDEX.into()),
        },
        digest,
    )
}

/// A tiny but real image: a config, one uncompressed tar layer holding `plugin.wasm`,
/// and an OCI manifest. `seed` makes images differ.
pub struct TinyImage {
    pub config: Vec<u8>,
    pub config_descriptor: Descriptor,
    pub layer: Vec<u8>,
    pub layer_descriptor: Descriptor,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

pub fn tiny_image(seed: &str) -> TinyImage {
    // A valid core module: the header plus a custom section named after the seed.
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.push(0);
    module.push(1 + seed.len() as u8);
    module.push(seed.len() as u8);
    module.extend_from_slice(seed.as_bytes());
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "plugin.wasm", &module[..])
        .unwrap();
    let layer = builder.into_inner().unwrap();
    let layer_descriptor = Descriptor::for_bytes(mt::OCI_LAYER_TAR, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {"Entrypoint": ["/plugin.wasm"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_descriptor.digest.to_string()]},
        "history": [{"created_by": seed}],
    }))
    .unwrap();
    let config_descriptor = Descriptor::for_bytes(mt::OCI_IMAGE_CONFIG, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config_descriptor,
        "layers": [layer_descriptor],
    }))
    .unwrap();
    let manifest_digest = Digest::sha256_of(&manifest);
    TinyImage {
        config,
        config_descriptor,
        layer,
        layer_descriptor,
        manifest,
        manifest_digest,
    }
}

pub fn verified(data: &[u8], descriptor: &Descriptor) -> BlobStream {
    Box::pin(VerifyingReader::new(
        io::Cursor::new(data.to_vec()),
        descriptor,
        "blob",
    ))
}

pub async fn store_image(store: &dyn Store, image: &TinyImage, tag: Option<&str>) {
    store
        .put_blob(
            &image.config_descriptor,
            verified(&image.config, &image.config_descriptor),
        )
        .await
        .unwrap();
    store
        .put_blob(
            &image.layer_descriptor,
            verified(&image.layer, &image.layer_descriptor),
        )
        .await
        .unwrap();
    let raw = RawManifest {
        bytes: Bytes::from(image.manifest.clone()),
        media_type: Some(mt::OCI_MANIFEST.into()),
    };
    store
        .put_manifest(&raw, &image.manifest_digest, tag)
        .await
        .unwrap();
}

pub async fn read_all(store: &dyn Store, descriptor: &Descriptor) -> Vec<u8> {
    let mut out = Vec::new();
    store
        .open_blob(descriptor)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

/// Checks that `store` serves `image` under `selector`, blobs included.
pub async fn assert_serves(store: &dyn Store, image: &TinyImage, selector: &Selector) {
    let descriptor = store.resolve(selector).await.unwrap();
    assert_eq!(descriptor.digest, image.manifest_digest);
    assert_eq!(descriptor.media_type, mt::OCI_MANIFEST);
    assert_eq!(descriptor.size, image.manifest.len() as u64);
    let raw = store.manifest(selector).await.unwrap();
    assert_eq!(&raw.bytes[..], &image.manifest[..]);
    assert_eq!(raw.media_type.as_deref(), Some(mt::OCI_MANIFEST));
    assert_eq!(
        read_all(store, &image.config_descriptor).await,
        image.config
    );
    assert_eq!(read_all(store, &image.layer_descriptor).await, image.layer);
    assert!(store.has_blob(&image.layer_descriptor).await.unwrap());
}

/// Reads the manifest a selector names and every blob it refers to, checking each
/// against its descriptor; returns the manifest and the blobs (config first).
pub async fn assert_consistent(
    store: &dyn Store,
    selector: &Selector,
) -> (manifest::ImageManifest, Vec<Vec<u8>>) {
    let descriptor = store.resolve(selector).await.unwrap();
    let raw = store.manifest(selector).await.unwrap();
    descriptor.verify(&raw.bytes, "manifest").unwrap();
    assert_eq!(
        raw.media_type.as_deref(),
        Some(descriptor.media_type.as_str())
    );
    let manifest: manifest::ImageManifest = serde_json::from_slice(&raw.bytes).unwrap();
    let mut blobs = Vec::new();
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        assert!(store.has_blob(blob).await.unwrap(), "{}", blob.digest);
        let data = read_all(store, blob).await;
        blob.verify(&data, "blob").unwrap();
        blobs.push(data);
    }
    (manifest, blobs)
}

pub fn tag(tag: &str) -> Selector {
    Selector {
        tag: Some(tag.into()),
        digest: None,
    }
}

pub fn digest(digest: &Digest) -> Selector {
    Selector {
        tag: None,
        digest: Some(digest.clone()),
    }
}

/// The path of a tool when installed; else, outside CI, a note on stderr and `None`.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        // Under CI every tool is installed by .ci/install: a missing one is a failure,
        // never a silent pass.
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is required under CI (run .ci/install)"
        );
        eprintln!("note: {name} is not installed; skipping the part of this test that needs it");
    }
    found
}

pub fn run(program: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
