//! `oci-archive:FILE[:TAG]`: a tar of an OCI image layout, as `skopeo copy …
//! oci-archive:FILE:TAG` writes it.
//!
//! The archive is unpacked into a private staging directory and served by a
//! [`LayoutStore`] over it. Unpacking is strict: only regular files and directories at
//! the paths a layout has (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) are written;
//! an absolute or `..` path, or a link or device where a layout file belongs, rejects the
//! whole archive. Anything else (the `manifest.json` and legacy folders that Docker 25+
//! `docker save` adds beside its layout) is skipped, never written.
//!
//! Writes go to the staging layout (seeded from the existing archive, so its other tags
//! are kept); [`Store::commit`] writes a deterministic tar next to the target and renames
//! it over the target. Until then the target is untouched, and dropping the store without
//! committing writes nothing.

use std::fs;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tempfile::TempDir;

use crate::digest::{Descriptor, Digest};
use crate::embed::runtime::run_blocking;
use crate::error::{Error, Result};
use crate::files::{commit, temp_file_in, Existing, TEMP_PREFIX};
use crate::location::Selector;
use crate::store::layout::{
    classify_member, LayoutStore, Member, BLOBS_DIR, INDEX_FILE, OCI_LAYOUT_FILE,
};
use crate::store::tar_safety::{
    bad_tar, checked_entries, describe_entry_type, reject_compressed, HeaderBudget,
};
use crate::store::{Access, BlobStream, RawManifest, Store};

pub struct OciArchiveStore {
    file: PathBuf,
    name: String,
    access: Access,
    layout: LayoutStore,
    commit_lock: tokio::sync::Mutex<()>,
    /// Declared last so it is removed after the layout store over it is dropped.
    staging: TempDir,
}

impl OciArchiveStore {
    /// Opens an archive. `Access::Read` requires it to exist; `Access::Write` starts from
    /// its contents when it exists (an empty file counts as absent), else from nothing.
    pub async fn open(file: &Path, access: Access) -> Result<OciArchiveStore> {
        let name = format!("oci-archive:{}", file.display());
        let staging = {
            let (file, name) = (file.to_path_buf(), name.clone());
            run_blocking(move |_| {
                let existing = match fs::metadata(&file) {
                    Ok(meta) if meta.is_dir() => {
                        return Err(Error::invalid_argument(format!(
                            "{name}: {} is a directory (a layout directory is read with oci:DIR)",
                            file.display()
                        )))
                    }
                    Ok(meta) => access == Access::Read || meta.len() > 0,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if access == Access::Read {
                            return Err(Error::not_found(format!(
                                "{name}: archive {} does not exist",
                                file.display()
                            )));
                        }
                        false
                    }
                    Err(e) => {
                        return Err(Error::io(format!("{name}: reading {}", file.display()), e))
                    }
                };
                let staging = tempfile::Builder::new()
                    .prefix(".wasm-image-oci-archive-")
                    .tempdir()
                    .map_err(|e| Error::io(format!("{name}: creating a staging directory"), e))?;
                if existing {
                    extract_layout(&file, staging.path(), &name)?;
                }
                Ok(staging)
            })
            .await?
        };
        let layout = LayoutStore::open_named(staging.path(), access, name.clone()).await?;
        Ok(OciArchiveStore {
            file: file.to_path_buf(),
            name,
            access,
            layout,
            commit_lock: tokio::sync::Mutex::new(()),
            staging,
        })
    }
}

#[async_trait]
impl Store for OciArchiveStore {
    fn is_local(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    async fn resolve(&self, selector: &Selector) -> Result<Descriptor> {
        self.layout.resolve(selector).await
    }

    async fn manifest(&self, selector: &Selector) -> Result<RawManifest> {
        self.layout.manifest(selector).await
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        self.layout.open_blob(descriptor).await
    }

    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        self.layout.has_blob(descriptor).await
    }

    async fn put_blob(&self, descriptor: &Descriptor, data: BlobStream) -> Result<()> {
        self.layout.put_blob(descriptor, data).await
    }

