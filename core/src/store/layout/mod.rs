//! OCI image layout directories (`oci:DIR[:TAG]`), the embedded default store.
//!
//! A layout is `oci-layout`, `index.json` and `blobs/<alg>/<hex>`; a tag is the
//! `org.opencontainers.image.ref.name` annotation of an `index.json` entry (skopeo writes
//! exactly the tag there). Every file we write appears atomically (temp file in the same
//! directory, fsync, rename), so readers never see a partial blob or index and need no
//! lock. Writers of `index.json` serialise on an exclusive lock of the `oci-layout` file,
//! which every layout has and no other tool rewrites: concurrent writers, threads or
//! processes, never lose each other's entries. `index.json` is edited as plain JSON, so
//! fields and entries we do not know are kept.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::digest::{size_mismatch, Descriptor, Digest};
use crate::embed::runtime::{run_blocking, run_brief};
use crate::error::{Error, Result};
use crate::files::{
    commit, open_regular, read_bounded, real_dirs_within, temp_file_in, write_atomic, Existing,
};
use crate::location::Selector;
use crate::manifest;
use crate::media_types::{self as mt};
use crate::store::{Access, BlobStream, RawManifest, Store};

mod index;
mod members;

pub(crate) use members::{
    blob_path, classify_member, Member, BLOBS_DIR, INDEX_FILE, OCI_LAYOUT_FILE,
};

const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Largest `index.json`, `oci-layout` or manifest read into memory. The transfer layer
/// applies the caller's (smaller) limits; this only keeps a hostile layout from making
/// us read an arbitrary file into memory.
pub(crate) const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;
const COPY_BUFFER_BYTES: usize = 256 * 1024;
/// Blobs up to this size are read whole when opened, in the same brief step as the open:
/// streaming them would cost a trip to the blocking pool per read.
const READ_WHOLE_UP_TO: u64 = 64 * 1024;

/// An opened blob: its file, or all of it when small.
enum Opened {
    File(fs::File),
    Read(Vec<u8>),
}

/// An OCI image layout directory.
pub struct LayoutStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// How messages name the store (`oci:DIR`, or the archive a staging layout stands for).
    name: String,
    access: Access,
}

impl LayoutStore {
    /// Opens a layout. `Access::Read` requires an existing layout; `Access::Write` creates
    /// the directory, `oci-layout`, `blobs/` and an empty `index.json` where missing.
    pub async fn open(dir: &Path, access: Access) -> Result<LayoutStore> {
        LayoutStore::open_named(dir, access, format!("oci:{}", dir.display())).await
    }

    /// Like [`LayoutStore::open`], naming the store `name` in messages.
    pub(crate) async fn open_named(
        dir: &Path,
        access: Access,
        name: String,
    ) -> Result<LayoutStore> {
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            name,
            access,
        });
        let worker = inner.clone();
        match access {
            // Reading a layout's two small files is quicker than handing them to a thread.
            Access::Read => run_brief(move |_| worker.check_layout()).await?,
            Access::Write => run_blocking(move |_| worker.create_layout()).await?,
        }
        Ok(LayoutStore { inner })
    }

    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn check_writable(&self) -> Result<()> {
        match self.inner.access {
            Access::Write => Ok(()),
            Access::Read => Err(Error::invalid_argument(format!(
                "{} was opened for reading; open it for writing to store images",
                self.inner.name
            ))),
        }
    }

    /// The descriptors listed in `index.json`, in file order (tags are their
    /// `org.opencontainers.image.ref.name` annotations).
    pub async fn entries(&self) -> Result<Vec<Descriptor>> {
        let inner = self.inner.clone();
        run_brief(move |_| inner.entries()).await
    }
}

