//! Reading every format from hand-made layouts, and the table of malformed inputs: each
//! must give its error kind and leave nothing behind.

mod common;

use common::*;
use serde_json::json;
use wasm_image::{CallOptions, Client, ClientOptions, ErrorKind, Limits, Variant};

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

async fn pull_ok(location: &str) -> wasm_image::WasmImage {
    client()
        .pull(location, &CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{location}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn solo_oci_variant_any_layer_count_and_spec_config_spellings() {
    let layout = Layout::new();
    let config = br#"{"type":"envoy_proxy","abi_version":"v0-541b2c1155fffb15ccde92b8324f3e38f7339ba6","config":{"root_ids":["add_header_root_id"]},"extra":1}"#;
    let mt_cfg = "application/vnd.module.wasm.config.v1+json";
    let mt_mod = "application/vnd.module.wasm.content.layer.v1+wasm";
    // One layer only (the spec's own example has just the module).
    let one = layout.image("one", (mt_cfg, config), &[(mt_mod, MODULE)], json!({}));
    // Three layers: config, an unrelated one, and the module.
    let three = layout.image(
        "three",
        (mt_cfg, config),
        &[(mt_cfg, config), ("text/plain", b"hi"), (mt_mod, MODULE)],
        json!({}),
    );
    for loc in [one, three] {
        let img = pull_ok(&loc).await;
        assert_eq!(img.variant(), Variant::Oci);
        assert_eq!(&img.module()[..], MODULE);
        let rc = img.runtime_config().unwrap();
        assert_eq!(rc.runtime_type.as_deref(), Some("envoy_proxy"));
        assert_eq!(
            rc.abi_versions,
            vec!["v0-541b2c1155fffb15ccde92b8324f3e38f7339ba6"]
        );
        assert_eq!(rc.root_ids, vec!["add_header_root_id"]);
        assert_eq!(rc.raw["extra"], 1);
        assert_eq!(img.module_digest().to_string(), sha256(MODULE));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compat_variants_read_leniently() {
    let layout = Layout::new();
    let rc = br#"{"type":"envoy_proxy","abiVersions":["v0.2.1"]}"#;
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "gzip",
            TAR_GZIP,
            gzip(&tar(&[Entry::File("plugin.wasm", MODULE)])),
        ),
        (
            "dot-slash",
            TAR_GZIP,
            gzip(&tar(&[
                Entry::File("./plugin.wasm", MODULE),
                Entry::File("./runtime-config.json", rc),
            ])),
        ),
        (
            "nested",
            "application/vnd.oci.image.layer.v1.tar",
            tar(&[Entry::Dir("a/"), Entry::File("a/b/plugin.wasm", MODULE)]),
        ),
        (
            "zstd",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            zstd(&tar(&[Entry::File("plugin.wasm", MODULE)])),
        ),
        (
            "docker-gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            gzip(&tar(&[Entry::File("plugin.wasm", MODULE)])),
        ),
    ];
    for (tag, media_type, layer) in &cases {
        let loc = layout.image(
            tag,
            (OCI_CONFIG, IMAGE_CONFIG),
            &[(media_type, layer)],
            json!({}),
        );
        let img = pull_ok(&loc).await;
        assert_eq!(img.variant(), Variant::Compat, "{tag}");
        assert_eq!(&img.module()[..], MODULE, "{tag}");
        if *tag == "dot-slash" {
            assert_eq!(img.runtime_config().unwrap().abi_versions, vec!["v0.2.1"]);
        }
    }
    // Several layers: the module is in the first, a later layer holds something else.
    let first = gzip(&tar(&[Entry::File("plugin.wasm", MODULE)]));
    let second = gzip(&tar(&[Entry::File("LICENSE", b"Apache-2.0")]));
    let loc = layout.image(
        "multi",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &first), (TAR_GZIP, &second)],
        json!({}),
    );
    assert_eq!(&pull_ok(&loc).await.module()[..], MODULE);
    // A later layer's module wins over an earlier one.
    let other = b"\0asm\x01\0\0\0\x00\x03abc";
    let newer = gzip(&tar(&[Entry::File("plugin.wasm", other)]));
    let loc = layout.image(
        "override",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &first), (TAR_GZIP, &newer)],
        json!({}),
    );
    assert_eq!(&pull_ok(&loc).await.module()[..], other);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_schema2_compat() {
    let layout = Layout::new();
    let layer = gzip(&tar(&[Entry::File("plugin.wasm", MODULE)]));
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let loc = layout.image(
        "docker",
        ("application/vnd.docker.container.image.v1+json", config),
        &[("application/vnd.docker.image.rootfs.diff.tar.gzip", &layer)],
        json!({"mediaType": "application/vnd.docker.distribution.manifest.v2+json"}),
    );
    let img = pull_ok(&loc).await;
    assert_eq!(img.variant(), Variant::Compat);
    assert_eq!(
        img.manifest_media_type(),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn other_wasm_formats() {
    let layout = Layout::new();
    let cncf_config = br#"{"created":"2024-01-01T00:00:00Z","architecture":"wasm","os":"wasip2","layerDigests":[],"component":{"exports":[],"imports":[],"target":null}}"#;
    let cases = vec![
        ("cncf", layout.image("cncf", ("application/vnd.wasm.config.v0+json", cncf_config), &[("application/wasm", COMPONENT)], json!({})), Variant::WasmArtifact, COMPONENT),
        ("w2o", layout.image("w2o", ("application/vnd.wasm.config.v1+json", b"{}"), &[("application/vnd.wasm.content.layer.v1+wasm", MODULE)], json!({})), Variant::WasmToOci, MODULE),
        ("wasmcloud", layout.image("wasmcloud", ("application/vnd.wasmcloud.actor.archive.config", b"{}"), &[("application/vnd.module.wasm.content.layer.v1+wasm", MODULE)], json!({})), Variant::Wasmcloud, MODULE),
        (
            "artifact",
            layout.image("artifact", ("application/vnd.oci.empty.v1+json", b"{}"), &[("application/wasm", MODULE)], json!({"artifactType": "application/vnd.example.plugin"})),
            Variant::OciArtifact,
            MODULE,
        ),
        (
            "wasi-entry",
            layout.image(
                "wasi-entry",
                (OCI_CONFIG, br#"{"architecture":"wasm","os":"wasip1","config":{"Entrypoint":["/app/hello.wasm"]}}"#),
                &[(TAR_GZIP, &gzip(&tar(&[Entry::File("app/other.wasm", b"junk"), Entry::File("app/hello.wasm", MODULE)])))],
                json!({}),
            ),
            Variant::WasiImage,
            MODULE,
        ),
        (
            "wasi-layer",
            layout.image("wasi-layer", (OCI_CONFIG, br#"{"architecture":"wasm","os":"wasip2"}"#), &[("application/vnd.bytecodealliance.wasm.component.layer.v0+wasm", COMPONENT)], json!({})),
            Variant::WasiImage,
            COMPONENT,
        ),
    ];
    for (name, loc, variant, module) in cases {
        let img = pull_ok(&loc).await;
        assert_eq!(img.variant(), variant, "{name}");
        assert_eq!(&img.module()[..], module, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn index_with_attestation_reports_both_digests() {
    let layout = Layout::new();
    let cfg = br#"{"type":"envoy_proxy"}"#;
    layout.blob(cfg);
    layout.blob(MODULE);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.module.wasm.config.v1+json", cfg),
        "layers": [descriptor("application/vnd.module.wasm.content.layer.v1+wasm", MODULE)]
    }))
    .unwrap();
    let manifest_digest = layout.blob(&manifest);
    let attestation = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":descriptor("application/vnd.oci.empty.v1+json", b"{}"),"layers":[]})).unwrap();
    layout.blob(&attestation);
    let mut m = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    m["platform"] = json!({"architecture":"wasm","os":"wasip1"});
    let mut a = descriptor("application/vnd.oci.image.manifest.v1+json", &attestation);
    a["platform"] = json!({"architecture":"unknown","os":"unknown"});
    a["annotations"] = json!({"vnd.docker.reference.type":"attestation-manifest"});
    let index = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[a, m]})).unwrap();
    let index_digest = layout.tag("idx", &index, "application/vnd.oci.image.index.v1+json");
    let img = pull_ok(&layout.location("idx")).await;
    assert_eq!(img.manifest_digest().to_string(), manifest_digest);
    assert_eq!(
        img.index_digest().map(|d| d.to_string()),
        Some(index_digest.clone())
    );
    // A pin may name the index or the manifest.
    let by_index = pull_ok(&format!("oci:{}@{index_digest}", layout.path().display())).await;
    assert_eq!(by_index.manifest_digest().to_string(), manifest_digest);
    let by_manifest = pull_ok(&format!(
        "oci:{}@{manifest_digest}",
        layout.path().display()
    ))
    .await;
    assert_eq!(by_manifest.index_digest(), None);
}

/// A case of the malformed-input table: a layout, a location in it, the limits to apply,
/// and the error kind expected.
struct Bad {
    name: &'static str,
    location: String,
    limits: Limits,
    expected: ErrorKind,
}

fn malformed_cases(layout: &Layout) -> Vec<Bad> {
    let solo_cfg = br#"{"type":"envoy_proxy"}"#;
    let mt_cfg = "application/vnd.module.wasm.config.v1+json";
    let mt_mod = "application/vnd.module.wasm.content.layer.v1+wasm";
    let d = Limits::default;
    let mut cases = Vec::new();
    let mut case = |name: &'static str, location: String, limits: Limits, expected: ErrorKind| {
        cases.push(Bad {
            name,
            location,
            limits,
            expected,
        })
    };

    // Truncated module blob: the descriptor promises more bytes than the file has.
    let truncated = b"\0asm\x01\0\0\0\x00\x06\x04name\x07";
    let loc = layout.image(
        "truncated",
        (mt_cfg, solo_cfg),
        &[(mt_mod, truncated)],
        json!({}),
    );
    layout.blob_as(&sha256(truncated), &truncated[..6]);
    case("truncated blob", loc, d(), ErrorKind::DigestMismatch);

    let tampered = b"\0asm\x01\0\0\0\x00\x06\x04name\x08";
    let loc = layout.image(
        "wrongdigest",
        (mt_cfg, solo_cfg),
        &[(mt_mod, tampered)],
        json!({}),
    );
    layout.blob_as(&sha256(tampered), b"\0asm\x01\0\0\0\x00\x06\x04name\x02");
    let other = b"\0asm\x01\0\0\0\x00\x06\x04name\x01";
    case("wrong digest", loc, d(), ErrorKind::DigestMismatch);

    // Right bytes, wrong size in the descriptor.
    layout.blob(solo_cfg);
    layout.blob(MODULE);
    let mut layer = descriptor(mt_mod, MODULE);
    layer["size"] = json!(MODULE.len() + 5);
    let m = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":descriptor(mt_cfg, solo_cfg),"layers":[layer]})).unwrap();
    layout.tag(
        "wrongsize",
        &m,
        "application/vnd.oci.image.manifest.v1+json",
    );
    case(
        "wrong size",
        layout.location("wrongsize"),
        d(),
        ErrorKind::DigestMismatch,
    );

    let missing = b"\0asm\x01\0\0\0\x00\x02zz";
    let m = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":descriptor(mt_cfg, solo_cfg),"layers":[descriptor(mt_mod, missing)]})).unwrap();
    layout.tag(
        "missinglayer",
        &m,
        "application/vnd.oci.image.manifest.v1+json",
    );
    case(
        "missing layer blob",
        layout.location("missinglayer"),
        d(),
        ErrorKind::NotFound,
    );

    let loc = layout.image("nolayers", (mt_cfg, solo_cfg), &[], json!({}));
    case("no module layer", loc, d(), ErrorKind::InvalidFormat);

    let loc = layout.image(
        "twomodules",
        (mt_cfg, solo_cfg),
        &[(mt_mod, MODULE), (mt_mod, other)],
        json!({}),
    );
    case("two module layers", loc, d(), ErrorKind::InvalidFormat);

    let plain_tar = tar(&[Entry::File("plugin.wasm", MODULE)]);
    let loc = layout.image(
        "gzip-lies",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &plain_tar)],
        json!({}),
    );
    case(
        "gzip media type over a plain tar",
        loc,
        d(),
        ErrorKind::InvalidFormat,
    );

    let mut bad_crc = gzip(&plain_tar);
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    let loc = layout.image(
        "gzip-crc",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &bad_crc)],
        json!({}),
    );
    case(
        "gzip with a wrong checksum",
        loc,
        d(),
        ErrorKind::InvalidFormat,
    );

    let loc = layout.image(
        "escape",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(
            TAR_GZIP,
            &gzip(&tar(&[Entry::RawName(b"../plugin.wasm", MODULE)])),
        )],
        json!({}),
    );
    case("path escaping the root", loc, d(), ErrorKind::InvalidFormat);

    let loc = layout.image(
        "symlink",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(
            TAR_GZIP,
            &gzip(&tar(&[
                Entry::File("real.wasm", MODULE),
                Entry::Symlink("plugin.wasm", "real.wasm"),
            ])),
        )],
        json!({}),
    );
    case(
        "symlink named plugin.wasm",
        loc,
        d(),
        ErrorKind::InvalidFormat,
    );

    let loc = layout.image(
        "hardlink",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(
            TAR_GZIP,
            &gzip(&tar(&[
                Entry::File("real.wasm", MODULE),
                Entry::Hardlink("plugin.wasm", "real.wasm"),
            ])),
        )],
        json!({}),
    );
    case(
        "hardlink named plugin.wasm",
        loc,
        d(),
        ErrorKind::InvalidFormat,
    );

    let loc = layout.image(
        "nomodule",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &gzip(&tar(&[Entry::File("README", b"x")])))],
        json!({}),
    );
    case("no plugin.wasm", loc, d(), ErrorKind::InvalidFormat);

    let zeros = vec![0u8; 4 << 20];
    let bomb = gzip(&tar(&[
        Entry::File("padding", &zeros),
        Entry::File("plugin.wasm", MODULE),
    ]));
    let loc = layout.image(
        "bomb",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &bomb)],
        json!({}),
    );
    case(
        "decompression bomb",
        loc,
        Limits {
            max_decompressed_bytes: 1 << 20,
            ..d()
        },
        ErrorKind::LimitExceeded,
    );

    let many: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let entries: Vec<Entry> = many.iter().map(|n| Entry::File(n, b"")).collect();
    let loc = layout.image(
        "entries",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &gzip(&tar(&entries)))],
        json!({}),
    );
    case(
        "too many tar entries",
        loc,
        Limits {
            max_tar_entries: 10,
            ..d()
        },
        ErrorKind::LimitExceeded,
    );

    let loc = layout.image(
        "elf",
        (mt_cfg, solo_cfg),
        &[(mt_mod, b"\x7fELF\x02\x01\x01\x00rest")],
        json!({}),
    );
    case("ELF in the module slot", loc, d(), ErrorKind::InvalidFormat);

    let loc = layout.image(
        "compat-text",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(
            TAR_GZIP,
            &gzip(&tar(&[Entry::File("plugin.wasm", b"#!/bin/sh\n")])),
        )],
        json!({}),
    );
    case("text as plugin.wasm", loc, d(), ErrorKind::InvalidFormat);

    let loc = layout.image("big", (mt_cfg, solo_cfg), &[(mt_mod, MODULE)], json!({}));
    case(
        "module over the size limit",
        loc,
        Limits {
            max_module_bytes: 8,
            ..d()
        },
        ErrorKind::LimitExceeded,
    );

    let loc = layout.image(
        "big-compat",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &gzip(&tar(&[Entry::File("plugin.wasm", MODULE)])))],
        json!({}),
    );
    case(
        "compat module over the size limit",
        loc,
        Limits {
            max_module_bytes: 8,
            ..d()
        },
        ErrorKind::LimitExceeded,
    );

    let loc = layout.image("badrc", (mt_cfg, b"[1,2]"), &[(mt_mod, MODULE)], json!({}));
    case(
        "runtime config not an object",
        loc,
        d(),
        ErrorKind::InvalidFormat,
    );

    let loc = layout.image(
        "unknown",
        ("application/x-something", b"{}"),
        &[
            ("application/octet-stream", b"abc"),
            ("application/octet-stream", b"def"),
        ],
        json!({}),
    );
    case("not a Wasm image", loc, d(), ErrorKind::InvalidFormat);

    layout.tag(
        "notjson",
        b"{not json",
        "application/vnd.oci.image.manifest.v1+json",
    );
    case(
        "manifest not JSON",
        layout.location("notjson"),
        d(),
        ErrorKind::InvalidFormat,
    );

    layout.tag(
        "schema1",
        br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#,
        "application/vnd.docker.distribution.manifest.v1+json",
    );
    case(
        "docker schema 1",
        layout.location("schema1"),
        d(),
        ErrorKind::InvalidFormat,
    );

    let loc = layout.image(
        "oversized",
        (mt_cfg, solo_cfg),
        &[(mt_mod, MODULE)],
        json!({"annotations": {"pad": "x".repeat(3000)}}),
    );
    case(
        "oversized manifest",
        loc,
        Limits {
            max_metadata_bytes: 2048,
            ..d()
        },
        ErrorKind::LimitExceeded,
    );

    // Indexes nested past the limit: index → index → index → manifest.
    let inner = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":descriptor(mt_cfg, solo_cfg),"layers":[descriptor(mt_mod, MODULE)]})).unwrap();
    layout.blob(&inner);
    let mut child = (inner, "application/vnd.oci.image.manifest.v1+json");
    for _ in 0..3 {
        let idx = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[descriptor(child.1, &child.0)]})).unwrap();
        layout.blob(&idx);
        child = (idx, "application/vnd.oci.image.index.v1+json");
    }
    layout.tag("deep", &child.0, child.1);
    case(
        "indexes nested too deep",
        layout.location("deep"),
        Limits {
            max_index_depth: 2,
            ..d()
        },
        ErrorKind::LimitExceeded,
    );

    case(
        "missing tag",
        layout.location("nope"),
        d(),
        ErrorKind::NotFound,
    );
    case(
        "missing layout",
        "oci:/nonexistent/wasm-image-layout:x".into(),
        d(),
        ErrorKind::NotFound,
    );
    case(
        "bad location",
        "oci:".into(),
        d(),
        ErrorKind::InvalidReference,
    );
    cases
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_inputs_give_their_error_kind_and_leave_nothing() {
    let layout = Layout::new();
    let cases = malformed_cases(&layout);
    let mut failures = Vec::new();
    for case in &cases {
        let client = client_with(case.limits);
        let (out, file) = out_dir();
        let to_memory = client.pull(&case.location, &CallOptions::default()).await;
        let to_file = client
            .pull_to_file(&case.location, &file, &CallOptions::default())
            .await;
        for (how, kind, message) in [
            (
                "memory",
                to_memory.as_ref().err().map(|e| e.kind()),
                to_memory.as_ref().err().map(|e| e.to_string()),
            ),
            (
                "file",
                to_file.as_ref().err().map(|e| e.kind()),
                to_file.as_ref().err().map(|e| e.to_string()),
            ),
        ] {
            if kind != Some(case.expected) {
                failures.push(format!(
                    "{} ({how}): expected {:?}, got {kind:?} {message:?}",
                    case.name, case.expected
                ));
            }
        }
        let left = entries(out.path());
        if !left.is_empty() {
            failures.push(format!("{}: left files behind: {left:?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_to_file_writes_exact_bytes() {
    let layout = Layout::new();
    let loc = layout.image(
        "f",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &gzip(&tar(&[Entry::File("plugin.wasm", MODULE)])))],
        json!({}),
    );
    let (out, file) = out_dir();
    let info = client()
        .pull_to_file(&loc, &file, &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), MODULE);
    assert_eq!(info.module_digest.to_string(), sha256(MODULE));
    assert_eq!(entries(out.path()), vec!["plugin.wasm"]);
    // The same mode as any file made here, not a private temporary file's 0600.
    use std::os::unix::fs::PermissionsExt;
    let ordinary = out.path().join("ordinary");
    std::fs::write(&ordinary, b"").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), mode(&ordinary));
}

