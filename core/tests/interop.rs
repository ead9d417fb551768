//! Interoperability with the tools users use: images made by buildah and converted by
//! skopeo read back to the exact module; what we write is read by skopeo and umoci.

mod common;

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use common::*;
use wasm_image::store::conformance;
use wasm_image::{
    build, BuildOptions, CallOptions, Client, ClientOptions, ManifestFormat, Variant,
};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn client() -> Client {
    Client::new(ClientOptions {
        use_config_files: false,
        ..Default::default()
    })
    .unwrap()
}

/// A real proxy-wasm style module made by wabt, or the minimal header when wabt is absent.
fn real_module(dir: &Path) -> Vec<u8> {
    if conformance::tool("wat2wasm").is_none() {
        return MODULE.to_vec();
    }
    let wat = dir.join("plugin.wat");
    std::fs::write(&wat, r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")) (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0))"#).unwrap();
    let wasm = dir.join("plugin.wasm");
    run(Command::new("wat2wasm").arg(&wat).arg("-o").arg(&wasm));
    std::fs::read(wasm).unwrap()
}

struct Buildah {
    root: tempfile::TempDir,
}

impl Buildah {
    fn new() -> Buildah {
        Buildah {
            root: tempfile::tempdir().unwrap(),
        }
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(self.root.path().join("storage"))
            .arg("--runroot")
            .arg(self.root.path().join("run"))
            .arg("--storage-driver")
            .arg("vfs");
        c
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        // vfs layers are plain directories; buildah may leave read-only ones behind.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(self.root.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn buildah_images_through_skopeo_transports_read_back_exactly() {
    if conformance::tool("buildah").is_none() || conformance::tool("skopeo").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let module = real_module(work.path());
    let plugin = work.path().join("plugin.wasm");
    std::fs::write(&plugin, &module).unwrap();
    let license = work.path().join("LICENSE");
    std::fs::write(&license, "Apache-2.0").unwrap();
    let b = Buildah::new();
    let layout = work.path().join("layout");

    // OCI format with the compat annotation.
    let w = run(b.cmd().args(["from", "scratch"])).trim().to_string();
    run(b.cmd().args(["copy", &w]).arg(&plugin).arg("./"));
    run(b.cmd().args([
        "config",
        "--annotation",
        "module.wasm.image/variant=compat",
        &w,
    ]));
    run(b
        .cmd()
        .args(["commit", "--format", "oci", &w])
        .arg(format!("oci:{}:buildah-oci", layout.display())));
    // Two layers, the license first (a label-style layer) then the module.
    let m = run(b.cmd().args(["from", "scratch"])).trim().to_string();
    run(b.cmd().args(["copy", &m]).arg(&license).arg("/LICENSE"));
    run(b.cmd().args(["commit", &m, "multi-base"]));
    let m2 = run(b.cmd().args(["from", "multi-base"])).trim().to_string();
    run(b.cmd().args(["copy", &m2]).arg(&plugin).arg("./"));
    run(b
        .cmd()
        .args(["commit", "--format", "oci", &m2])
        .arg(format!("oci:{}:buildah-multi", layout.display())));
    // Docker schema 2 (annotations dropped by buildah).
    let d = run(b.cmd().args(["from", "scratch"])).trim().to_string();
    run(b.cmd().args(["copy", &d]).arg(&plugin).arg("./"));
    run(b
        .cmd()
        .args(["commit", "--format", "docker", &d, "buildah-docker"]));
    let docker_archive = work.path().join("docker.tar");
    run(b.cmd().args(["push", "buildah-docker"]).arg(format!(
        "docker-archive:{}:example.com/buildah-docker:v1",
        docker_archive.display()
    )));

    let oci_archive = work.path().join("oci.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:buildah-oci", layout.display()))
        .arg(format!("oci-archive:{}:buildah-oci", oci_archive.display())));
    let multi_raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:buildah-multi", layout.display())));
    let multi: serde_json::Value = serde_json::from_str(&multi_raw).unwrap();
    assert_eq!(
        multi["layers"].as_array().unwrap().len(),
        2,
        "buildah made {multi_raw}"
    );

    for location in [
        format!("oci:{}:buildah-oci", layout.display()),
        format!("oci:{}:buildah-multi", layout.display()),
        format!("oci-archive:{}:buildah-oci", oci_archive.display()),
        format!("docker-archive:{}", docker_archive.display()),
        format!(
            "docker-archive:{}:example.com/buildah-docker:v1",
            docker_archive.display()
        ),
    ] {
        let img = client()
            .pull(&location, &CallOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{location}: {e}"));
        assert_eq!(img.variant(), Variant::Compat, "{location}");
        assert_eq!(&img.module()[..], &module[..], "{location}");
        assert_eq!(img.module_digest().to_string(), sha256(&module));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_we_write_is_read_by_skopeo_and_umoci() {
    if conformance::tool("skopeo").is_none() || conformance::tool("umoci").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let module = Bytes::from(real_module(work.path()));
    let layout = work.path().join("ours");
    let copy = work.path().join("copied");
    for (tag, variant, format) in [
        ("oci", Variant::Oci, ManifestFormat::Oci),
        ("compat", Variant::Compat, ManifestFormat::Oci),
        ("compat-docker", Variant::Compat, ManifestFormat::Docker),
    ] {
        let img = build(
            module.clone(),
            &BuildOptions {
                variant: Some(variant),
                manifest_format: format,
                root_ids: vec!["root".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let ours = format!("oci:{}:{tag}", layout.display());
        let digest = client()
            .push(&img, &ours, &CallOptions::default())
            .await
            .unwrap();
        if format == ManifestFormat::Docker {
            // skopeo's oci: transport only looks at OCI-typed index entries, so a Docker
            // manifest in a layout is checked by reading it back ourselves.
            let back = client().pull(&ours, &CallOptions::default()).await.unwrap();
            assert_eq!(back.manifest_digest(), &digest);
            assert_eq!(back.module(), &module);
            continue;
        }
        // skopeo sees our exact manifest bytes.
        let raw = run(Command::new("skopeo").args(["inspect", "--raw", &ours]));
        assert_eq!(raw.as_bytes(), &img.manifest()[..], "{tag}");
        let theirs = format!("oci:{}:{tag}", copy.display());
        run(Command::new("skopeo").args(["copy", &ours, &theirs]));
        let back = client()
            .pull(&theirs, &CallOptions::default())
            .await
            .unwrap();
        assert_eq!(
            back.manifest_digest(),
            &digest,
            "{tag}: skopeo copy kept our digest"
        );
        assert_eq!(back.module(), &module);
        assert_eq!(back.variant(), variant);
    }
    // The oci variant has exactly the shape Istio and Envoy Gateway require.
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:oci", layout.display())));
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "runtime-config.json"
    );
    assert_eq!(
        layers[1]["annotations"]["org.opencontainers.image.title"],
        "filter.wasm"
    );
    assert_eq!(
        m["annotations"]["module.wasm.runtime/abi_version"],
        "v0.2.1"
    );

    // umoci unpacks our compat image to the same plugin.wasm.
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:compat", layout.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read(bundle.join("rootfs/plugin.wasm")).unwrap(),
        &module[..]
    );
    let rc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("rootfs/runtime-config.json")).unwrap())
            .unwrap();
    assert_eq!(rc["config"]["rootIds"][0], "root");
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_are_byte_identical_across_runs_and_hosts() {
    // Same inputs, same digests: nothing in the output depends on time, host or user.
    if std::env::var_os("SOURCE_DATE_EPOCH").is_some() {
        eprintln!("skipping: SOURCE_DATE_EPOCH is set, so builds carry its timestamp");
        return;
    }
    let a = build(
        Bytes::from_static(MODULE),
        &BuildOptions {
            variant: Some(Variant::Compat),
            source_date_epoch: None,
            ..Default::default()
        },
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = build(
        Bytes::from_static(MODULE),
        &BuildOptions {
            variant: Some(Variant::Compat),
            source_date_epoch: None,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.manifest_digest(), b.manifest_digest());
    // Pinned digests: a change in the writer's bytes must be deliberate.
    let oci = build(
        Bytes::from_static(MODULE),
        &BuildOptions {
            source_date_epoch: None,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(oci.variant(), Variant::Oci);
    assert_eq!(
        a.manifest_digest().to_string(),
        "sha256:b6586f45c330c5f60426952a8b161ea1bdc501252cd9c819bd8c07f1037d7e82"
    );
    assert_eq!(
        oci.manifest_digest().to_string(),
        "sha256:7d893a7de6287263d5816a62e51e291232c99c9c030649a097fd4457a09b3d31"
    );
}