impl Inner {
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.dir, digest)
    }

    fn check_layout(&self) -> Result<()> {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::invalid_format(format!(
                    "{}: {} is not a directory (read a tar of a layout with oci-archive:)",
                    self.name,
                    self.dir.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!(
                    "{}: directory {} does not exist",
                    self.name,
                    self.dir.display()
                )))
            }
            Err(e) => {
                return Err(Error::io(
                    format!("{}: reading {}", self.name, self.dir.display()),
                    e,
                ))
            }
        }
        self.check_layout_version()?;
        self.read_index()?;
        Ok(())
    }

    fn create_layout(&self) -> Result<()> {
        let ctx = |what: &str| format!("{}: {what} {}", self.name, self.dir.display());
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::invalid_argument(format!(
                    "{}: {} exists and is not a directory",
                    self.name,
                    self.dir.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.dir).map_err(|e| Error::io(ctx("creating"), e))?
            }
            Err(e) => return Err(Error::io(ctx("reading"), e)),
        }
        if !self.dir.join(OCI_LAYOUT_FILE).exists() {
            // No-clobber: a concurrent creator may win; its file is as good as ours.
            write_atomic(
                &self.dir.join(OCI_LAYOUT_FILE),
                OCI_LAYOUT_CONTENT,
                Existing::Keep,
            )
            .map_err(|e| Error::io(ctx("creating oci-layout in"), e))?;
        }
        self.check_layout_version()?;
        real_dirs_within(&self.dir, &[BLOBS_DIR, "sha256"], &self.name)?;
        if !self.dir.join(INDEX_FILE).exists() {
            let empty = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": mt::OCI_INDEX,
                "manifests": [],
            });
            let bytes = serde_json::to_vec(&empty).expect("JSON values serialise");
            write_atomic(&self.dir.join(INDEX_FILE), &bytes, Existing::Keep)
                .map_err(|e| Error::io(ctx("creating index.json in"), e))?;
        }
        self.read_index()?;
        Ok(())
    }

    fn check_layout_version(&self) -> Result<()> {
        let path = self.dir.join(OCI_LAYOUT_FILE);
        let data = match read_bounded(&path, 64 * 1024, &self.name) {
            Ok(data) => data,
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                let empty = fs::read_dir(&self.dir).is_ok_and(|mut it| it.next().is_none());
                return Err(if empty {
                    Error::not_found(format!(
                        "{}: directory {} is empty, it holds no OCI image layout",
                        self.name,
                        self.dir.display()
                    ))
                } else {
                    Error::invalid_format(format!(
                        "{}: {} is not an OCI image layout: it has no oci-layout file",
                        self.name,
                        self.dir.display()
                    ))
                });
            }
            Err(e) => return Err(e),
        };
        let value: Value = serde_json::from_slice(&data).map_err(|e| {
            Error::invalid_format(format!(
                "{}: {} is not valid JSON: {e}",
                self.name,
                path.display()
            ))
        })?;
        match value.get("imageLayoutVersion").and_then(Value::as_str) {
            Some(v) if v.split('.').next() == Some("1") => Ok(()),
            Some(v) => Err(Error::invalid_format(format!(
                "{}: {} has imageLayoutVersion {v:?}; only 1.x layouts are supported",
                self.name,
                path.display()
            ))),
            None => Err(Error::invalid_format(format!(
                "{}: {} has no imageLayoutVersion",
                self.name,
                path.display()
            ))),
        }
    }
}

#[async_trait]
impl Store for LayoutStore {
    fn is_local(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.inner.name.clone()
    }

    async fn resolve(&self, selector: &Selector) -> Result<Descriptor> {
        let inner = self.inner.clone();
        let selector = selector.clone();
        run_brief(move |_| inner.resolve(&selector)).await
    }

