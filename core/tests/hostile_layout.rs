//! Layouts with planted links and FIFOs: reads refuse anything but regular files without
//! ever blocking, and writes refuse to go through a linked directory of the layout.
#![cfg(unix)]

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;
use wasm_image::{CallOptions, Client, ClientOptions, ErrorKind, WasmImage};

const CONFIG_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
const MODULE_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
const CONFIG: &[u8] = br#"{"type":"envoy_proxy"}"#;

/// Where a case plants its link or FIFO.
type PathOf = fn(&Layout) -> std::path::PathBuf;

/// Bounds a call that would hang on a FIFO without the fix; generous for a busy machine.
const HANG: Duration = Duration::from_secs(60);

fn client() -> Client {
    Client::new(ClientOptions {
        use_config_files: false,
        ..Default::default()
    })
    .unwrap()
}

/// A layout holding one valid image tagged `v1`; returns it and the image's location.
fn layout_with_image() -> (Layout, String) {
    let layout = Layout::new();
    let location = layout.image(
        "v1",
        (CONFIG_TYPE, CONFIG),
        &[(MODULE_TYPE, MODULE)],
        json!({}),
    );
    (layout, location)
}

fn blob(layout: &Layout, digest: &str) -> std::path::PathBuf {
    layout
        .path()
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn manifest_digest(layout: &Layout) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn replace_with_fifo(path: &Path) {
    std::fs::remove_file(path).unwrap();
    let name = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Whether some thread still has the FIFO open for reading, or waits in an open for
/// reading: then a non-blocking open for writing succeeds (and releases that thread).
fn fifo_has_reader(path: &Path) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .is_ok()
}

async fn pull_refused(location: &str, fifo: Option<&Path>) -> wasm_image::Error {
    let pulled = tokio::time::timeout(HANG, client().pull(location, &CallOptions::default())).await;
    let Ok(result) = pulled else {
        if let Some(fifo) = fifo {
            // Release the stuck thread so the test process can end.
            fifo_has_reader(fifo);
        }
        panic!("pull of {location} hung on a planted FIFO");
    };
    let err = result.expect_err("a planted FIFO or link must not read as an image");
    if let Some(fifo) = fifo {
        assert!(
            !fifo_has_reader(fifo),
            "a thread is left holding or waiting on the FIFO"
        );
    }
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_in_place_of_any_layout_file_is_refused_without_blocking() {
    let cases: [(&str, PathOf); 5] = [
        ("manifest blob", |l| blob(l, &manifest_digest(l))),
        ("module layer blob", |l| blob(l, &sha256(MODULE))),
        ("config blob", |l| blob(l, &sha256(CONFIG))),
        ("index.json", |l| l.path().join("index.json")),
        ("oci-layout", |l| l.path().join("oci-layout")),
    ];
    for (what, path_of) in cases {
        let (layout, location) = layout_with_image();
        let path = path_of(&layout);
        replace_with_fifo(&path);
        let err = pull_refused(&location, Some(&path)).await;
        assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{what}: {err}");
        assert!(err.message().contains("FIFO"), "{what}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_layout_file_is_not_followed() {
    let cases: [(&str, PathOf); 3] = [
        ("manifest blob", |l| blob(l, &manifest_digest(l))),
        ("module layer blob", |l| blob(l, &sha256(MODULE))),
        ("index.json", |l| l.path().join("index.json")),
    ];
    for (what, path_of) in cases {
        let (layout, location) = layout_with_image();
        let path = path_of(&layout);
        // The link points at the very same bytes, moved elsewhere: only the link is wrong.
        let elsewhere = tempfile::tempdir().unwrap();
        let moved = elsewhere.path().join("moved");
        std::fs::rename(&path, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &path).unwrap();
        let err = pull_refused(&location, None).await;
        assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{what}: {err}");
        assert!(err.message().contains("symbolic link"), "{what}: {err}");
    }
}

async fn an_image() -> WasmImage {
    let (_layout, location) = layout_with_image();
    client()
        .pull(&location, &CallOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_never_writes_through_a_symlinked_layout_directory() {
    let image = an_image().await;
    for linked in ["blobs", "blobs/sha256"] {
        let target = Layout::new();
        let outside = tempfile::tempdir().unwrap();
        let linked_path = target.path().join(linked);
        std::fs::remove_dir_all(&linked_path).unwrap();
        if linked == "blobs" {
            std::fs::create_dir(outside.path().join("sha256")).unwrap();
        }
        std::os::unix::fs::symlink(outside.path(), &linked_path).unwrap();
        let err = client()
            .push(&image, &target.location("v1"), &CallOptions::default())
            .await
            .expect_err("a push through a planted link");
        assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{linked}: {err}");
        assert!(err.message().contains("symbolic link"), "{linked}: {err}");
        let written: Vec<_> = walk(outside.path());
        assert!(
            written.is_empty(),
            "{linked}: files written outside the layout: {written:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_blob_is_replaced_by_the_real_blob_on_push() {
    // A link in place of a blob is not that blob: a push writes the real file over the
    // link (never through it), and the pushed image then reads back.
    let image = an_image().await;
    let target = Layout::new();
    let decoy_dir = tempfile::tempdir().unwrap();
    let decoy = decoy_dir.path().join("decoy");
    std::fs::write(&decoy, MODULE).unwrap();
    let module_blob = blob(&target, &sha256(MODULE));
    std::os::unix::fs::symlink(&decoy, &module_blob).unwrap();
    client()
        .push(&image, &target.location("v1"), &CallOptions::default())
        .await
        .unwrap();
    assert!(!std::fs::symlink_metadata(&module_blob)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&decoy).unwrap(), MODULE);
    let back = client()
        .pull(&target.location("v1"), &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(&back.module()[..], MODULE);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            found.extend(walk(&entry.path()));
        } else {
            found.push(entry.path().display().to_string());
        }
    }
    found
}