    async fn put_manifest(
        &self,
        manifest: &RawManifest,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<()> {
        self.layout.put_manifest(manifest, digest, tag).await
    }

    /// Writes the archive: a deterministic tar in a temp file beside the target, fsynced,
    /// then renamed over it.
    async fn commit(&self) -> Result<()> {
        if self.access == Access::Read {
            return Ok(());
        }
        let _one_at_a_time = self.commit_lock.lock().await;
        let (dir, file, name) = (
            self.staging.path().to_path_buf(),
            self.file.clone(),
            self.name.clone(),
        );
        run_blocking(move |_| write_archive(&dir, &file, &name)).await
    }
}

fn extract_layout(file: &Path, dest: &Path, name: &str) -> Result<()> {
    let bad_tar = bad_tar(name);
    let mut input =
        fs::File::open(file).map_err(|e| Error::io(format!("{name}: opening the archive"), e))?;
    reject_compressed(&mut input, name)?;
    let budget = HeaderBudget::default();
    let mut archive = tar::Archive::new(budget.reader(BufReader::new(input)));
    let mut skipped_docker_manifest = false;
    // Seeking past what is not unpacked, so only headers are read between entries.
    let entries = archive.entries_with_seek().map_err(&bad_tar)?;
    for checked in checked_entries(entries, budget.clone(), name) {
        let (mut entry, components) = checked?;
        let parts: Vec<&str> = components.iter().map(String::as_str).collect();
        let member = classify_member(&parts);
        let shown = components.join("/");
        let entry_type = entry.header().entry_type();
        let target = dest.join(&shown);
        let io_err = |e: io::Error| Error::io(format!("{name}: unpacking {shown}"), e);
        match (entry_type, member.clone()) {
            (tar::EntryType::XGlobalHeader | tar::EntryType::XHeader, _) => {}
            (_, None) => {
                // Not part of a layout: never written, whatever it is.
                skipped_docker_manifest |= parts == ["manifest.json"];
            }
            (tar::EntryType::Directory, Some(Member::Dir)) => {
                fs::create_dir_all(&target).map_err(io_err)?
            }
            (tar::EntryType::Regular | tar::EntryType::Continuous, Some(member))
                if member != Member::Dir =>
            {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io_err)?;
                }
                let mut out = match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                {
                    Ok(out) => out,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(Error::invalid_format(format!(
                            "{name}: entry {shown} appears twice in the archive"
                        )))
                    }
                    Err(e) => return Err(io_err(e)),
                };
                io::copy(&mut entry, &mut out).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        bad_tar(e)
                    } else {
                        io_err(e)
                    }
                })?;
            }
            (other, Some(_)) => {
                return Err(Error::invalid_format(format!(
                "{name}: entry {shown} is a {} where an OCI layout has a {}; refusing the archive",
                describe_entry_type(other),
                if member == Some(Member::Dir) {
                    "directory"
                } else {
                    "regular file"
                }
            )))
            }
        }
    }
    for required in [OCI_LAYOUT_FILE, INDEX_FILE] {
        if !dest.join(required).is_file() {
            let hint = if skipped_docker_manifest {
                " (it has a manifest.json: read it with docker-archive:)"
            } else {
                ""
            };
            return Err(Error::invalid_format(format!(
                "{name}: the archive has no {required}, so it is not an OCI archive{hint}"
            )));
        }
    }
    Ok(())
}

