//! Concurrent in-memory pulls of one image through one client share one download, against
//! the real test bed: the images are pushed through its fault proxy, which counts the
//! requests the registry behind it saw, and delays the layer download so the pulls are
//! sure to overlap (a delay is how long the first download takes; the other pulls only
//! need to fetch a manifest and a config meanwhile).
//!
//! Pulls run on threads through the blocking API, as the Go and C faces call the library.

mod common;

use std::sync::Barrier;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use wasm_image::runtime::{block_on, Blocking, CancellationToken};
use wasm_image::{build, BuildOptions, CallOptions, Client, ClientOptions, ErrorKind, Variant};

use common::{add_faults, bed_str, fault_log, testbed};

/// How long the fault proxy holds the first layer download: far longer than the other
/// pulls need to reach it (two small requests each over loopback).
const LAYER_DELAY_SECS: u32 = 10;

fn client(host: &str, max_retries: u32) -> Client {
    Client::new(ClientOptions {
        use_config_files: false,
        insecure_registries: vec![host.to_string()],
        read_timeout: Duration::from_secs(60),
        retry_base_delay: Duration::from_millis(20),
        max_retries,
        ..ClientOptions::default()
    })
    .unwrap()
}

/// A valid module of about `size` bytes: the header and one custom section of bytes
/// that depend on `seed`, so different images have different layers.
fn module(seed: u8, size: usize) -> Vec<u8> {
    let name = b"pad";
    let payload: Vec<u8> = (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = b"\0asm\x01\0\0\0\x00".to_vec();
    let mut len = section.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&section);
    out
}

fn run<T>(
    cancel: Option<&CancellationToken>,
    work: impl std::future::Future<Output = wasm_image::Result<T>>,
) -> wasm_image::Result<T> {
    block_on(
        Blocking {
            cancel,
            ..Blocking::default()
        },
        |_| work,
    )
}

/// An image pushed through the fault proxy.
struct Pushed {
    location: String,
    /// The digest of the layer holding the module.
    layer: String,
    config: String,
}

fn pushed(bed: &Value, test: &str, variant: Variant, module: &[u8]) -> Pushed {
    let host = bed_str(bed, &["faulty", "host"]);
    let name = format!("shared/{}", common::unique(test));
    let location = format!("{host}/{name}:v1");
    let image = build(
        Bytes::copy_from_slice(module),
        &BuildOptions {
            variant: Some(variant),
            ..BuildOptions::default()
        },
    )
    .unwrap();
    let client = client(&host, 2);
    run(
        None,
        client.push(&image, &location, &CallOptions::default()),
    )
    .unwrap();
    let manifest: Value = serde_json::from_slice(&image.info().manifest).unwrap();
    Pushed {
        location,
        // The oci variant lists its runtime config first; the module is the last layer.
        layer: manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string(),
        config: image.info().config_descriptor.digest.to_string(),
    }
}

fn repository(location: &str) -> &str {
    let path = location.split_once('/').unwrap().1;
    path.rsplit_once(':').unwrap().0
}

fn gets(bed: &Value, location: &str, what: &str) -> usize {
    fault_log(bed, &format!("{}/blobs/{what}", repository(location)))
        .iter()
        .filter(|e| e["method"] == "GET")
        .count()
}

fn delay_layer(bed: &Value, location: &str, layer: &str, times: u32) {
    add_faults(
        bed,
        json!({"match": format!("{}/blobs/{layer}", repository(location)), "method": "GET",
               "action": "delay", "seconds": LAYER_DELAY_SECS, "times": times}),
    );
}

