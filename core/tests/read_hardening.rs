//! Reading what real tools write, and what hostile images and registries send: Docker Hub
//! names in docker-archives, compat modules under Wasm platforms, indexes of ordinary
//! platforms, manifests that do not match their descriptors, tar metadata bombs, layers
//! listed many times and sizes no memory can hold.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::json;
use wasm_image::{
    CallOptions, Client, ClientOptions, Digest, ErrorKind, Limits, Progress, ProgressEvent, Variant,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const RUNTIME_CONFIG: &[u8] = br#"{"type":"envoy_proxy"}"#;

fn client_with(limits: Limits) -> Client {
    Client::new(ClientOptions {
        limits,
        use_config_files: false,
        ..Default::default()
    })
    .unwrap()
}

fn client() -> Client {
    client_with(Limits::default())
}

async fn pull(location: &str) -> wasm_image::Result<wasm_image::WasmImage> {
    client().pull(location, &CallOptions::default()).await
}

fn compat_layer(module: &[u8]) -> Vec<u8> {
    gzip(&tar(&[
        Entry::File("plugin.wasm", module),
        Entry::File("runtime-config.json", RUNTIME_CONFIG),
    ]))
}

/// A module of its own: MODULE with one more custom section byte.
fn module_named(n: u8) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0\x00\x03\x01x".to_vec();
    m.push(n);
    m
}

// Item 1: `docker save` writes RepoTags as `docker.io/...` or short; both spellings name
// the image, as `docker load` normalises them.
#[tokio::test(flavor = "multi_thread")]
async fn docker_archive_references_are_compared_after_docker_hub_normalisation() {
    let layer = tar(&[Entry::File("plugin.wasm", MODULE)]);
    let manifest_json = serde_json::to_vec(&json!([
        {"Config": "c.json", "RepoTags": ["docker.io/wasm/compat:v1"], "Layers": ["l.tar"]},
        {"Config": "c.json", "RepoTags": ["docker.io/library/solo:latest"], "Layers": ["l.tar"]},
    ]))
    .unwrap();
    let data = tar(&[
        Entry::File("c.json", IMAGE_CONFIG),
        Entry::File("l.tar", &layer),
        Entry::File("manifest.json", &manifest_json),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("saved.tar");
    std::fs::write(&file, data).unwrap();
    for reference in [
        "wasm/compat:v1",
        "docker.io/wasm/compat:v1",
        "solo",
        "library/solo:latest",
    ] {
        let img = pull(&format!("docker-archive:{}:{reference}", file.display()))
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e}"));
        assert_eq!(&img.module()[..], MODULE, "{reference}");
        assert_eq!(img.variant(), Variant::Compat, "{reference}");
    }
    let err = pull(&format!("docker-archive:{}:wasm/compat:v2", file.display()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

// Item 1 on what skopeo writes: its RepoTags say `docker.io/fixtures/buildah-docker:latest`
// and the short names a Docker user types find the image.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn skopeo_docker_archive_answers_to_short_names() {
    let bed = testbed();
    let archive = bed_str(&bed, &["fixtures", "docker-archive"]);
    assert_eq!(
        bed["fixtures"]["docker-archive-repotags"],
        json!(["docker.io/fixtures/buildah-docker:latest"])
    );
    for reference in ["fixtures/buildah-docker", "fixtures/buildah-docker:latest"] {
        let img = pull(&format!("{archive}:{reference}"))
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e}"));
        assert_eq!(img.variant(), Variant::Compat, "{reference}");
        assert_eq!(
            img.module().len() as u64,
            bed["fixtures"]["module_size"].as_u64().unwrap(),
            "{reference}"
        );
    }
}

// Item 2: `plugin.wasm` in a layer is the compat variant whatever the config's platform,
// unless the Entrypoint names another file.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_wasm_under_a_wasm_platform_is_compat() {
    let layout = Layout::new();
    let layer = compat_layer(MODULE);
    let configs: [(&str, &[u8]); 3] = [
        (
            "wasip1",
            br#"{"architecture":"wasm","os":"wasip1","config":{}}"#,
        ),
        (
            "entry-root",
            br#"{"architecture":"wasm","os":"wasip1","config":{"Entrypoint":["/plugin.wasm"]}}"#,
        ),
        (
            "entry-dot",
            br#"{"architecture":"wasm","os":"wasi","config":{"Entrypoint":["./plugin.wasm"]}}"#,
        ),
    ];
    for (tag, config) in configs {
        let img = pull(&layout.image(tag, (OCI_CONFIG, config), &[(TAR_GZIP, &layer)], json!({})))
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(img.variant(), Variant::Compat, "{tag}");
        assert_eq!(&img.module()[..], MODULE, "{tag}");
        assert!(
            img.runtime_config().is_some(),
            "{tag}: runtime-config.json is read"
        );
    }

    // The same image inside a buildx-style index: a wasip1/wasm entry and an attestation.
    let config = br#"{"architecture":"wasm","os":"wasip1","config":{}}"#;
    layout.blob(config);
    layout.blob(&layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(TAR_GZIP, &layer)],
    }))
    .unwrap();
    layout.blob(&manifest);
    let mut entry = descriptor(OCI_MANIFEST, &manifest);
    entry["platform"] = json!({"architecture": "wasm", "os": "wasip1"});
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}),
    )
    .unwrap();
    layout.tag("indexed", &index, OCI_INDEX);
    let img = pull(&layout.location("indexed")).await.unwrap();
    assert_eq!(img.variant(), Variant::Compat);

    // An Entrypoint naming another file keeps the image a wasi/wasm one.
    let other =
        br#"{"architecture":"wasm","os":"wasip1","config":{"Entrypoint":["/app/hello.wasm"]}}"#;
    let layer = gzip(&tar(&[
        Entry::File("plugin.wasm", b"junk"),
        Entry::File("app/hello.wasm", MODULE),
    ]));
    let img = pull(&layout.image(
        "wasi",
        (OCI_CONFIG, other),
        &[(TAR_GZIP, &layer)],
        json!({}),
    ))
    .await
    .unwrap();
    assert_eq!(img.variant(), Variant::WasiImage);
    assert_eq!(&img.module()[..], MODULE);
}