/// The layout's members in the staging directory, sorted: `(path in the tar, file)`,
/// `None` for directories. Our temp files and anything foreign are left out.
fn layout_members(dir: &Path, name: &str) -> Result<Vec<(String, Option<PathBuf>)>> {
    let io_err = |e: io::Error| Error::io(format!("{name}: reading the staging directory"), e);
    let mut out = vec![
        (OCI_LAYOUT_FILE.to_string(), Some(dir.join(OCI_LAYOUT_FILE))),
        (INDEX_FILE.to_string(), Some(dir.join(INDEX_FILE))),
        (BLOBS_DIR.to_string(), None),
    ];
    for alg in fs::read_dir(dir.join(BLOBS_DIR)).map_err(io_err)? {
        let alg = alg.map_err(io_err)?;
        let Some(alg_name) = alg.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if classify_member(&[BLOBS_DIR, &alg_name]) != Some(Member::Dir)
            || !alg.file_type().map_err(io_err)?.is_dir()
        {
            continue;
        }
        out.push((format!("{BLOBS_DIR}/{alg_name}"), None));
        for blob in fs::read_dir(alg.path()).map_err(io_err)? {
            let blob = blob.map_err(io_err)?;
            let Some(hex) = blob.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if hex.starts_with(TEMP_PREFIX) || !blob.file_type().map_err(io_err)?.is_file() {
                continue;
            }
            if let Some(Member::Blob(_)) = classify_member(&[BLOBS_DIR, &alg_name, &hex]) {
                out.push((format!("{BLOBS_DIR}/{alg_name}/{hex}"), Some(blob.path())));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn write_archive(dir: &Path, target: &Path, name: &str) -> Result<()> {
    let io_err = |e: io::Error| Error::io(format!("{name}: writing the archive"), e);
    if target.file_name().and_then(|f| f.to_str()).is_none() {
        return Err(Error::invalid_argument(format!(
            "{name}: {} does not name a file",
            target.display()
        )));
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if target.is_dir() {
        return Err(Error::invalid_argument(format!(
            "{name}: {} is a directory",
            target.display()
        )));
    }
    fs::create_dir_all(&parent).map_err(io_err)?;
    let members = layout_members(dir, name)?;

    let mut temp = temp_file_in(&parent, ".tmp", 0o644).map_err(io_err)?;
    {
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, temp.as_file_mut()));
        for (path, source) in members {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            match source {
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, &path, io::empty())
                        .map_err(io_err)?;
                }
                Some(file) => {
                    let file = fs::File::open(&file).map_err(io_err)?;
                    let len = file.metadata().map_err(io_err)?.len();
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(len);
                    tar.append_data(&mut header, &path, file.take(len))
                        .map_err(io_err)?;
                }
            }
        }
        let buffered = tar.into_inner().map_err(io_err)?;
        buffered.into_inner().map_err(|e| io_err(e.into_error()))?;
    }
    commit(temp, target, Existing::Replace)
        .map(drop)
        .map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types as mt;
    use crate::store::conformance::{
        assert_consistent, assert_serves, check_store, run, store_image, tag, tiny_image, tool,
        TinyImage,
    };
    use crate::ErrorKind;

    async fn write_archive_with(file: &Path, images: &[(&TinyImage, &str)]) {
        let store = OciArchiveStore::open(file, Access::Write).await.unwrap();
        for (image, name) in images {
            store_image(&store, image, Some(name)).await;
        }
        store.commit().await.unwrap();
    }

    /// Name, type, content, link target.
    type RawEntry<'a> = (&'a str, tar::EntryType, &'a [u8], &'a str);

    /// A tar built entry by entry, names and link targets written raw (no checks).
    fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, entry_type, data, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(*entry_type);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn tar_listing(data: &[u8]) -> Vec<(String, tar::EntryType, u64, u32, u64, u64)> {
        let mut archive = tar::Archive::new(data);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.mtime().unwrap(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn commit_writes_a_deterministic_archive_we_read_back() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("sub/image.tar");
        let image = tiny_image("archived");
        let store = OciArchiveStore::open(&file, Access::Write).await.unwrap();
        assert_eq!(store.describe(), format!("oci-archive:{}", file.display()));
        store_image(&store, &image, Some("v1")).await;
        assert!(!file.exists(), "nothing is written before commit");
        store.commit().await.unwrap();
        drop(store);

        let data = fs::read(&file).unwrap();
        let listing = tar_listing(&data);
        let names: Vec<&str> = listing.iter().map(|e| e.0.as_str()).collect();
        let blob = |d: &Descriptor| format!("blobs/sha256/{}", d.digest.hex());
        let mut expected = vec![
            "blobs".to_string(),
            "blobs/sha256".to_string(),
            blob(&image.config_descriptor),
            blob(&image.layer_descriptor),
            format!("blobs/sha256/{}", image.manifest_digest.hex()),
            "index.json".to_string(),
            "oci-layout".to_string(),
        ];
        expected[2..5].sort();
        assert_eq!(names, expected);
        for (name, entry_type, mtime, mode, uid, gid) in &listing {
            assert_eq!((*mtime, *uid, *gid), (0, 0, 0), "{name}");
            let want = if entry_type.is_dir() { 0o755 } else { 0o644 };
            assert_eq!(*mode, want, "{name}");
        }
        assert!(
            fs::read_dir(temp.path().join("sub")).unwrap().count() == 1,
            "no temp file left"
        );

        let reader = OciArchiveStore::open(&file, Access::Read).await.unwrap();
        assert_serves(&reader, &image, &tag("v1")).await;
        assert_serves(&reader, &image, &Selector::default()).await;
        // A reader commits nothing.
        reader.commit().await.unwrap();

        // The same content gives the same bytes.
        let again = temp.path().join("again.tar");
        write_archive_with(&again, &[(&image, "v1")]).await;
        assert_eq!(fs::read(&again).unwrap(), data);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn conformance_writing_then_reading() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("image.tar");
        let writer = OciArchiveStore::open(&file, Access::Write).await.unwrap();
        check_store(&writer, Access::Write, &tag("v1")).await;
        writer.commit().await.unwrap();
        let reader = OciArchiveStore::open(&file, Access::Read).await.unwrap();
        check_store(&reader, Access::Read, &tag("v1")).await;
        check_store(&reader, Access::Read, &tag("v1-index")).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_target_changes_only_on_commit_and_keeps_other_tags() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("image.tar");
        let (one, two) = (tiny_image("one"), tiny_image("two"));
        write_archive_with(&file, &[(&one, "v1")]).await;
        let before = fs::read(&file).unwrap();

        let store = OciArchiveStore::open(&file, Access::Write).await.unwrap();
        store_image(&store, &two, Some("v2")).await;
        assert_eq!(fs::read(&file).unwrap(), before);
        drop(store);
        assert_eq!(
            fs::read(&file).unwrap(),
            before,
            "dropped without commit: unchanged"
        );
        assert_eq!(fs::read_dir(temp.path()).unwrap().count(), 1);

        let store = OciArchiveStore::open(&file, Access::Write).await.unwrap();
        store_image(&store, &two, Some("v2")).await;
        store.commit().await.unwrap();
        let reader = OciArchiveStore::open(&file, Access::Read).await.unwrap();
        assert_serves(&reader, &one, &tag("v1")).await;
        assert_serves(&reader, &two, &tag("v2")).await;

        // An empty file (from mktemp, say) is a fine place to write a new archive.
        let empty = temp.path().join("empty.tar");
        fs::write(&empty, b"").unwrap();
        write_archive_with(&empty, &[(&one, "v1")]).await;
        assert_serves(
            &OciArchiveStore::open(&empty, Access::Read).await.unwrap(),
            &one,
            &tag("v1"),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn missing_compressed_and_foreign_archives() {
        let temp = tempfile::tempdir().unwrap();
        let missing = temp.path().join("missing.tar");
        let err = OciArchiveStore::open(&missing, Access::Read)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("missing.tar"), "{err}");

        let gz = temp.path().join("image.tar.gz");
        fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let err = OciArchiveStore::open(&gz, Access::Read)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);
        assert!(err.message().contains("gzip"), "{err}");
        // Writing over something that is not an OCI archive is refused, not clobbered.
        let err = OciArchiveStore::open(&gz, Access::Write)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);

        let docker = temp.path().join("docker.tar");
        fs::write(
            &docker,
            raw_tar(&[("manifest.json", tar::EntryType::Regular, b"[]", "")]),
        )
        .unwrap();
        let err = OciArchiveStore::open(&docker, Access::Read)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);
        assert!(err.message().contains("docker-archive:"), "{err}");

        let garbage = temp.path().join("garbage.tar");
        fs::write(&garbage, vec![b'x'; 1024]).unwrap();
        let err = OciArchiveStore::open(&garbage, Access::Read)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{err}");

        let err = OciArchiveStore::open(temp.path(), Access::Read)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn malicious_entries_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        let layout: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let index: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;
        let escape = format!("../wasm-image-escape-{}", std::process::id());
        let blob = format!("blobs/sha256/{}", Digest::sha256_of(b"x").hex());
        let cases: Vec<(&str, &str, Vec<RawEntry>)> = vec![
            (
                "dot-dot",
                "\"..\"",
                vec![(&escape, tar::EntryType::Regular, b"x", "")],
            ),
            (
                "dot-dot inside",
                "\"..\"",
                vec![("blobs/../../x", tar::EntryType::Regular, b"x", "")],
            ),
            (
                "absolute",
                "absolute",
                vec![("/tmp/wasm-image-abs", tar::EntryType::Regular, b"x", "")],
            ),
            (
                "symlink index",
                "symbolic link",
                vec![("index.json", tar::EntryType::Symlink, b"", "/etc/passwd")],
            ),
            (
                "symlink blob",
                "symbolic link",
                vec![(
                    &blob,
                    tar::EntryType::Symlink,
                    b"",
                    "../../../../etc/passwd",
                )],
            ),
            (
                "hardlink blob",
                "hard link",
                vec![(&blob, tar::EntryType::Link, b"", "oci-layout")],
            ),
            (
                "symlinked dir",
                "symbolic link",
                vec![("blobs", tar::EntryType::Symlink, b"", "/tmp")],
            ),
            (
                "device",
                "device",
                vec![("oci-layout", tar::EntryType::Char, b"", "")],
            ),
            (
                "duplicate",
                "twice",
                vec![
                    ("index.json", tar::EntryType::Regular, index, ""),
                    ("index.json", tar::EntryType::Regular, index, ""),
                ],
            ),
        ];
        for (what, expected, mut entries) in cases {
            entries.insert(0, ("oci-layout", tar::EntryType::Regular, layout, ""));
            if what != "duplicate" && what != "symlink index" {
                entries.push(("index.json", tar::EntryType::Regular, index, ""));
            }
            let file = temp.path().join("evil.tar");
            fs::write(&file, raw_tar(&entries)).unwrap();
            for access in [Access::Read, Access::Write] {
                let err = OciArchiveStore::open(&file, access).await.err().unwrap();
                assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{what}: {err}");
                assert!(err.message().contains(expected), "{what}: {err}");
            }
        }
        assert!(!std::env::temp_dir().join(&escape[3..]).exists());
        assert!(!Path::new("/tmp/wasm-image-abs").exists());

        // Links and files outside the layout (Docker 25+ adds them beside its layout) are
        // skipped, not written and not fatal.
        let file = temp.path().join("extra.tar");
        fs::write(
            &file,
            raw_tar(&[
                ("oci-layout", tar::EntryType::Regular, layout, ""),
                ("index.json", tar::EntryType::Regular, index, ""),
                ("manifest.json", tar::EntryType::Regular, b"[]", ""),
                (
                    "abc/layer.tar",
                    tar::EntryType::Symlink,
                    b"",
                    "../../../etc/passwd",
                ),
                ("repositories", tar::EntryType::Regular, b"{}", ""),
            ]),
        )
        .unwrap();
        let store = OciArchiveStore::open(&file, Access::Read).await.unwrap();
        assert_eq!(
            store
                .resolve(&Selector::default())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        let staged: Vec<_> = fs::read_dir(store.staging.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !staged
                .iter()
                .any(|n| n == "manifest.json" || n == "abc" || n == "repositories"),
            "{staged:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn long_sha512_names_and_dot_slash_entries() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("sha512.tar");
        let data = b"a blob named by sha512".to_vec();
        let mut hasher = crate::digest::Hasher::new(crate::digest::Algorithm::Sha512);
        hasher.update(&data);
        let descriptor = Descriptor::new(mt::OCI_LAYER_TAR, hasher.finish(), data.len() as u64);
        let store = OciArchiveStore::open(&file, Access::Write).await.unwrap();
        let stream = Box::pin(crate::digest::VerifyingReader::new(
            io::Cursor::new(data.clone()),
            &descriptor,
            "blob",
        ));
        store.put_blob(&descriptor, stream).await.unwrap();
        store.commit().await.unwrap();
        let reader = OciArchiveStore::open(&file, Access::Read).await.unwrap();
        assert!(reader.has_blob(&descriptor).await.unwrap());

        let layout: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let index: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;
        let dotted = temp.path().join("dotted.tar");
        fs::write(
            &dotted,
            raw_tar(&[
                ("./", tar::EntryType::Directory, b"", ""),
                ("./oci-layout", tar::EntryType::Regular, layout, ""),
                ("./index.json", tar::EntryType::Regular, index, ""),
                ("./blobs/", tar::EntryType::Directory, b"", ""),
            ]),
        )
        .unwrap();
        OciArchiveStore::open(&dotted, Access::Read).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn skopeo_reads_our_archives_and_we_read_its() {
        let Some(skopeo) = tool("skopeo") else { return };
        let temp = tempfile::tempdir().unwrap();
        let image = tiny_image("skopeo-archive");
        let ours = temp.path().join("ours.tar");
        write_archive_with(&ours, &[(&image, "v1"), (&tiny_image("other"), "v2")]).await;
        let ours_ref = format!("oci-archive:{}:v1", ours.display());
        assert_eq!(
            run(&skopeo, &["inspect", "--raw", &ours_ref]),
            image.manifest
        );
        let copied = temp.path().join("copied");
        run(
            &skopeo,
            &[
                "--insecure-policy",
                "copy",
                &ours_ref,
                &format!("oci:{}:c", copied.display()),
            ],
        );
        let copied = LayoutStore::open(&copied, Access::Read).await.unwrap();
        let (manifest, _) = assert_consistent(&copied, &tag("c")).await;
        assert_eq!(manifest.config.digest, image.config_descriptor.digest);

        let theirs = temp.path().join("theirs.tar");
        run(
            &skopeo,
            &[
                "--insecure-policy",
                "copy",
                &ours_ref,
                &format!("oci-archive:{}:t", theirs.display()),
            ],
        );
        let theirs = OciArchiveStore::open(&theirs, Access::Read).await.unwrap();
        let (manifest, blobs) = assert_consistent(&theirs, &tag("t")).await;
        assert_eq!(blobs[0], image.config);
        assert!(
            manifest.layers[0].media_type == mt::OCI_LAYER_TAR
                || manifest.layers[0].media_type == mt::OCI_LAYER_TAR_GZIP
        );
    }
}
