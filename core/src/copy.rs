//! Copying what a manifest or index references between stores: each manifest and blob
//! once however often it is listed, within the index limits. A hostile index that lists
//! the same child index over and over (4 levels of 16 entries make 65,536 listings) costs
//! one fetch per distinct digest, and a copy moves no more manifests than `pull` accepts
//! entries in one index.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::location::Selector;
use crate::manifest::{self, Parsed};
use crate::media_types as mt;
use crate::options::CallOptions;
use crate::store::verified::{self, FetchedManifest};
use crate::store::Store;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One copy's source, destination, bounds and what it has copied so far.
pub(crate) struct Copy<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Store,
    limits: &'a Limits,
    call: &'a CallOptions,
    /// Manifests (child manifests and indexes) already written to the destination.
    manifests: HashSet<Digest>,
    /// Blobs already copied.
    blobs: HashSet<Digest>,
}

impl<'a> Copy<'a> {
    pub(crate) fn new(
        src: &'a dyn Store,
        dst: &'a dyn Store,
        limits: &'a Limits,
        call: &'a CallOptions,
    ) -> Copy<'a> {
        Copy {
            src,
            dst,
            limits,
            call,
            manifests: HashSet::new(),
            blobs: HashSet::new(),
        }
    }

    /// Copies everything the manifest or index `selector` names references (blobs, child
    /// manifests), but not that manifest itself, which the caller writes last so it never
    /// points at missing content.
    pub(crate) async fn tree(&mut self, selector: Selector) -> Result<FetchedManifest> {
        self.node(selector, 0).await
    }

    fn node(&mut self, selector: Selector, depth: u32) -> BoxFuture<'_, Result<FetchedManifest>> {
        Box::pin(async move {
            let fetched =
                verified::fetch_manifest(self.src, &selector, self.limits.max_metadata_bytes)
                    .await?;
            let what = format!("{}{selector}", self.src.describe());
            match manifest::parse(&fetched.raw.bytes, fetched.raw.media_type.as_deref(), &what)? {
                Parsed::Manifest(m) => {
                    let blobs: Vec<_> = std::iter::once(&m.config)
                        .chain(&m.layers)
                        .filter(|b| self.blobs.insert(b.digest.clone()))
                        .collect();
                    let (src, dst, progress) = (self.src, self.dst, self.call.progress.as_ref());
                    verified::all_of(
                        blobs
                            .into_iter()
                            .map(|blob| verified::copy_blob(src, dst, blob, progress)),
                    )
                    .await?;
                }
                Parsed::Index(index) => {
                    if depth >= self.limits.max_index_depth {
                        return Err(Error::limit_exceeded(format!(
                            "{what}: indexes nest deeper than the limit of {}",
                            self.limits.max_index_depth
                        )));
                    }
                    let entries = index.manifests.len() as u64;
                    if entries > self.limits.max_index_entries {
                        return Err(Error::limit_exceeded(format!(
                            "{what}: the index lists {entries} manifests, more than the limit of {}",
                            self.limits.max_index_entries
                        )));
                    }
                    for child in &index.manifests {
                        if !(mt::is_manifest(&child.media_type) || mt::is_index(&child.media_type))
                        {
                            continue;
                        }
                        if self.manifests.contains(&child.digest) {
                            continue;
                        }
                        if self.manifests.len() as u64 >= self.limits.max_index_entries {
                            return Err(Error::limit_exceeded(format!(
                                "{what}: the indexes list more than {} distinct manifests, the limit of one copy",
                                self.limits.max_index_entries
                            )));
                        }
                        let child_selector = Selector {
                            tag: None,
                            digest: Some(child.digest.clone()),
                        };
                        let mut fetched_child = self.node(child_selector, depth + 1).await?;
                        if fetched_child.raw.media_type.is_none() {
                            fetched_child.raw.media_type = Some(child.media_type.clone());
                        }
                        self.dst
                            .put_manifest(&fetched_child.raw, &fetched_child.digest, None)
                            .await?;
                        self.manifests.insert(child.digest.clone());
                    }
                }
            }
            Ok(fetched)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::digest::Descriptor;
    use crate::error::ErrorKind;
    use crate::store::{BlobStream, RawManifest};

    /// A store in memory that counts the manifests read from it.
    #[derive(Default)]
    struct Memory {
        manifests: Mutex<HashMap<Digest, RawManifest>>,
        blobs: Mutex<HashMap<Digest, Bytes>>,
        manifest_reads: AtomicUsize,
    }

    impl Memory {
        fn add_manifest(&self, value: serde_json::Value, media_type: &str) -> Descriptor {
            let bytes = Bytes::from(serde_json::to_vec(&value).unwrap());
            let d = Descriptor::new(media_type, Digest::sha256_of(&bytes), bytes.len() as u64);
            let raw = RawManifest {
                bytes,
                media_type: Some(media_type.into()),
            };
            self.manifests.lock().unwrap().insert(d.digest.clone(), raw);
            d
        }
        fn add_blob(&self, data: &[u8], media_type: &str) -> Descriptor {
            let d = Descriptor::new(media_type, Digest::sha256_of(data), data.len() as u64);
            let bytes = Bytes::copy_from_slice(data);
            self.blobs.lock().unwrap().insert(d.digest.clone(), bytes);
            d
        }
    }

    #[async_trait]
    impl Store for Memory {
        fn describe(&self) -> String {
            "memory:".into()
        }
        async fn resolve(&self, _selector: &Selector) -> Result<Descriptor> {
            unreachable!("copies select by digest")
        }
        async fn manifest(&self, selector: &Selector) -> Result<RawManifest> {
            self.manifest_reads.fetch_add(1, Ordering::SeqCst);
            let digest = selector.digest.as_ref().expect("by digest");
            self.manifests
                .lock()
                .unwrap()
                .get(digest)
                .cloned()
                .ok_or_else(|| Error::not_found(format!("{digest}")))
        }
        async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
            let data = self.blobs.lock().unwrap()[&descriptor.digest].clone();
            Ok(Box::pin(std::io::Cursor::new(data)))
        }
        async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
            Ok(self.blobs.lock().unwrap().contains_key(&descriptor.digest))
        }
        async fn put_blob(&self, descriptor: &Descriptor, mut data: BlobStream) -> Result<()> {
            use tokio::io::AsyncReadExt;
            let mut buf = Vec::new();
            data.read_to_end(&mut buf).await.map_err(Error::from_io)?;
            self.blobs
                .lock()
                .unwrap()
                .insert(descriptor.digest.clone(), buf.into());
            Ok(())
        }
        async fn put_manifest(
            &self,
            manifest: &RawManifest,
            digest: &Digest,
            _tag: Option<&str>,
        ) -> Result<()> {
            self.manifests
                .lock()
                .unwrap()
                .insert(digest.clone(), manifest.clone());
            Ok(())
        }
    }

    fn index_of(children: &[Descriptor]) -> serde_json::Value {
        json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": children})
    }

    fn by_digest(d: &Descriptor) -> Selector {
        Selector {
            tag: None,
            digest: Some(d.digest.clone()),
        }
    }

    /// 4 levels of 16 listings of the same child: 65,536 listings, 5 distinct manifests.
    #[tokio::test]
    async fn nested_indexes_copy_each_digest_once() {
        let src = Memory::default();
        let config = src.add_blob(b"{}", mt::OCI_IMAGE_CONFIG);
        let layer = src.add_blob(b"\0asm\x01\0\0\0", "application/wasm");
        let mut level = src.add_manifest(
            json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST, "config": config, "layers": [layer]}),
            mt::OCI_MANIFEST,
        );
        for _ in 0..4 {
            level = src.add_manifest(index_of(&vec![level; 16]), mt::OCI_INDEX);
        }
        let dst = Memory::default();
        let limits = Limits::default();
        let call = CallOptions::default();
        let top = Copy::new(&src, &dst, &limits, &call)
            .tree(by_digest(&level))
            .await
            .unwrap();
        assert_eq!(top.digest, level.digest);
        assert_eq!(src.manifest_reads.load(Ordering::SeqCst), 5);
        assert_eq!(
            dst.manifests.lock().unwrap().len(),
            4,
            "the children, not the top"
        );
        assert_eq!(dst.blobs.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn copies_apply_the_index_limits() {
        let src = Memory::default();
        let config = src.add_blob(b"{}", mt::OCI_IMAGE_CONFIG);
        let manifests: Vec<Descriptor> = (0..30)
            .map(|i| {
                src.add_manifest(
                    json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST, "config": config, "layers": [], "annotations": {"n": i.to_string()}}),
                    mt::OCI_MANIFEST,
                )
            })
            .collect();
        let call = CallOptions::default();
        let small = Limits {
            max_index_entries: 20,
            ..Limits::default()
        };
        // One index longer than the limit, as `pull` refuses it.
        let wide = src.add_manifest(index_of(&manifests), mt::OCI_INDEX);
        let err = Copy::new(&src, &Memory::default(), &small, &call)
            .tree(by_digest(&wide))
            .await
            .map(drop)
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
        assert!(err.message().contains("lists 30 manifests"), "{err}");
        // Indexes each within the limit, more distinct manifests than it in all.
        let halves = [
            src.add_manifest(index_of(&manifests[..15]), mt::OCI_INDEX),
            src.add_manifest(index_of(&manifests[15..]), mt::OCI_INDEX),
        ];
        let top = src.add_manifest(index_of(&halves), mt::OCI_INDEX);
        let err = Copy::new(&src, &Memory::default(), &small, &call)
            .tree(by_digest(&top))
            .await
            .map(drop)
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
        assert!(err.message().contains("distinct manifests"), "{err}");
        // Within the limits it copies.
        Copy::new(&src, &Memory::default(), &Limits::default(), &call)
            .tree(by_digest(&top))
            .await
            .unwrap();
    }
}