// Item 3: an index of ordinary platforms only, no platform asked for: the host's, else
// linux/amd64 (a compat module is the same on each), not NOT_FOUND.
#[tokio::test(flavor = "multi_thread")]
async fn an_index_of_ordinary_platforms_gives_the_host_or_amd64() {
    let layout = Layout::new();
    let host = wasm_image::select::host_platform();
    let platforms = [("linux", "arm64"), ("linux", "amd64"), ("linux", "s390x")];
    let mut entries = Vec::new();
    let mut digest_of = Vec::new();
    for (n, (os, arch)) in platforms.iter().enumerate() {
        let module = module_named(n as u8);
        let layer = compat_layer(&module);
        let config = format!(r#"{{"architecture":"{arch}","os":"{os}","config":{{}}}}"#);
        layout.blob(config.as_bytes());
        layout.blob(&layer);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config.as_bytes()),
            "layers": [descriptor(TAR_GZIP, &layer)],
        }))
        .unwrap();
        digest_of.push(layout.blob(&manifest));
        let mut entry = descriptor(OCI_MANIFEST, &manifest);
        entry["platform"] = json!({"architecture": arch, "os": os});
        entries.push(entry);
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
    )
    .unwrap();
    layout.tag("multi", &index, OCI_INDEX);
    let expected = platforms
        .iter()
        .position(|(os, arch)| host.os == *os && host.architecture == *arch)
        .unwrap_or(1);
    let logged: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let record_to = logged.clone();
    wasm_image::logging::set_sink(
        Arc::new(move |r: &wasm_image::logging::LogRecord| {
            if r.message.contains("offers no Wasm platform") {
                record_to.lock().unwrap().push(r.message.clone());
            }
        }),
        wasm_image::logging::LogLevel::Info,
    );
    let pulled = pull(&layout.location("multi")).await;
    wasm_image::logging::clear_sink();
    let img = pulled.unwrap();
    assert_eq!(img.manifest_digest().to_string(), digest_of[expected]);
    assert_eq!(img.variant(), Variant::Compat);
    let (os, arch) = platforms[expected];
    let logged = logged.lock().unwrap().clone();
    assert!(
        logged.len() == 1 && logged[0].contains(&format!("platform={os}/{arch}")),
        "the choice is logged: {logged:?}"
    );

    // Asked for explicitly, a listed platform is taken and a missing one is NOT_FOUND.
    let call = |platform: &str| CallOptions {
        platform: Some(platform.parse().unwrap()),
        ..Default::default()
    };
    let img = client()
        .pull(&layout.location("multi"), &call("linux/s390x"))
        .await
        .unwrap();
    assert_eq!(img.manifest_digest().to_string(), digest_of[2]);
    let err = client()
        .pull(&layout.location("multi"), &call("windows/amd64"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

// Item 4: in a layout, a manifest blob changed in place, or an index.json entry with the
// wrong size, is DIGEST_MISMATCH.
#[tokio::test(flavor = "multi_thread")]
async fn layout_manifests_are_checked_against_index_json() {
    let layout = Layout::new();
    let location = layout.image(
        "v1",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &compat_layer(MODULE))],
        json!({"annotations": {"note": "1"}}),
    );
    pull(&location).await.unwrap();
    let index_path = layout.path().join("index.json");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = index["manifests"][0].clone();
    let digest = entry["digest"].as_str().unwrap().to_string();
    let blob = layout
        .path()
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let original = std::fs::read(&blob).unwrap();

    // The same length, other bytes, still a valid manifest.
    let edited = String::from_utf8(original.clone())
        .unwrap()
        .replace(r#""note":"1""#, r#""note":"2""#)
        .into_bytes();
    assert_ne!(edited, original);
    assert_eq!(edited.len(), original.len());
    std::fs::write(&blob, &edited).unwrap();
    let err = pull(&location).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
    std::fs::write(&blob, &original).unwrap();

    // The right bytes under an entry that declares another size.
    let mut wrong_size = index.clone();
    wrong_size["manifests"][0]["size"] = json!(original.len() + 1);
    std::fs::write(&index_path, serde_json::to_vec(&wrong_size).unwrap()).unwrap();
    let err = pull(&location).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    pull(&location).await.unwrap();
}

/// A tar entry of `kind` whose data is `len` bytes of `fill` (a GNU long name, a PAX
/// header), followed by `rest`.
fn with_metadata_record(
    kind: tar::EntryType,
    data: &mut dyn Read,
    len: u64,
    rest: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(len);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    std::io::copy(&mut data.take(len), &mut out).unwrap();
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(rest);
    out
}

/// One PAX record `LEN key=value\n` whose LEN counts itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len = format!("{len}").len() + body.len();
    }
    format!("{len}{body}").into_bytes()
}

