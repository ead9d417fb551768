//! Hand-made OCI layouts for tests: written byte by byte, independent of the library's
//! own writers, so a reader bug cannot hide behind a matching writer bug.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

pub mod cosign;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// A valid core module: the header and one custom section (`\x00 len "\x04name" payload`).
pub const MODULE: &[u8] = b"\0asm\x01\0\0\0\x00\x06\x04name\x00";
pub const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
}

pub struct Layout {
    pub dir: tempfile::TempDir,
}

impl Layout {
    pub fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        Layout { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stores a blob under its true digest and returns that digest.
    pub fn blob(&self, data: &[u8]) -> String {
        let digest = sha256(data);
        self.blob_as(&digest, data);
        digest
    }

    /// Stores bytes under a chosen digest (to make lying blobs).
    pub fn blob_as(&self, digest: &str, data: &[u8]) {
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::write(self.path().join("blobs/sha256").join(hex), data).unwrap();
    }

    /// Writes manifest bytes as a blob and lists it in index.json under `tag`.
    pub fn tag(&self, tag: &str, manifest: &[u8], media_type: &str) -> String {
        let digest = self.blob(manifest);
        let index_path = self.path().join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": media_type,
            "digest": digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }));
        std::fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        digest
    }

    pub fn location(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.path().display())
    }

    /// An image manifest over a config and layers, each given as (media type, bytes).
    pub fn image(
        &self,
        tag: &str,
        config: (&str, &[u8]),
        layers: &[(&str, &[u8])],
        extra: Value,
    ) -> String {
        let config_desc = descriptor(config.0, config.1);
        self.blob(config.1);
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|(mt, data)| {
                self.blob(data);
                descriptor(mt, data)
            })
            .collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": layer_descs,
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut manifest, extra) {
            m.extend(e);
        }
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let media_type = manifest["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string();
        self.tag(tag, &bytes, &media_type);
        self.location(tag)
    }
}

pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Dir(&'a str),
    /// A regular file whose name is written raw into the header (for `../` tricks the
    /// tar crate's safe setters refuse).
    RawName(&'a [u8], &'a [u8]),
}

pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        match e {
            Entry::File(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, *data).unwrap();
            }
            Entry::Symlink(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
            Entry::Hardlink(name, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
            Entry::Dir(name) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
            Entry::RawName(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const IMAGE_CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;

pub fn out_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin.wasm");
    (dir, file)
}

/// Lists a directory's entries (to prove a failed pull left nothing behind).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The running test bed (`tests/support/testbed.py`), or `None` with a note when
/// `$WASM_IMAGE_TESTBED` is unset.
/// The test bed's description. Tests that call this are compiled as ignored without
/// `WASM_IMAGE_TESTBED` (see `core/build.rs`), so reaching here without it is a mistake.
pub fn testbed() -> Value {
    let path = std::env::var("WASM_IMAGE_TESTBED")
        .expect("WASM_IMAGE_TESTBED names the test bed's testbed.json (tests/support/testbed.py)");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("testbed.json is JSON")
}

pub fn bed_str(bed: &Value, path: &[&str]) -> String {
    path.iter()
        .fold(bed, |v, p| &v[*p])
        .as_str()
        .unwrap_or_else(|| panic!("testbed.json lacks {path:?}"))
        .to_string()
}

/// A repository name no other test uses, so tests can share servers and logs.
pub fn unique(test: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The requests the test bed's fault proxy saw whose path contains `part` (blocking HTTP,
/// usable from any test).
pub fn fault_log(bed: &Value, part: &str) -> Vec<Value> {
    let url = format!("{}?match={part}", bed_str(bed, &["faulty", "log"]));
    let out = std::process::Command::new("curl")
        .args(["-sf", "--noproxy", "*", &url])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "GET {url} failed");
    serde_json::from_slice(&out.stdout).expect("a JSON log")
}

/// Adds fault rules to the test bed's fault proxy (blocking HTTP, usable from any test).
pub fn add_faults(bed: &Value, rules: Value) {
    let url = bed_str(bed, &["faulty", "control"]);
    let status = std::process::Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
        ])
        .arg(rules.to_string())
        .arg(&url)
        .status()
        .expect("curl runs");
    assert!(status.success(), "fault proxy refused {rules}");
}