    async fn manifest(&self, selector: &Selector) -> Result<RawManifest> {
        let inner = self.inner.clone();
        let selector = selector.clone();
        run_brief(move |_| inner.read_manifest(&selector)).await
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        // The file name comes only from a validated digest: no path tricks possible. A
        // planted link or FIFO is refused without blocking (files::open_regular).
        let path = self.inner.blob_path(&descriptor.digest);
        let name = self.inner.name.clone();
        let digest = descriptor.digest.clone();
        let size = descriptor.size;
        let opened = run_brief(move |_| {
            let file = match open_regular(&path, &name) {
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                    return Err(Error::not_found(format!("{name}: blob {digest} not found")))
                }
                other => other?,
            };
            if size > READ_WHOLE_UP_TO {
                return Ok(Opened::File(file));
            }
            // One byte more than declared, so a longer file still fails verification.
            let mut bytes = Vec::with_capacity(size as usize + 1);
            let mut limited = io::Read::take(&file, size + 1);
            io::Read::read_to_end(&mut limited, &mut bytes)
                .map_err(|e| Error::io(format!("{name}: cannot read blob {digest}"), e))?;
            Ok(Opened::Read(bytes))
        })
        .await?;
        Ok(match opened {
            Opened::File(file) => Box::pin(tokio::fs::File::from_std(file)),
            Opened::Read(bytes) => Box::pin(std::io::Cursor::new(bytes)),
        })
    }

    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        // A link is not a blob of this layout (reads refuse it), so it is not "present".
        match tokio::fs::symlink_metadata(self.inner.blob_path(&descriptor.digest)).await {
            Ok(meta) => Ok(meta.is_file() && meta.len() == descriptor.size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(
                format!(
                    "{}: looking for blob {}",
                    self.inner.name, descriptor.digest
                ),
                e,
            )),
        }
    }

    async fn put_blob(&self, descriptor: &Descriptor, mut data: BlobStream) -> Result<()> {
        self.check_writable()?;
        // Content-addressed: what is there under this digest is this content.
        if self.has_blob(descriptor).await? {
            return Ok(());
        }
        let write_err = {
            let name = self.inner.name.clone();
            let digest = descriptor.digest.clone();
            move |e: io::Error| Error::io(format!("{name}: writing blob {digest}"), e)
        };
        let final_path = self.inner.blob_path(&descriptor.digest);
        let (file, temp_path) = {
            let write_err = write_err.clone();
            let inner = self.inner.clone();
            let algorithm = descriptor.digest.algorithm_name().to_string();
            run_blocking(move |_| {
                let alg_dir = real_dirs_within(&inner.dir, &[BLOBS_DIR, &algorithm], &inner.name)?;
                Ok(temp_file_in(&alg_dir, ".tmp", 0o644)
                    .map_err(&write_err)?
                    .into_parts())
            })
            .await?
        };
        // From here on, any early return drops `temp_path`, which deletes the temp file.
        let mut file = tokio::fs::File::from_std(file);
        let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
        let mut written = 0u64;
        loop {
            let n = data.read(&mut buffer).await.map_err(Error::from_io)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > descriptor.size {
                return Err(size_mismatch(
                    "blob",
                    &descriptor.digest,
                    descriptor.size,
                    written,
                ));
            }
            file.write_all(&buffer[..n]).await.map_err(&write_err)?;
        }
        if written != descriptor.size {
            return Err(size_mismatch(
                "blob",
                &descriptor.digest,
                descriptor.size,
                written,
            ));
        }
        file.flush().await.map_err(&write_err)?;
        let file = file.into_std().await;
        run_blocking(move |_| {
            let temp = tempfile::NamedTempFile::from_parts(file, temp_path);
            commit(temp, &final_path, Existing::Replace)
                .map(drop)
                .map_err(write_err)
        })
        .await
    }

    async fn put_manifest(
        &self,
        manifest: &RawManifest,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<()> {
        self.check_writable()?;
        if let Some(tag) = tag {
            if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::invalid_argument(format!(
                    "{}: tag {tag:?} must be non-empty, without spaces or control characters",
                    self.inner.name
                )));
            }
        }
        let media_type = manifest::media_type_of(
            &manifest.bytes,
            manifest.media_type.as_deref(),
            &format!("{}: manifest {digest}", self.inner.name),
        )?;
        let descriptor = Descriptor::new(media_type, digest.clone(), manifest.bytes.len() as u64);
        descriptor.verify(&manifest.bytes, "manifest")?;
        let inner = self.inner.clone();
        let bytes = manifest.bytes.clone();
        let tag = tag.map(str::to_string);
        run_blocking(move |_| inner.write_manifest(&bytes, &descriptor, tag.as_deref())).await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::process::Command;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, ReadBuf};

    use super::index::tag_list;
    use super::*;
    use crate::media_types::annotations;
    use crate::store::conformance::{
        assert_consistent, assert_serves, check_store, digest, run, store_image, tag, tiny_image,
        tool, verified,
    };
    use crate::ErrorKind;
    use bytes::Bytes;

    fn index_json(dir: &Path) -> Value {
        serde_json::from_slice(&fs::read(dir.join(INDEX_FILE)).unwrap()).unwrap()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for sub in [dir.to_path_buf(), dir.join("blobs/sha256")] {
            for entry in fs::read_dir(sub).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with(crate::files::TEMP_PREFIX) {
                    found.push(name);
                }
            }
        }
        found
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn round_trip_by_tag_digest_and_sole_image() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("new/store");
        let image = tiny_image("one");
        let writer = LayoutStore::open(&dir, Access::Write).await.unwrap();
        store_image(&writer, &image, Some("v1")).await;
        assert_eq!(
            fs::read(dir.join(OCI_LAYOUT_FILE)).unwrap(),
            br#"{"imageLayoutVersion":"1.0.0"}"#
        );

        let reader = LayoutStore::open(&dir, Access::Read).await.unwrap();
        assert_eq!(reader.describe(), format!("oci:{}", dir.display()));
        assert_serves(&reader, &image, &tag("v1")).await;
        assert_serves(&reader, &image, &digest(&image.manifest_digest)).await;
        assert_serves(&reader, &image, &Selector::default()).await;
        let entry = reader.resolve(&tag("v1")).await.unwrap();
        assert_eq!(entry.annotation(annotations::REF_NAME), Some("v1"));

        // Storing the same image again, untagged, adds no second entry.
        store_image(&writer, &image, None).await;
        assert_eq!(reader.entries().await.unwrap().len(), 1);
        assert!(leftovers(&dir).is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_tag_moves_to_the_new_manifest() {
        let temp = tempfile::tempdir().unwrap();
        let store = LayoutStore::open(temp.path(), Access::Write).await.unwrap();
        let (a, b) = (tiny_image("a"), tiny_image("b"));
        store_image(&store, &a, Some("v1")).await;
        store_image(&store, &a, Some("keep")).await;
        store_image(&store, &b, Some("v1")).await;
        assert_serves(&store, &b, &tag("v1")).await;
        assert_serves(&store, &a, &tag("keep")).await;
        let entries = store.entries().await.unwrap();
        let tags: Vec<_> = entries
            .iter()
            .map(|e| e.annotation(annotations::REF_NAME).unwrap())
            .collect();
        assert_eq!(tags, ["keep", "v1"]);
        // The old manifest stays reachable by digest (it is still tagged "keep").
        assert_serves(&store, &a, &digest(&a.manifest_digest)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn missing_and_ambiguous_selectors() {
        let temp = tempfile::tempdir().unwrap();
        let store = LayoutStore::open(temp.path(), Access::Write).await.unwrap();
        let err = store.resolve(&Selector::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

        store_image(&store, &tiny_image("a"), Some("alpha")).await;
        store_image(&store, &tiny_image("b"), Some("beta")).await;
        let err = store.resolve(&tag("gamma")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.message().contains("\"gamma\"") && err.message().contains("alpha, beta"),
            "{err}"
        );
        let err = store.manifest(&tag("gamma")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);

        let err = store.resolve(&Selector::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("alpha, beta"), "{err}");

        let unknown = Digest::sha256_of(b"nothing");
        let err = store.resolve(&digest(&unknown)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = store
            .open_blob(&Descriptor::new("x", unknown.clone(), 1))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(!store
            .has_blob(&Descriptor::new("x", unknown, 1))
            .await
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unlisted_manifest_blob_resolves_by_digest() {
        let temp = tempfile::tempdir().unwrap();
        let store = LayoutStore::open(temp.path(), Access::Write).await.unwrap();
        let image = tiny_image("child");
        store_image(&store, &image, Some("v1")).await;
        // Drop the index entry, keep the blob: like a child manifest of an index.
        fs::write(
            temp.path().join(INDEX_FILE),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let found = store
            .resolve(&digest(&image.manifest_digest))
            .await
            .unwrap();
        assert_eq!(
            found,
            Descriptor::new(
                mt::OCI_MANIFEST,
                image.manifest_digest.clone(),
                image.manifest.len() as u64
            )
        );
        // A blob that is not a manifest is not taken for one.
        let err = store
            .resolve(&digest(&image.layer_descriptor.digest))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn opening_for_reading_checks_the_layout() {
        let temp = tempfile::tempdir().unwrap();
        let missing = temp.path().join("missing");
        let err = LayoutStore::open(&missing, Access::Read)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.message().contains(&missing.display().to_string()),
            "{err}"
        );
        assert!(!missing.exists());

        let empty = temp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let err = LayoutStore::open(&empty, Access::Read).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

        let other = temp.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("README"), "hi").unwrap();
        let err = LayoutStore::open(&other, Access::Read).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);
        assert!(err.message().contains("oci-layout"), "{err}");

        fs::write(other.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT).unwrap();
        let err = LayoutStore::open(&other, Access::Read).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);
        assert!(err.message().contains("index.json"), "{err}");

        for bad in [
            &b"{not json"[..],
            b"[]",
            br#"{"manifests":{}}"#,
            br#"{"manifests":[{"digest":"sha256:12"}]}"#,
        ] {
            fs::write(other.join(INDEX_FILE), bad).unwrap();
            let result = async {
                let store = LayoutStore::open(&other, Access::Read).await?;
                store.resolve(&tag("x")).await
            }
            .await;
            assert_eq!(
                result.unwrap_err().kind(),
                ErrorKind::InvalidFormat,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }

        fs::write(
            other.join(OCI_LAYOUT_FILE),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        let err = LayoutStore::open(&other, Access::Write)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);

        let file = temp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert_eq!(
            LayoutStore::open(&file, Access::Read)
                .await
                .err()
                .unwrap()
                .kind(),
            ErrorKind::InvalidFormat
        );
        assert_eq!(
            LayoutStore::open(&file, Access::Write)
                .await
                .err()
                .unwrap()
                .kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn conformance_writing_then_reading() {
        let temp = tempfile::tempdir().unwrap();
        let writer = LayoutStore::open(temp.path(), Access::Write).await.unwrap();
        check_store(&writer, Access::Write, &tag("v1")).await;
        let reader = LayoutStore::open(temp.path(), Access::Read).await.unwrap();
        check_store(&reader, Access::Read, &tag("v1")).await;
        check_store(&reader, Access::Read, &tag("v1-index")).await;
    }

    struct FailsAfter {
        data: io::Cursor<Vec<u8>>,
    }

    impl AsyncRead for FailsAfter {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let before = buf.filled().len();
            match Pin::new(&mut self.data).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => Poll::Ready(Err(
                    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset mid-blob"),
                )),
                other => other,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_or_wrong_stream_leaves_no_blob() {
        let temp = tempfile::tempdir().unwrap();
        let store = LayoutStore::open(temp.path(), Access::Write).await.unwrap();
        let data = vec![7u8; 3 * COPY_BUFFER_BYTES + 5];
        let descriptor = Descriptor::for_bytes(mt::OCI_LAYER_TAR, &data);
        let path = blob_path(temp.path(), &descriptor.digest);

        let broken = FailsAfter {
            data: io::Cursor::new(data[..2 * COPY_BUFFER_BYTES].to_vec()),
        };
        let err = store
            .put_blob(&descriptor, Box::pin(broken))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        assert!(!path.exists());

        let mut wrong = data.clone();
        wrong[10] = 8;
        let err = store
            .put_blob(&descriptor, verified(&wrong, &descriptor))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
        assert!(!path.exists());

        // Too short and too long, even from a stream that does not verify.
        for len in [data.len() - 1, data.len() + 1] {
            let stream = Box::pin(io::Cursor::new(vec![7u8; len]));
            let err = store.put_blob(&descriptor, stream).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
            assert!(!path.exists());
        }
        assert!(
            leftovers(temp.path()).is_empty(),
            "{:?}",
            leftovers(temp.path())
        );
        assert!(!store.has_blob(&descriptor).await.unwrap());

        store
            .put_blob(&descriptor, verified(&data, &descriptor))
            .await
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), data);
        // Already there: the stream is not even read.
        store
            .put_blob(
                &descriptor,
                Box::pin(FailsAfter {
                    data: io::Cursor::new(Vec::new()),
                }),
            )
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_manifest_that_does_not_match_its_digest_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let store = LayoutStore::open(temp.path(), Access::Write).await.unwrap();
        let image = tiny_image("m");
        let raw = RawManifest {
            bytes: image.manifest.clone().into(),
            media_type: None,
        };
        let wrong = Digest::sha256_of(b"other");
        let err = store
            .put_manifest(&raw, &wrong, Some("v1"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DigestMismatch);
        assert!(!blob_path(temp.path(), &wrong).exists());
        assert!(store.entries().await.unwrap().is_empty());
        let not_json = RawManifest {
            bytes: Bytes::from_static(b"not json"),
            media_type: None,
        };
        let err = store
            .put_manifest(&not_json, &Digest::sha256_of(b"not json"), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_writers_keep_every_tag() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let dir = dir.clone();
            tasks.push(tokio::spawn(async move {
                // Each task opens the layout itself, like separate processes would.
                let store = LayoutStore::open(&dir, Access::Write).await.unwrap();
                let image = tiny_image(&format!("task{i}"));
                store_image(&store, &image, Some(&format!("t{i}"))).await;
                image.manifest_digest
            }));
        }
        let mut digests = Vec::new();
        for task in tasks {
            digests.push(task.await.unwrap());
        }
        let store = LayoutStore::open(&dir, Access::Read).await.unwrap();
        assert_eq!(store.entries().await.unwrap().len(), 8);
        for (i, expected) in digests.iter().enumerate() {
            assert_eq!(
                &store.resolve(&tag(&format!("t{i}"))).await.unwrap().digest,
                expected
            );
        }
        assert!(leftovers(&dir).is_empty());
    }

    const CHILD_DIR_VAR: &str = "WASM_IMAGE_TEST_LAYOUT_CHILD_DIR";
    const CHILD_NAME_VAR: &str = "WASM_IMAGE_TEST_LAYOUT_CHILD_NAME";

    /// Run by `concurrent_processes_keep_every_tag` in child processes; does nothing otherwise.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "helper run by concurrent_processes_keep_every_tag"]
    async fn child_process_writer() {
        let (Some(dir), Some(name)) = (
            std::env::var_os(CHILD_DIR_VAR),
            std::env::var(CHILD_NAME_VAR).ok(),
        ) else {
            return;
        };
        let store = LayoutStore::open(Path::new(&dir), Access::Write)
            .await
            .unwrap();
        for i in 0..5 {
            let tag = format!("{name}-{i}");
            store_image(&store, &tiny_image(&tag), Some(&tag)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_processes_keep_every_tag() {
        let temp = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..4)
            .map(|p| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "store::layout::tests::child_process_writer",
                        "--ignored",
                        "--quiet",
                    ])
                    .env(CHILD_DIR_VAR, temp.path())
                    .env(CHILD_NAME_VAR, format!("p{p}"))
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let store = LayoutStore::open(temp.path(), Access::Read).await.unwrap();
        let entries = store.entries().await.unwrap();
        assert_eq!(entries.len(), 20, "{}", tag_list(&entries));
        for p in 0..4 {
            for i in 0..5 {
                let name = format!("p{p}-{i}");
                assert_serves(&store, &tiny_image(&name), &tag(&name)).await;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unknown_fields_in_index_json_are_kept() {
        let temp = tempfile::tempdir().unwrap();
        let store = LayoutStore::open(temp.path(), Access::Write).await.unwrap();
        let other = tiny_image("other");
        store_image(&store, &other, None).await;
        let mut index = index_json(temp.path());
        index["annotations"] = serde_json::json!({"com.example": "kept"});
        index["manifests"][0]["platform"] =
            serde_json::json!({"os": "wasip1", "architecture": "wasm"});
        index["manifests"][0]["x-unknown"] = serde_json::json!([1, 2]);
        fs::write(
            temp.path().join(INDEX_FILE),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();

        store_image(&store, &tiny_image("new"), Some("v1")).await;
        let after = index_json(temp.path());
        assert_eq!(after["annotations"], index["annotations"]);
        assert_eq!(after["manifests"][0], index["manifests"][0]);
        assert_eq!(after["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(after["mediaType"], mt::OCI_INDEX);
        assert_eq!(after["schemaVersion"], 2);
    }

    #[test]
    fn layout_members() {
        let hex = "a".repeat(64);
        assert_eq!(classify_member(&["blobs", "sha256"]), Some(Member::Dir));
        assert_eq!(classify_member(&["index.json"]), Some(Member::Index));
        assert!(matches!(
            classify_member(&["blobs", "sha256", &hex]),
            Some(Member::Blob(_))
        ));
        assert_eq!(classify_member(&["blobs", "sha256", "abc"]), None);
        assert_eq!(classify_member(&["blobs", "md5", &hex]), None);
        assert_eq!(classify_member(&["manifest.json"]), None);
    }

    /// Our layouts must be what skopeo and umoci read, and theirs what we read.
    #[tokio::test(flavor = "multi_thread")]
    async fn skopeo_and_umoci_read_our_layouts_and_we_read_theirs() {
        let temp = tempfile::tempdir().unwrap();
        let ours = temp.path().join("ours");
        let image = tiny_image("interop");
        let store = LayoutStore::open(&ours, Access::Write).await.unwrap();
        store_image(&store, &image, Some("v1")).await;
        store_image(&store, &tiny_image("second"), Some("v2")).await;
        let ours_s = ours.display().to_string();

        if let Some(skopeo) = tool("skopeo") {
            let raw = run(&skopeo, &["inspect", "--raw", &format!("oci:{ours_s}:v1")]);
            assert_eq!(raw, image.manifest);
            // skopeo writes a layout of its own, and adds a tag to ours.
            let theirs = temp.path().join("theirs").display().to_string();
            run(
                &skopeo,
                &[
                    "--insecure-policy",
                    "copy",
                    &format!("oci:{ours_s}:v1"),
                    &format!("oci:{theirs}:copied"),
                ],
            );
            run(
                &skopeo,
                &[
                    "--insecure-policy",
                    "copy",
                    &format!("oci:{ours_s}:v1"),
                    &format!("oci:{ours_s}:by-skopeo"),
                ],
            );
            // skopeo gzips uncompressed layers on the way into a fresh layout: same config,
            // new layer and manifest, every blob matching its descriptor.
            let theirs = LayoutStore::open(Path::new(&theirs), Access::Read)
                .await
                .unwrap();
            let (manifest, blobs) = assert_consistent(&theirs, &tag("copied")).await;
            assert_eq!(manifest.config.digest, image.config_descriptor.digest);
            assert_eq!(blobs[0], image.config);
            assert_eq!(manifest.layers[0].media_type, mt::OCI_LAYER_TAR_GZIP);
            let reopened = LayoutStore::open(&ours, Access::Write).await.unwrap();
            for name in ["v1", "by-skopeo"] {
                assert_serves(&reopened, &image, &tag(name)).await;
            }
            // And we still add to a layout skopeo rewrote.
            store_image(&reopened, &tiny_image("third"), Some("v3")).await;
            assert_eq!(reopened.entries().await.unwrap().len(), 4);
        }
        if let Some(umoci) = tool("umoci") {
            let listed = String::from_utf8(run(&umoci, &["ls", "--layout", &ours_s])).unwrap();
            assert!(
                listed.lines().any(|l| l == "v1") && listed.lines().any(|l| l == "v2"),
                "{listed}"
            );
            let stat = String::from_utf8(run(
                &umoci,
                &["stat", "--image", &format!("{ours_s}:v1"), "--json"],
            ))
            .unwrap();
            assert!(stat.contains("interop"), "{stat}");
        }
    }
}
