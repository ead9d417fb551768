//! Whole operations across stores against the real test bed: copies that keep digests
//! between registries, layouts and archives; skopeo reading what we push; cancellation
//! and progress as the blocking API delivers them.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use wasm_image::runtime::{block_on, Blocking};
use wasm_image::{
    build, BuildOptions, CallOptions, CancellationToken, Client, ClientOptions, ErrorKind,
    ProgressEvent, Variant,
};

fn client(insecure: &[&str]) -> Client {
    Client::new(ClientOptions {
        use_config_files: false,
        insecure_registries: insecure.iter().map(|h| h.to_string()).collect(),
        retry_base_delay: Duration::from_millis(20),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn copies_keep_digests_across_every_store_kind() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let c = client(&[&plain]);
    let work = tempfile::tempdir().unwrap();
    for variant in [Variant::Oci, Variant::Compat] {
        let img = build(
            Bytes::from_static(MODULE),
            &BuildOptions {
                variant: Some(variant),
                ..Default::default()
            },
        )
        .unwrap();
        let name = unique("copy-chain");
        let first = format!("{plain}/{name}/a:v1");
        let digest = c.push(&img, &first, &CallOptions::default()).await.unwrap();
        let layout = format!("oci:{}:{name}", work.path().join("layout").display());
        let archive = format!(
            "oci-archive:{}:{name}",
            work.path().join("images.tar").display()
        );
        let last = format!("{plain}/{name}/b:v2");
        let mut from = first.clone();
        for to in [&layout, &archive, &last] {
            assert_eq!(
                &c.copy(&from, to, &CallOptions::default()).await.unwrap(),
                &digest,
                "{from} -> {to}"
            );
            assert_eq!(
                c.resolve(to, &CallOptions::default()).await.unwrap().digest,
                digest,
                "{to}"
            );
            from = to.clone();
        }
        let back = c.pull(&last, &CallOptions::default()).await.unwrap();
        assert_eq!(&back.module()[..], MODULE);
        assert_eq!(back.variant(), variant);
        assert_eq!(back.manifest_digest(), &digest);
        // A pulled image pushes again unchanged (blobs not in memory come from the source).
        let again = format!("{plain}/{name}/c:v3");
        assert_eq!(
            c.push(&back, &again, &CallOptions::default())
                .await
                .unwrap(),
            digest
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn an_index_copies_whole_and_pulls_with_both_digests() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let c = client(&[&plain]);
    let layout = Layout::new();
    let cfg = br#"{"type":"envoy_proxy"}"#;
    layout.blob(cfg);
    layout.blob(MODULE);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.module.wasm.config.v1+json", cfg),
        "layers": [descriptor("application/vnd.module.wasm.content.layer.v1+wasm", MODULE)]
    }))
    .unwrap();
    layout.blob(&manifest);
    let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    entry["platform"] = serde_json::json!({"architecture": "wasm", "os": "wasip1"});
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [entry]})).unwrap();
    let index_digest = layout.tag("idx", &index, "application/vnd.oci.image.index.v1+json");
    let remote = format!("{plain}/{}:idx", unique("index-copy"));
    let copied = c
        .copy(&layout.location("idx"), &remote, &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(copied.to_string(), index_digest);
    let img = c.pull(&remote, &CallOptions::default()).await.unwrap();
    assert_eq!(
        img.index_digest().map(|d| d.to_string()),
        Some(index_digest)
    );
    assert_eq!(img.manifest_digest().to_string(), sha256(&manifest));
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn skopeo_pulls_what_we_push_intact() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let c = client(&[&plain]);
    let work = tempfile::tempdir().unwrap();
    for variant in [Variant::Oci, Variant::Compat] {
        let img = build(
            Bytes::from_static(MODULE),
            &BuildOptions {
                variant: Some(variant),
                ..Default::default()
            },
        )
        .unwrap();
        let remote = format!("{plain}/{}:v1", unique("skopeo-reads"));
        let digest = block_on(Blocking::default(), |_| async {
            c.push(&img, &remote, &CallOptions::default()).await
        })
        .unwrap();
        let out = std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{remote}"))
            .output()
            .expect("skopeo runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            sha256(&out.stdout),
            digest.to_string(),
            "{variant}: skopeo sees our exact manifest"
        );
        let dir = work.path().join(variant.name());
        let status = std::process::Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{remote}"))
            .arg(format!("oci:{}:t", dir.display()))
            .status()
            .unwrap();
        assert!(status.success());
        let back = block_on(Blocking::default(), |_| async {
            c.pull(&format!("oci:{}:t", dir.display()), &CallOptions::default())
                .await
        })
        .unwrap();
        assert_eq!(&back.module()[..], MODULE);
    }
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn cancellation_stops_a_stalled_pull_promptly_and_leaves_nothing() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let faulty = bed_str(&bed, &["faulty", "host"]);
    let c = client(&[&plain, &faulty]);
    let name = unique("cancel");
    let img = build(Bytes::from_static(MODULE), &BuildOptions::default()).unwrap();
    block_on(Blocking::default(), |_| async {
        c.push(&img, &format!("{plain}/{name}:v1"), &CallOptions::default())
            .await
    })
    .unwrap();
    add_faults(
        &bed,
        serde_json::json!([{"match": format!("{name}/blobs/"), "method": "GET", "action": "stall", "seconds": 20, "times": 5}]),
    );

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("plugin.wasm");
    let token = CancellationToken::new();
    let trigger = token.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        trigger.cancel();
    });
    let started = Instant::now();
    let result = block_on(
        Blocking {
            cancel: Some(&token),
            ..Default::default()
        },
        |_| async {
            c.pull_to_file(
                &format!("{faulty}/{name}:v1"),
                &file,
                &CallOptions::default(),
            )
            .await
        },
    );
    let took = started.elapsed();
    canceller.join().unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(took < Duration::from_millis(1500), "cancel took {took:?}");
    assert!(
        entries(out.path()).is_empty(),
        "left {:?}",
        entries(out.path())
    );
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn progress_arrives_on_the_calling_thread_and_completes() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let c = client(&[&plain]);
    let mut module = MODULE.to_vec();
    // A custom section of 3 MiB so the transfer takes several reads.
    let payload = vec![7u8; 3 << 20];
    let mut section = vec![4u8];
    section.extend_from_slice(b"pad!");
    section.extend_from_slice(&payload);
    module.push(0);
    let mut len = section.len() as u32;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        module.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    module.extend_from_slice(&section);
    let img = build(Bytes::from(module.clone()), &BuildOptions::default()).unwrap();
    let remote = format!("{plain}/{}:v1", unique("progress"));
    block_on(Blocking::default(), |_| async {
        c.push(&img, &remote, &CallOptions::default()).await
    })
    .unwrap();

    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(
        std::thread::ThreadId,
        ProgressEvent,
    )>::new()));
    let sink = events.clone();
    let progress: wasm_image::Progress = std::sync::Arc::new(move |e: &ProgressEvent| {
        sink.lock()
            .unwrap()
            .push((std::thread::current().id(), e.clone()))
    });
    let pulled = block_on(
        Blocking {
            progress: Some(progress),
            ..Default::default()
        },
        |progress| async {
            c.pull(
                &remote,
                &CallOptions {
                    progress,
                    ..Default::default()
                },
            )
            .await
        },
    )
    .unwrap();
    assert_eq!(&pulled.module()[..], &module[..]);
    let events = events.lock().unwrap();
    let me = std::thread::current().id();
    assert!(
        events.iter().all(|(t, _)| *t == me),
        "every callback ran on the calling thread"
    );
    let module_events: Vec<&ProgressEvent> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.total == module.len() as u64)
        .collect();
    assert!(
        module_events.len() >= 2,
        "start and end at least: {module_events:?}"
    );
    assert_eq!(module_events.last().unwrap().done, module.len() as u64);
    assert!(module_events.windows(2).all(|w| w[0].done <= w[1].done));
}
