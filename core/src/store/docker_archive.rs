//! `docker-archive:FILE[:REF]`, read only: the tarballs `docker save` and `skopeo copy …
//! docker-archive:` write.
//!
//! Such a tarball has a `manifest.json` (a list of `{Config, RepoTags, Layers}`), a config
//! file and layer tars, but no registry manifest: we synthesize a Docker schema 2 manifest
//! whose descriptors carry the sha256 and size of the files as stored (layers gzip or
//! plain tar, told apart by their magic bytes). Nothing is extracted: the tar is indexed
//! once and blobs are served from their offsets in it. Links inside the tar (skopeo and
//! Docker write legacy `<id>/layer.tar` as symlinks) are followed within the archive only,
//! never on disk.

use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::digest::{Descriptor, Digest};
use crate::embed::runtime::run_blocking;
use crate::error::{Error, Result};
use crate::limits::MAX_IMAGE_LAYERS;
use crate::location::{normalized_reference, Selector};
use crate::media_types as mt;
use crate::store::tar_index::{Span, TarIndex};
use crate::store::{BlobStream, RawManifest, Store};

pub struct DockerArchiveStore {
    file: PathBuf,
    name: String,
    manifest: Bytes,
    manifest_descriptor: Descriptor,
    /// Where each blob of the chosen image lies in the tar.
    blobs: HashMap<Digest, Span>,
    /// The chosen image's `RepoTags` (`name:tag`).
    repo_tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SchemaTwo<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
}

impl DockerArchiveStore {
    /// Indexes the archive and picks its image: the one whose `RepoTags` holds
    /// `reference` (also tried with `:latest` appended; `@N` picks the N-th entry), or
    /// without a reference the only one.
    pub async fn open(file: &Path, reference: Option<String>) -> Result<DockerArchiveStore> {
        let mut name = format!("docker-archive:{}", file.display());
        if let Some(reference) = &reference {
            name.push(':');
            name.push_str(reference);
        }
        let file = file.to_path_buf();
        run_blocking(move |_| image_from(TarIndex::new(file, name)?, reference.as_deref())).await
    }

    fn read_only(&self) -> Error {
        Error::invalid_argument(format!(
            "{}: docker-archive: is read only; write to oci:, oci-archive: or a registry",
            self.name
        ))
    }
}

/// Picks the image `reference` names, and synthesizes its manifest from the files.
fn image_from(index: TarIndex, reference: Option<&str>) -> Result<DockerArchiveStore> {
    let name = &index.name;
    let manifest_span = index.find("manifest.json").map_err(|e| {
        let hint = if index.entries.contains_key("index.json") {
            " (it has an index.json: read it with oci-archive:)"
        } else {
            ""
        };
        if index.entries.contains_key("manifest.json") {
            e
        } else {
            Error::invalid_format(format!(
                "{name}: the archive has no manifest.json, so it is not a docker-archive{hint}"
            ))
        }
    })?;
    let items: Vec<ManifestItem> =
        serde_json::from_slice(&index.read_small(manifest_span, "manifest.json")?)
            .map_err(|e| Error::invalid_format(format!("{name}: malformed manifest.json: {e}")))?;
    let item = choose(&items, reference, name)?;

    let mut blobs = HashMap::new();
    let config_span = index.find(&item.config)?;
    let (config_digest, _) = index.hash(config_span, "the image config")?;
    let config = Descriptor::new(
        mt::DOCKER_IMAGE_CONFIG,
        config_digest.clone(),
        config_span.size,
    );
    blobs.insert(config_digest, config_span);
    if item.layers.len() > MAX_IMAGE_LAYERS {
        return Err(Error::limit_exceeded(format!(
            "{name}: the image lists {} layers, more than the limit of {MAX_IMAGE_LAYERS}",
            item.layers.len()
        )));
    }
    let mut layers = Vec::with_capacity(item.layers.len());
    // A layer listed many times (or through several links) is hashed once.
    let mut hashed: HashMap<Span, Descriptor> = HashMap::new();
    for layer in &item.layers {
        let span = index.find(layer)?;
        if let Some(known) = hashed.get(&span) {
            layers.push(known.clone());
            continue;
        }
        let (digest, magic) = index.hash(span, layer)?;
        let media_type = if magic == [0x1f, 0x8b] {
            mt::DOCKER_LAYER_TAR_GZIP
        } else {
            mt::DOCKER_LAYER_TAR
        };
        let descriptor = Descriptor::new(media_type, digest.clone(), span.size);
        hashed.insert(span, descriptor.clone());
        layers.push(descriptor);
        blobs.insert(digest, span);
    }
    let manifest = serde_json::to_vec(&SchemaTwo {
        schema_version: 2,
        media_type: mt::DOCKER_MANIFEST,
        config: &config,
        layers: &layers,
    })
    .expect("manifests serialise");
    Ok(DockerArchiveStore {
        manifest_descriptor: Descriptor::for_bytes(mt::DOCKER_MANIFEST, &manifest),
        manifest: Bytes::from(manifest),
        blobs,
        repo_tags: item.repo_tags.clone().unwrap_or_default(),
        file: index.path,
        name: index.name,
    })
}