// Item 9: a small gzip layer declaring a huge GNU long name or PAX header must not drive
// memory up; a PAX `size` on runtime-config.json must not bypass the metadata limit.
#[tokio::test(flavor = "multi_thread")]
async fn tar_metadata_bombs_are_limit_exceeded() {
    let layout = Layout::new();
    let module_tar = tar(&[Entry::File("plugin.wasm", MODULE)]);
    let big: u64 = 16 << 20;
    let long_name = with_metadata_record(
        tar::EntryType::GNULongName,
        &mut std::io::repeat(b'a'),
        big,
        &module_tar,
    );
    let mut pax = pax_record("comment", &"a".repeat(big as usize));
    let pax_len = pax.len() as u64;
    let pax_bomb =
        with_metadata_record(tar::EntryType::XHeader, &mut &pax[..], pax_len, &module_tar);
    pax.clear();
    for (tag, layer) in [("long-name", long_name), ("pax", pax_bomb)] {
        let location = layout.image(
            tag,
            (OCI_CONFIG, IMAGE_CONFIG),
            &[(TAR_GZIP, &gzip(&layer))],
            json!({}),
        );
        let err = pull(&location).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{tag}: {err}");
    }

    // runtime-config.json whose header says 2 bytes and whose PAX record says more than
    // the metadata limit: the PAX size is the entry's size, and the limit holds.
    let limit = 64 * 1024;
    let real = 4 * limit;
    let mut rc_data = b"{}".to_vec();
    rc_data.resize(real, b' ');
    let record = pax_record("size", &real.to_string());
    let mut header = tar::Header::new_ustar();
    header.set_path("runtime-config.json").unwrap();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(2);
    header.set_cksum();
    let mut rc_entry = header.as_bytes().to_vec();
    rc_entry.extend_from_slice(&rc_data);
    rc_entry.resize(rc_entry.len().div_ceil(512) * 512, 0);
    let mut layer = tar(&[Entry::File("plugin.wasm", MODULE)]);
    layer.truncate(layer.len() - 1024); // drop the end-of-archive blocks
    let rest = [rc_entry, vec![0; 1024]].concat();
    layer.extend(with_metadata_record(
        tar::EntryType::XHeader,
        &mut &record[..],
        record.len() as u64,
        &rest,
    ));
    let location = layout.image(
        "pax-size",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &gzip(&layer))],
        json!({}),
    );
    let limits = Limits {
        max_metadata_bytes: limit as u64,
        ..Limits::default()
    };
    let err = client_with(limits)
        .pull(&location, &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");

    // Ordinary long names and PAX headers still read.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(MODULE.len() as u64);
    b.append_data(&mut h, format!("{}/plugin.wasm", "d".repeat(300)), MODULE)
        .unwrap();
    b.append_pax_extensions([("comment", &b"hello"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(RUNTIME_CONFIG.len() as u64);
    b.append_data(&mut h, "runtime-config.json", RUNTIME_CONFIG)
        .unwrap();
    let location = layout.image(
        "long-ok",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &gzip(&b.into_inner().unwrap()))],
        json!({}),
    );
    let img = pull(&location).await.unwrap();
    assert_eq!(&img.module()[..], MODULE);
    assert!(img.runtime_config().is_some());
}

// Item 9 in the archive readers: a long name of 4 MiB before the members is refused, in
// docker-archive: and oci-archive: alike, before it is held in memory.
#[tokio::test(flavor = "multi_thread")]
async fn archive_readers_bound_tar_header_records() {
    let dir = tempfile::tempdir().unwrap();
    let members = tar(&[
        Entry::File("c.json", IMAGE_CONFIG),
        Entry::File("manifest.json", br#"[{"Config":"c.json","Layers":[]}]"#),
        Entry::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        Entry::File("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
    ]);
    let bomb = with_metadata_record(
        tar::EntryType::GNULongName,
        &mut std::io::repeat(b'a'),
        4 << 20,
        &members,
    );
    let file = dir.path().join("bomb.tar");
    std::fs::write(&file, bomb).unwrap();
    for location in [
        format!("docker-archive:{}", file.display()),
        format!("oci-archive:{}", file.display()),
    ] {
        let err = pull(&location).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{location}: {err}");
    }
}

// Item 12: a layer listed many times is opened (downloaded, decompressed) once; an image
// listing more layers than the bound is LIMIT_EXCEEDED.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_layers_are_read_once_and_layer_counts_are_bounded() {
    let layout = Layout::new();
    let module_layer = compat_layer(MODULE);
    let junk = gzip(&tar(&[Entry::File("readme.txt", b"nothing to see")]));
    let junk_digest: Digest = sha256(&junk).parse().unwrap();
    let mut layers: Vec<(&str, &[u8])> = vec![(TAR_GZIP, &module_layer)];
    layers.extend(std::iter::repeat_n((TAR_GZIP, &junk[..]), 50));
    let location = layout.image("repeated", (OCI_CONFIG, IMAGE_CONFIG), &layers, json!({}));
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = opened.clone();
    let progress: Progress = Arc::new(move |e: &ProgressEvent| {
        if e.digest == junk_digest && e.done == 0 {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let call = CallOptions {
        progress: Some(progress),
        ..Default::default()
    };
    let img = client().pull(&location, &call).await.unwrap();
    assert_eq!(&img.module()[..], MODULE);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "the repeated layer was opened once"
    );

    let mut layers: Vec<(&str, &[u8])> = vec![(TAR_GZIP, &module_layer)];
    layers.extend(std::iter::repeat_n(
        (TAR_GZIP, &junk[..]),
        wasm_image::limits::MAX_IMAGE_LAYERS,
    ));
    let location = layout.image("too-many", (OCI_CONFIG, IMAGE_CONFIG), &layers, json!({}));
    let err = pull(&location).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
}

// Item 12 in docker-archive: a layer listed many times (directly or through a link) reads
// as the image lists it; more layers than the bound is LIMIT_EXCEEDED before any hashing.
#[tokio::test(flavor = "multi_thread")]
async fn docker_archive_repeated_layers_and_layer_bound() {
    let dir = tempfile::tempdir().unwrap();
    let module_layer = tar(&[Entry::File("plugin.wasm", MODULE)]);
    let junk = tar(&[Entry::File("readme.txt", b"nothing")]);
    let write = |file: &str, layers: Vec<&str>| {
        let manifest_json = serde_json::to_vec(&json!([
            {"Config": "c.json", "RepoTags": ["x:v1"], "Layers": layers},
        ]))
        .unwrap();
        let data = tar(&[
            Entry::File("c.json", IMAGE_CONFIG),
            Entry::File("m.tar", &module_layer),
            Entry::File("j.tar", &junk),
            Entry::Symlink("link.tar", "j.tar"),
            Entry::File("manifest.json", &manifest_json),
        ]);
        let path = dir.path().join(file);
        std::fs::write(&path, data).unwrap();
        format!("docker-archive:{}", path.display())
    };
    let location = write("repeated.tar", vec!["m.tar", "j.tar", "link.tar", "j.tar"]);
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = opened.clone();
    let junk_digest: Digest = sha256(&junk).parse().unwrap();
    let progress: Progress = Arc::new(move |e: &ProgressEvent| {
        if e.digest == junk_digest && e.done == 0 {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let call = CallOptions {
        progress: Some(progress),
        ..Default::default()
    };
    let img = client().pull(&location, &call).await.unwrap();
    assert_eq!(&img.module()[..], MODULE);
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    let manifest: serde_json::Value = serde_json::from_slice(img.manifest()).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 4);

    let many = vec!["j.tar"; wasm_image::limits::MAX_IMAGE_LAYERS + 1];
    let err = pull(&write("many.tar", many)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
}

// Item 13: with limits raised, a declared size no memory can hold is LIMIT_EXCEEDED, not
// an aborted process.
#[tokio::test(flavor = "multi_thread")]
async fn huge_declared_sizes_with_raised_limits_are_limit_exceeded() {
    let layout = Layout::new();
    let raised = Limits {
        max_module_bytes: u64::MAX,
        max_metadata_bytes: u64::MAX,
        ..Limits::default()
    };
    let solo_config = br#"{"type":"envoy_proxy"}"#;
    let solo_config_type = "application/vnd.module.wasm.config.v1+json";
    let solo_layer_type = "application/vnd.module.wasm.content.layer.v1+wasm";
    layout.blob(solo_config);
    layout.blob(MODULE);
    let huge = 1u64 << 62;
    let mut module_layer = descriptor(solo_layer_type, MODULE);
    module_layer["size"] = json!(huge);
    let mut config = descriptor(solo_config_type, solo_config);
    let cases = [
        (
            "module",
            descriptor(solo_config_type, solo_config),
            module_layer,
        ),
        (
            "config",
            {
                config["size"] = json!(huge);
                config
            },
            descriptor(solo_layer_type, MODULE),
        ),
    ];
    for (tag, config, layer) in cases {
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config, "layers": [layer],
        }))
        .unwrap();
        layout.tag(tag, &manifest, OCI_MANIFEST);
        let err = client_with(raised)
            .pull(&layout.location(tag), &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{tag}: {err}");
    }
}

// Item 5: a registry whose Docker-Content-Digest names other bytes than it sent is
// DIGEST_MISMATCH (the fault proxy answers the tag GET with the real manifest and a
// wrong header).
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn a_registry_digest_header_that_does_not_match_the_bytes_is_digest_mismatch() {
    let bed = testbed();
    let host = bed_str(&bed, &["faulty", "host"]);
    let name = format!("hardening/{}", unique("content-digest"));
    let client = Client::new(ClientOptions {
        use_config_files: false,
        insecure_registries: vec![host.clone()],
        ..Default::default()
    })
    .unwrap();
    let location = format!("{host}/{name}:v1");
    let image = wasm_image::build(bytes::Bytes::from_static(MODULE), &Default::default()).unwrap();
    client
        .push(&image, &location, &CallOptions::default())
        .await
        .unwrap();
    let pulled = client
        .pull(&location, &CallOptions::default())
        .await
        .unwrap();
    let manifest = String::from_utf8(pulled.manifest().to_vec()).unwrap();
    let other = sha256(b"other bytes");
    add_faults(
        &bed,
        json!([{
            "match": format!("{name}/manifests/v1"), "method": "GET", "action": "status",
            "status": 200, "body": manifest, "times": null,
            "headers": {"Docker-Content-Digest": other},
        }]),
    );
    let err = client
        .pull(&location, &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
    assert!(err.message().contains(&other), "{err}");

    // A header that names the bytes sent is accepted.
    let right = sha256(pulled.manifest());
    add_faults(
        &bed,
        json!([{
            "match": format!("{name}/manifests/v2"), "method": "GET", "action": "status",
            "status": 200, "body": String::from_utf8(pulled.manifest().to_vec()).unwrap(),
            "times": null, "headers": {"Docker-Content-Digest": right},
        }]),
    );
    let img = client
        .pull(&format!("{host}/{name}:v2"), &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(img.manifest_digest(), pulled.manifest_digest());
}