/// `n` pulls of `location` on as many threads, started together, through one client.
fn pull_together(client: &Client, location: &str, n: usize) -> Vec<wasm_image::Result<Bytes>> {
    let start = Barrier::new(n);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    run(None, client.pull(location, &CallOptions::default()))
                        .map(|image| image.module().clone())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

fn one_download_for_sixteen_pulls(variant: Variant, test: &str) {
    let bed = testbed();
    let module = module(1, 1 << 20);
    let Pushed {
        location, layer, ..
    } = pushed(&bed, test, variant, &module);
    delay_layer(&bed, &location, &layer, 1);
    let client = client(&bed_str(&bed, &["faulty", "host"]), 0);
    for pulled in pull_together(&client, &location, 16) {
        assert_eq!(pulled.unwrap().as_ref(), module.as_slice());
    }
    assert_eq!(gets(&bed, &location, &layer), 1, "one layer download");
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn sixteen_concurrent_pulls_of_an_oci_image_download_its_layer_once() {
    one_download_for_sixteen_pulls(Variant::Oci, "oci16");
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn sixteen_concurrent_pulls_of_a_compat_image_download_its_layer_once() {
    one_download_for_sixteen_pulls(Variant::Compat, "compat16");
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn different_images_are_not_merged_and_sequential_pulls_download_again() {
    let bed = testbed();
    let (a_module, b_module) = (module(2, 4096), module(3, 4096));
    let Pushed {
        location: a,
        layer: a_layer,
        ..
    } = pushed(&bed, "merge-a", Variant::Oci, &a_module);
    let Pushed {
        location: b,
        layer: b_layer,
        ..
    } = pushed(&bed, "merge-b", Variant::Oci, &b_module);
    delay_layer(&bed, &a, &a_layer, 1);
    delay_layer(&bed, &b, &b_layer, 1);
    let client = client(&bed_str(&bed, &["faulty", "host"]), 0);
    let (a_pulls, b_pulls) = std::thread::scope(|s| {
        let a_pulls = s.spawn(|| pull_together(&client, &a, 8));
        let b_pulls = s.spawn(|| pull_together(&client, &b, 8));
        (a_pulls.join().unwrap(), b_pulls.join().unwrap())
    });
    for pulled in a_pulls {
        assert_eq!(pulled.unwrap().as_ref(), a_module.as_slice());
    }
    for pulled in b_pulls {
        assert_eq!(pulled.unwrap().as_ref(), b_module.as_slice());
    }
    assert_eq!(gets(&bed, &a, &a_layer), 1);
    assert_eq!(gets(&bed, &b, &b_layer), 1);

    // Nothing is kept once a download ends: each later pull downloads again.
    for _ in 0..2 {
        let image = run(None, client.pull(&a, &CallOptions::default())).unwrap();
        assert_eq!(image.module().as_ref(), a_module.as_slice());
    }
    assert_eq!(gets(&bed, &a, &a_layer), 3);
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn a_failed_download_fails_every_waiting_pull_with_its_error() {
    let bed = testbed();
    let module = module(4, 4096);
    let Pushed {
        location, layer, ..
    } = pushed(&bed, "fail", Variant::Oci, &module);
    // Held, then cut off without an answer; with no retries that fails the download.
    add_faults(
        &bed,
        json!({"match": format!("{}/blobs/{layer}", repository(&location)), "method": "GET",
               "action": "stall", "before_headers": true, "seconds": LAYER_DELAY_SECS,
               "then": "close", "times": 1}),
    );
    let client = client(&bed_str(&bed, &["faulty", "host"]), 0);
    let errors: Vec<_> = pull_together(&client, &location, 8)
        .into_iter()
        .map(|r| r.map(drop).expect_err("the download failed"))
        .collect();
    let first = &errors[0];
    assert_ne!(first.kind(), ErrorKind::Cancelled, "{first}");
    for e in &errors {
        assert_eq!(e.kind(), first.kind(), "{e}");
        assert_eq!(e.message(), first.message());
    }
    assert_eq!(gets(&bed, &location, &layer), 1, "one failed download");

    // The failure is not remembered either: the next pull downloads and succeeds.
    let image = run(None, client.pull(&location, &CallOptions::default())).unwrap();
    assert_eq!(image.module().as_ref(), module.as_slice());
}

/// Polls `done` until it holds; a bound far beyond any loaded machine's pace turns a
/// pull that never gets there into a failure instead of a hung suite.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(std::time::Instant::now() < give_up, "never saw {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the fault proxy has answered `n` GETs for `what` in the repository.
fn answered(bed: &Value, location: &str, what: &str, n: usize) -> bool {
    fault_log(bed, &format!("{}/{what}", repository(location)))
        .iter()
        .filter(|e| e["method"] == "GET" && e["status"] == 200)
        .count()
        >= n
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn a_cancelled_pull_does_not_fail_the_pulls_waiting_for_its_download() {
    let bed = testbed();
    let module = module(5, 64 << 10);
    let Pushed {
        location,
        layer,
        config,
    } = pushed(&bed, "cancel", Variant::Oci, &module);
    // Both the cancelled pull's download and the one that replaces it are held, so the
    // waiters are surely waiting for each.
    delay_layer(&bed, &location, &layer, 2);
    let client = client(&bed_str(&bed, &["faulty", "host"]), 0);
    let cancel = CancellationToken::new();
    let (cancelled, others) = std::thread::scope(|s| {
        let first = s.spawn(|| {
            run(
                Some(&cancel),
                client.pull(&location, &CallOptions::default()),
            )
        });
        // The first pull is downloading the layer before the others start.
        wait_until("the first layer download", || {
            gets(&bed, &location, &layer) > 0
        });
        let others: Vec<_> = (0..6)
            .map(|_| s.spawn(|| run(None, client.pull(&location, &CallOptions::default()))))
            .collect();
        wait_until("every pull's config", || {
            answered(&bed, &location, &format!("blobs/{config}"), 7)
        });
        cancel.cancel();
        let cancelled = first.join().unwrap();
        let others: Vec<_> = others.into_iter().map(|t| t.join().unwrap()).collect();
        (cancelled, others)
    });
    assert_eq!(
        cancelled.map(drop).unwrap_err().kind(),
        ErrorKind::Cancelled
    );
    for pulled in others {
        assert_eq!(pulled.unwrap().module().as_ref(), module.as_slice());
    }
    assert_eq!(
        gets(&bed, &location, &layer),
        2,
        "the cancelled download and the one a waiter took over"
    );
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn a_waiting_pull_that_is_cancelled_stops_alone() {
    let bed = testbed();
    let module = module(6, 64 << 10);
    let Pushed {
        location,
        layer,
        config,
    } = pushed(&bed, "cancel-waiter", Variant::Oci, &module);
    delay_layer(&bed, &location, &layer, 1);
    let client = client(&bed_str(&bed, &["faulty", "host"]), 0);
    let cancel = CancellationToken::new();
    let (cancelled, others) = std::thread::scope(|s| {
        let first = s.spawn(|| run(None, client.pull(&location, &CallOptions::default())));
        wait_until("the first layer download", || {
            gets(&bed, &location, &layer) > 0
        });
        let waiter = s.spawn(|| {
            run(
                Some(&cancel),
                client.pull(&location, &CallOptions::default()),
            )
        });
        let others: Vec<_> = (0..4)
            .map(|_| s.spawn(|| run(None, client.pull(&location, &CallOptions::default()))))
            .collect();
        wait_until("every pull's config", || {
            answered(&bed, &location, &format!("blobs/{config}"), 6)
        });
        cancel.cancel();
        let cancelled = waiter.join().unwrap();
        let others: Vec<_> = std::iter::once(first)
            .chain(others)
            .map(|t| t.join().unwrap())
            .collect();
        (cancelled, others)
    });
    assert_eq!(
        cancelled.map(drop).unwrap_err().kind(),
        ErrorKind::Cancelled
    );
    for pulled in others {
        assert_eq!(pulled.unwrap().module().as_ref(), module.as_slice());
    }
    assert_eq!(gets(&bed, &location, &layer), 1);
}