fn choose<'a>(
    items: &'a [ManifestItem],
    reference: Option<&str>,
    name: &str,
) -> Result<&'a ManifestItem> {
    let listing = || {
        let all: Vec<String> = items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.repo_tags.as_deref() {
                Some(tags) if !tags.is_empty() => tags.join(", "),
                _ => format!("@{i} (untagged)"),
            })
            .collect();
        if all.is_empty() {
            "none".to_string()
        } else {
            all.join("; ")
        }
    };
    match reference {
        Some(reference) => {
            if let Some(n) = reference.strip_prefix('@') {
                let n: usize = n.parse().map_err(|_| {
                    Error::invalid_argument(format!("{name}: {reference:?} must be @ followed by an image number"))
                })?;
                return items.get(n).ok_or_else(|| {
                    Error::not_found(format!(
                        "{name}: the archive holds {} images, so there is no @{n}",
                        items.len()
                    ))
                });
            }
            // Docker writes `RepoTags` in its short form (`wasm/x:v1`), podman and skopeo
            // in full (`docker.io/wasm/x:v1`): compare both sides normalised.
            let with_latest = format!("{reference}:latest");
            let wanted = normalized_reference(reference);
            let names_it = |tag: &String| {
                *tag == reference
                    || *tag == with_latest
                    || (wanted.is_some() && normalized_reference(tag) == wanted)
            };
            items
                .iter()
                .find(|item| item.repo_tags.iter().flatten().any(names_it))
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "{name}: no image tagged {reference:?} (RepoTags here: {})",
                        listing()
                    ))
                })
        }
        None => match items.len() {
            1 => Ok(&items[0]),
            0 => Err(Error::invalid_format(format!("{name}: manifest.json lists no images"))),
            n => Err(Error::invalid_argument(format!(
                "{name}: the archive holds {n} images; name one as docker-archive:FILE:REF (RepoTags here: {})",
                listing()
            ))),
        },
    }
}