/// A caller-provided buffer that records the sizes asked for.
struct Recorded {
    data: Vec<u8>,
}

impl wasm_image::buffer::ModuleBuffer for Recorded {
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data
    }
    fn freeze(self: Box<Self>) -> bytes::Bytes {
        bytes::Bytes::from(self.data)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_fill_a_caller_buffer_of_the_exact_size() {
    let layout = Layout::new();
    let solo = layout.image(
        "solo",
        (
            "application/vnd.module.wasm.config.v1+json",
            br#"{"type":"envoy_proxy"}"#,
        ),
        &[("application/vnd.module.wasm.content.layer.v1+wasm", MODULE)],
        json!({}),
    );
    let compat = layout.image(
        "compat",
        (OCI_CONFIG, IMAGE_CONFIG),
        &[(TAR_GZIP, &gzip(&tar(&[Entry::File("plugin.wasm", MODULE)])))],
        json!({}),
    );
    for location in [solo, compat] {
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        let allocate: wasm_image::buffer::ModuleAllocator = std::sync::Arc::new(move |len| {
            log.lock().unwrap().push(len);
            Ok(Box::new(Recorded { data: vec![0; len] })
                as Box<dyn wasm_image::buffer::ModuleBuffer>)
        });
        let call = CallOptions {
            module_allocator: Some(allocate),
            ..Default::default()
        };
        let img = client().pull(&location, &call).await.unwrap();
        assert_eq!(&img.module()[..], MODULE, "{location}");
        assert_eq!(*asked.lock().unwrap(), vec![MODULE.len()], "{location}");
    }
}