#[async_trait]
impl Store for DockerArchiveStore {
    fn is_local(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    /// The chosen image answers to its manifest digest and to the tags of its `RepoTags`
    /// (`name:TAG` or `TAG`); a selector without either names it too.
    async fn resolve(&self, selector: &Selector) -> Result<Descriptor> {
        if let Some(wanted) = &selector.tag {
            let suffix = format!(":{wanted}");
            if !self
                .repo_tags
                .iter()
                .any(|t| t == wanted || t.ends_with(&suffix))
            {
                return Err(Error::not_found(format!(
                    "{}: the image here is not tagged {wanted:?} (RepoTags: {})",
                    self.name,
                    self.repo_tags.join(", ")
                )));
            }
        }
        match &selector.digest {
            Some(digest) if *digest != self.manifest_descriptor.digest => {
                Err(Error::not_found(format!(
                    "{}: the image here has manifest digest {}, not {digest}",
                    self.name, self.manifest_descriptor.digest
                )))
            }
            _ => Ok(self.manifest_descriptor.clone()),
        }
    }

    async fn manifest(&self, selector: &Selector) -> Result<RawManifest> {
        self.resolve(selector).await?;
        Ok(RawManifest {
            bytes: self.manifest.clone(),
            media_type: Some(mt::DOCKER_MANIFEST.to_string()),
        })
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        if descriptor.digest == self.manifest_descriptor.digest {
            return Ok(Box::pin(io::Cursor::new(self.manifest.clone())));
        }
        let span = *self.blobs.get(&descriptor.digest).ok_or_else(|| {
            Error::not_found(format!(
                "{}: blob {} is not part of this image",
                self.name, descriptor.digest
            ))
        })?;
        let what = || format!("{}: reading blob {}", self.name, descriptor.digest);
        let mut file = tokio::fs::File::open(&self.file)
            .await
            .map_err(|e| Error::io(what(), e))?;
        file.seek(SeekFrom::Start(span.offset))
            .await
            .map_err(|e| Error::io(what(), e))?;
        Ok(Box::pin(file.take(span.size)))
    }

    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        if descriptor.digest == self.manifest_descriptor.digest {
            return Ok(descriptor.size == self.manifest_descriptor.size);
        }
        Ok(self
            .blobs
            .get(&descriptor.digest)
            .is_some_and(|span| span.size == descriptor.size))
    }

    async fn put_blob(&self, _descriptor: &Descriptor, _data: BlobStream) -> Result<()> {
        Err(self.read_only())
    }

    async fn put_manifest(
        &self,
        _manifest: &RawManifest,
        _digest: &Digest,
        _tag: Option<&str>,
    ) -> Result<()> {
        Err(self.read_only())
    }

    async fn commit(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::*;
    use crate::digest::VerifyingReader;
    use crate::location::Location;
    use crate::manifest::ImageManifest;
    use crate::store::conformance::{
        check_store, read_all, run, store_image, tag, tiny_image, tool,
    };
    use crate::store::layout::LayoutStore;
    use crate::store::Access;
    use crate::ErrorKind;

    enum Item<'a> {
        File(&'a str, &'a [u8]),
        Symlink(&'a str, &'a str),
        Raw(&'a str, tar::EntryType),
    }

    fn archive(items: &[Item]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            match item {
                Item::File(name, data) => {
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, name, *data).unwrap();
                }
                Item::Symlink(name, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, name, target).unwrap();
                }
                Item::Raw(name, entry_type) => {
                    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    header.set_entry_type(*entry_type);
                    header.set_size(0);
                    header.set_cksum();
                    builder.append(&header, io::empty()).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn parse(store: &DockerArchiveStore) -> ImageManifest {
        serde_json::from_slice(&store.manifest).unwrap()
    }

    struct TwoImages {
        file: tempfile::NamedTempFile,
        config_a: Vec<u8>,
        layer_a: Vec<u8>,
        config_b: Vec<u8>,
        layer_b: Vec<u8>,
    }

    /// Two images the way skopeo and Docker lay them out: `<hex>.tar` layers reached
    /// through legacy `<id>/layer.tar` symlinks, and Docker 25's `blobs/sha256/<hex>`.
    fn two_images() -> TwoImages {
        let (a, b) = (tiny_image("a"), tiny_image("b"));
        let layer_b = gzip(&b.layer);
        let layer_b_path = format!("blobs/sha256/{}", Digest::sha256_of(&layer_b).hex());
        let manifest_json = serde_json::to_vec(&serde_json::json!([
            {"Config": "cfg-a.json", "RepoTags": ["example.com/a:v1", "example.com/a:latest"], "Layers": ["legacy/layer.tar"]},
            {"Config": "./cfg-b.json", "RepoTags": ["b:v2"], "Layers": [layer_b_path]},
        ]))
        .unwrap();
        let data = archive(&[
            Item::File("cfg-a.json", &a.config),
            Item::File("cfg-b.json", &b.config),
            Item::File("aaaa.tar", &a.layer),
            Item::Raw("legacy", tar::EntryType::Directory),
            Item::Symlink("legacy/layer.tar", "../aaaa.tar"),
            Item::File(&layer_b_path, &layer_b),
            Item::File("manifest.json", &manifest_json),
            Item::File("repositories", b"{}"),
        ]);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&data).unwrap();
        TwoImages {
            file,
            config_a: a.config,
            layer_a: a.layer,
            config_b: b.config,
            layer_b,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn picks_an_image_and_synthesizes_its_manifest() {
        let images = two_images();
        let path = images.file.path();

        let store = DockerArchiveStore::open(path, Some("example.com/a:v1".into()))
            .await
            .unwrap();
        let manifest = parse(&store);
        assert_eq!(manifest.schema_version, 2);
        assert_eq!(manifest.media_type.as_deref(), Some(mt::DOCKER_MANIFEST));
        assert_eq!(
            manifest.config,
            Descriptor::for_bytes(mt::DOCKER_IMAGE_CONFIG, &images.config_a)
        );
        assert_eq!(
            manifest.layers,
            [Descriptor::for_bytes(mt::DOCKER_LAYER_TAR, &images.layer_a)]
        );
        assert_eq!(read_all(&store, &manifest.config).await, images.config_a);
        assert_eq!(read_all(&store, &manifest.layers[0]).await, images.layer_a);
        assert!(store.has_blob(&manifest.layers[0]).await.unwrap());

        let descriptor = store.resolve(&Selector::default()).await.unwrap();
        assert_eq!(descriptor.media_type, mt::DOCKER_MANIFEST);
        let raw = store.manifest(&Selector::default()).await.unwrap();
        descriptor.verify(&raw.bytes, "manifest").unwrap();
        assert_eq!(raw.media_type.as_deref(), Some(mt::DOCKER_MANIFEST));
        assert_eq!(
            store
                .resolve(&crate::store::conformance::digest(&descriptor.digest))
                .await
                .unwrap(),
            descriptor
        );
        let other = Digest::sha256_of(b"other");
        let err = store
            .resolve(&crate::store::conformance::digest(&other))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = store
            .open_blob(&Descriptor::new("x", other.clone(), 1))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(!store
            .has_blob(&Descriptor::new("x", other, 1))
            .await
            .unwrap());

        // Without a tag, `:latest` is tried; `@N` picks by position.
        for reference in ["example.com/a", "@0"] {
            let again = DockerArchiveStore::open(path, Some(reference.into()))
                .await
                .unwrap();
            assert_eq!(again.manifest, store.manifest, "{reference}");
        }

        let b = DockerArchiveStore::open(path, Some("b:v2".into()))
            .await
            .unwrap();
        let manifest = parse(&b);
        assert_eq!(
            manifest.layers,
            [Descriptor::for_bytes(
                mt::DOCKER_LAYER_TAR_GZIP,
                &images.layer_b
            )]
        );
        assert_eq!(read_all(&b, &manifest.config).await, images.config_b);
        assert_eq!(read_all(&b, &manifest.layers[0]).await, images.layer_b);
        assert_eq!(
            b.describe(),
            format!("docker-archive:{}:b:v2", path.display())
        );
    }

    /// `docker save` writes `wasm/compat:v1`, podman `docker.io/wasm/compat:v1`: either
    /// spelling of a Docker Hub reference finds the image, as with `docker load`.
    #[tokio::test(flavor = "multi_thread")]
    async fn references_match_after_docker_hub_normalisation() {
        let (a, b) = (tiny_image("a"), tiny_image("b"));
        let manifest_json = serde_json::to_vec(&serde_json::json!([
            {"Config": "cfg-a.json", "RepoTags": ["docker.io/wasm/compat:v1", "docker.io/library/solo:latest"], "Layers": ["a.tar"]},
            {"Config": "cfg-b.json", "RepoTags": ["wasm/short:v2", "plain:latest"], "Layers": ["b.tar"]},
        ]))
        .unwrap();
        let data = archive(&[
            Item::File("cfg-a.json", &a.config),
            Item::File("cfg-b.json", &b.config),
            Item::File("a.tar", &a.layer),
            Item::File("b.tar", &b.layer),
            Item::File("manifest.json", &manifest_json),
        ]);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&data).unwrap();
        let path = file.path();
        let config_of = |store: &DockerArchiveStore| parse(store).config;
        let cases = [
            ("wasm/compat:v1", &a.config),
            ("docker.io/wasm/compat:v1", &a.config),
            ("index.docker.io/wasm/compat:v1", &a.config),
            ("solo", &a.config),
            ("solo:latest", &a.config),
            ("library/solo", &a.config),
            ("docker.io/wasm/short:v2", &b.config),
            ("docker.io/library/plain", &b.config),
            ("plain", &b.config),
        ];
        for (reference, config) in cases {
            let store = DockerArchiveStore::open(path, Some(reference.into()))
                .await
                .unwrap_or_else(|e| panic!("{reference}: {e}"));
            assert_eq!(
                config_of(&store),
                Descriptor::for_bytes(mt::DOCKER_IMAGE_CONFIG, config),
                "{reference}"
            );
        }
        for reference in [
            "wasm/compat:v2",
            "other/compat:v1",
            "example.com/wasm/compat:v1",
        ] {
            let err = DockerArchiveStore::open(path, Some(reference.into()))
                .await
                .err()
                .unwrap();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{reference}: {err}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn wrong_missing_or_ambiguous_references() {
        let images = two_images();
        let path = images.file.path();
        let err = DockerArchiveStore::open(path, None).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.message().contains("example.com/a:v1") && err.message().contains("b:v2"),
            "{err}"
        );
        let err = DockerArchiveStore::open(path, Some("c:v3".into()))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("b:v2"), "{err}");
        let err = DockerArchiveStore::open(path, Some("@7".into()))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = DockerArchiveStore::open(Path::new("/nonexistent/x.tar"), None)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn conformance_reading() {
        let images = two_images();
        let store = DockerArchiveStore::open(images.file.path(), Some("b:v2".into()))
            .await
            .unwrap();
        check_store(&store, Access::Read, &Selector::default()).await;
        check_store(&store, Access::Read, &tag("v2")).await;
        let err = store.resolve(&tag("v1")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = store
            .put_blob(
                &store.manifest_descriptor,
                Box::pin(io::Cursor::new(store.manifest.clone())),
            )
            .await
            .unwrap_err();
        assert!(err.message().contains("read only"), "{err}");

        // Opening for writing is refused before anything is read.
        let location =
            Location::parse(&format!("docker-archive:{}", images.file.path().display())).unwrap();
        let ctx = crate::store::Context::new(Default::default()).unwrap();
        let err = crate::store::open(&location, Access::Write, &ctx)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let location = Location::parse(&format!(
            "docker-archive:{}:b:v2",
            images.file.path().display()
        ))
        .unwrap();
        let store = crate::store::open(&location, Access::Read, &ctx)
            .await
            .unwrap();
        check_store(store.as_ref(), Access::Read, &Selector::default()).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn malformed_archives() {
        let temp = tempfile::tempdir().unwrap();
        let cfg: &[u8] = b"{}";
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "no manifest.json",
                archive(&[Item::File("cfg.json", cfg)]),
                "no manifest.json",
            ),
            (
                "an OCI archive",
                archive(&[Item::File("oci-layout", cfg), Item::File("index.json", cfg)]),
                "oci-archive:",
            ),
            (
                "bad json",
                archive(&[Item::File("manifest.json", b"{")]),
                "manifest.json",
            ),
            (
                "no images",
                archive(&[Item::File("manifest.json", b"[]")]),
                "no images",
            ),
            (
                "missing layer",
                archive(&[
                    Item::File("cfg.json", cfg),
                    Item::File(
                        "manifest.json",
                        br#"[{"Config":"cfg.json","Layers":["l.tar"]}]"#,
                    ),
                ]),
                "l.tar",
            ),
            (
                "link out of the archive",
                archive(&[
                    Item::File("cfg.json", cfg),
                    Item::Symlink("l.tar", "../../../etc/passwd"),
                    Item::File(
                        "manifest.json",
                        br#"[{"Config":"cfg.json","Layers":["l.tar"]}]"#,
                    ),
                ]),
                "outside",
            ),
            (
                "absolute link",
                archive(&[
                    Item::Symlink("cfg.json", "/etc/passwd"),
                    Item::File("manifest.json", br#"[{"Config":"cfg.json","Layers":[]}]"#),
                ]),
                "outside",
            ),
            (
                "link loop",
                archive(&[
                    Item::Symlink("a", "b"),
                    Item::Symlink("b", "a"),
                    Item::File("manifest.json", br#"[{"Config":"a","Layers":[]}]"#),
                ]),
                "links",
            ),
            (
                "path out of the archive",
                archive(&[Item::File(
                    "manifest.json",
                    br#"[{"Config":"../cfg.json","Layers":[]}]"#,
                )]),
                "outside",
            ),
            (
                "absolute entry",
                archive(&[Item::Raw("/etc/x", tar::EntryType::Regular)]),
                "absolute",
            ),
            (
                "dot-dot entry",
                archive(&[Item::Raw("../x", tar::EntryType::Regular)]),
                "\"..\"",
            ),
            ("gzip", gzip(b"whatever"), "gzip"),
        ];
        for (what, data, expected) in cases {
            let file = temp.path().join("bad.tar");
            fs::write(&file, data).unwrap();
            let err = DockerArchiveStore::open(&file, None).await.err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{what}: {err}");
            assert!(err.message().contains(expected), "{what}: {err}");
        }
    }

    /// A docker-archive written by skopeo from one of our layouts reads back with the
    /// same layer and config, and what we synthesize copies into a layout skopeo reads.
    #[tokio::test(flavor = "multi_thread")]
    async fn reads_what_skopeo_writes() {
        let Some(skopeo) = tool("skopeo") else { return };
        let temp = tempfile::tempdir().unwrap();
        let image = tiny_image("docker");
        let layout_dir = temp.path().join("layout");
        store_image(
            &LayoutStore::open(&layout_dir, Access::Write).await.unwrap(),
            &image,
            Some("v1"),
        )
        .await;
        let file = temp.path().join("docker.tar");
        run(
            &skopeo,
            &[
                "--insecure-policy",
                "copy",
                &format!("oci:{}:v1", layout_dir.display()),
                &format!(
                    "docker-archive:{}:example.com/wasm/filter:v1",
                    file.display()
                ),
            ],
        );

        for reference in [Some("example.com/wasm/filter:v1".to_string()), None] {
            let store = DockerArchiveStore::open(&file, reference).await.unwrap();
            let manifest = parse(&store);
            assert_eq!(manifest.layers.len(), 1);
            assert_eq!(manifest.layers[0].digest, image.layer_descriptor.digest);
            assert_eq!(manifest.layers[0].media_type, mt::DOCKER_LAYER_TAR);
            assert_eq!(read_all(&store, &manifest.layers[0]).await, image.layer);
            let config = read_all(&store, &manifest.config).await;
            manifest.config.verify(&config, "config").unwrap();
        }

        // Copy it into a layout through the Store trait, digests unchanged. (skopeo 1.9
        // does not look at index.json entries of Docker media types, so it cannot read
        // this tag back: only OCI manifests in a layout are visible to it.)
        let store = DockerArchiveStore::open(&file, None).await.unwrap();
        let copy_dir = temp.path().join("copy");
        let copy = LayoutStore::open(&copy_dir, Access::Write).await.unwrap();
        let manifest = parse(&store);
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let stream = store.open_blob(blob).await.unwrap();
            copy.put_blob(blob, Box::pin(VerifyingReader::new(stream, blob, "blob")))
                .await
                .unwrap();
        }
        let raw = store.manifest(&Selector::default()).await.unwrap();
        copy.put_manifest(&raw, &store.manifest_descriptor.digest, Some("from-docker"))
            .await
            .unwrap();
        let copy = LayoutStore::open(&copy_dir, Access::Read).await.unwrap();
        assert_eq!(
            copy.manifest(&tag("from-docker")).await.unwrap().bytes,
            raw.bytes
        );
        assert!(copy.has_blob(&manifest.layers[0]).await.unwrap());
        let listed = copy.resolve(&tag("from-docker")).await.unwrap();
        assert_eq!(listed.media_type, mt::DOCKER_MANIFEST);
    }
}
