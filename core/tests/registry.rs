//! The registry store against real servers: docker-registry (CNCF distribution) instances
//! started by `tests/support/testbed.py`, whose `testbed.json` is named by
//! `$WASM_IMAGE_TESTBED`. Without it every test prints a note and passes.
//!
//! Each test uses its own repository name, so tests can run in parallel against the
//! shared servers and filter the fault proxy's log by that name.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use wasm_image::digest::{Descriptor, Digest};
use wasm_image::location::{Repository, Selector};
use wasm_image::media_types as mt;
use wasm_image::options::{ClientOptions, Credentials};
use wasm_image::store::registry::RegistryStore;
use wasm_image::store::Context;
use wasm_image::store::{BlobStream, RawManifest, Store};
use wasm_image::ErrorKind;

use common::{bed_str, testbed};
use wasm_image::store::conformance;
use wasm_image::store::Access;

/// Options for loopback test servers: no config files (the developer's own docker
/// config must not leak in), short retry delays.
fn options(insecure: &[&str]) -> ClientOptions {
    ClientOptions {
        use_config_files: false,
        insecure_registries: insecure.iter().map(|h| h.to_string()).collect(),
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_secs(3),
        read_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

fn unique(test: &str) -> String {
    format!("regtest/{}", common::unique(test))
}

fn store(host: &str, name: &str, opts: ClientOptions) -> Arc<dyn Store> {
    let ctx = Context::new(opts).expect("client options are valid");
    open(host, name, &ctx)
}

fn open(host: &str, name: &str, ctx: &Context) -> Arc<dyn Store> {
    Arc::new(RegistryStore::new(
        Repository {
            registry: host.to_string(),
            name: name.to_string(),
        },
        ctx.clone(),
    ))
}

fn tag(t: &str) -> Selector {
    Selector {
        tag: Some(t.to_string()),
        digest: None,
    }
}

fn by_digest(d: &Digest) -> Selector {
    Selector {
        tag: None,
        digest: Some(d.clone()),
    }
}

fn stream(data: &[u8]) -> BlobStream {
    Box::pin(std::io::Cursor::new(data.to_vec()))
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Pushed {
    manifest: RawManifest,
    manifest_digest: Digest,
    config: (Descriptor, Vec<u8>),
    layer: (Descriptor, Vec<u8>),
}

/// Reads an image back through the store conformance kit (every byte verified against
/// its descriptor) and checks it is the one pushed.
async fn check_pushed(store: &dyn Store, tag_name: &str, pushed: &Pushed) {
    let descriptor = conformance::check_image(store, &tag(tag_name)).await;
    assert_eq!(descriptor.digest, pushed.manifest_digest);
    assert_eq!(descriptor.media_type, mt::OCI_MANIFEST);
}

/// Pushes a small oci-variant image (config + one layer) under `tag_name`.
async fn push_image(store: &dyn Store, tag_name: &str, layer_bytes: Vec<u8>) -> Pushed {
    let config_bytes = br#"{"type":"envoy_proxy","abiVersions":[],"rootIds":[]}"#.to_vec();
    let config = Descriptor::for_bytes(mt::SOLO_WASM_CONFIG, &config_bytes);
    let layer = Descriptor::for_bytes(mt::SOLO_WASM_LAYER, &layer_bytes);
    store
        .put_blob(&config, stream(&config_bytes))
        .await
        .expect("config uploads");
    store
        .put_blob(&layer, stream(&layer_bytes))
        .await
        .expect("layer uploads");
    let manifest_json = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest_json).unwrap());
    let manifest_digest = Digest::sha256_of(&bytes);
    let manifest = RawManifest {
        bytes,
        media_type: Some(mt::OCI_MANIFEST.to_string()),
    };
    store
        .put_manifest(&manifest, &manifest_digest, Some(tag_name))
        .await
        .expect("manifest uploads");
    Pushed {
        manifest,
        manifest_digest,
        config: (config, config_bytes),
        layer: (layer, layer_bytes),
    }
}

async fn read_blob(store: &dyn Store, d: &Descriptor) -> wasm_image::Result<Vec<u8>> {
    let mut reader = store.open_blob(d).await?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .await
        .map_err(wasm_image::Error::from_io)?;
    Ok(out)
}

async fn control(bed: &Value, rules: Value) {
    let url = bed_str(bed, &["faulty", "control"]);
    let r = reqwest::Client::new()
        .post(&url)
        .json_body(&rules)
        .send()
        .await
        .expect("fault proxy answers");
    assert!(
        r.status().is_success(),
        "fault rule rejected: {}",
        r.text().await.unwrap_or_default()
    );
}

/// Removes the rules whose `match` is exactly `rule_match`.
async fn clear_rules(bed: &Value, rule_match: &str) {
    let url = format!(
        "{}?match={rule_match}",
        bed_str(bed, &["faulty", "control"])
    );
    reqwest::Client::new()
        .delete(url)
        .send()
        .await
        .expect("fault proxy answers");
}

/// Requests the fault proxy saw whose path contains `filter`.
async fn log(bed: &Value, key: &str, filter: &str) -> Vec<Value> {
    let url = bed_str(bed, &["faulty", key]);
    let r = reqwest::Client::new()
        .get(&url)
        .send()
        .await
        .expect("log answers");
    let all: Vec<Value> = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    all.into_iter()
        .filter(|e| e["path"].as_str().unwrap_or_default().contains(filter))
        .collect()
}

fn count(entries: &[Value], method: &str, path_part: &str) -> usize {
    entries
        .iter()
        .filter(|e| {
            e["method"] == method && e["path"].as_str().unwrap_or_default().contains(path_part)
        })
        .count()
}

trait JsonBody {
    fn json_body(self, v: &Value) -> Self;
}
impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(v).unwrap())
    }
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn conformance_plain_basic_auth_and_tls_registries() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let store_plain = store(&plain, &unique("conformance"), options(&[&plain]));
    conformance::check_store(store_plain.as_ref(), Access::Write, &tag("v1")).await;

    let basic = bed_str(&bed, &["basic", "host"]);
    let mut o = options(&[&basic]);
    o.credentials.insert(
        basic.clone(),
        Credentials::Basic {
            username: bed_str(&bed, &["basic", "username"]),
            password: bed_str(&bed, &["basic", "password"]),
        },
    );
    let store_basic = store(&basic, &unique("conformance"), o);
    conformance::check_store(store_basic.as_ref(), Access::Write, &tag("v1")).await;

    let tls = bed_str(&bed, &["tls", "host"]);
    let mut o = options(&[]);
    o.ca_certificates_pem = vec![std::fs::read(bed_str(&bed, &["tls", "ca_cert"])).unwrap()];
    let store_tls = store(&tls, &unique("conformance"), o);
    conformance::check_store(store_tls.as_ref(), Access::Write, &tag("v1")).await;
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn plain_round_trip_small_and_chunked() {
    let bed = testbed();
    let host = bed_str(&bed, &["plain", "host"]);
    let name = unique("plain");
    let store = store(&host, &name, options(&[&host]));

    // 9 MiB + 1: three PATCH chunks of at most 4 MiB and a final PUT.
    let big = pseudo_random(9 * 1024 * 1024 + 1, 1);
    let pushed = push_image(store.as_ref(), "v1", big).await;
    check_pushed(store.as_ref(), "v1", &pushed).await;

    // Pushing the same blob again succeeds.
    let (d, bytes) = &pushed.config;
    store.put_blob(d, stream(bytes)).await.unwrap();

    // Exactly 4 MiB goes in one PUT; the stream is read to its end (verification).
    let four = pseudo_random(4 * 1024 * 1024, 2);
    let d4 = Descriptor::for_bytes(mt::SOLO_WASM_LAYER, &four);
    store.put_blob(&d4, stream(&four)).await.unwrap();
    assert_eq!(read_blob(store.as_ref(), &d4).await.unwrap(), four);

    // A manifest without a declared media type is sent with the one in its JSON.
    let untyped = RawManifest {
        bytes: pushed.manifest.bytes.clone(),
        media_type: None,
    };
    store
        .put_manifest(&untyped, &pushed.manifest_digest, Some("v2"))
        .await
        .unwrap();
    assert_eq!(
        store.resolve(&tag("v2")).await.unwrap().media_type,
        mt::OCI_MANIFEST
    );

    // Absent things are NOT_FOUND, naming what and where.
    let err = store.resolve(&tag("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.message().contains(&name) && err.message().contains(":nope"),
        "{err}"
    );
    let err = store.manifest(&tag("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.registry().map(|r| r.code.as_deref()),
        Some(Some("MANIFEST_UNKNOWN")),
        "{err}"
    );
    let missing = Descriptor::for_bytes(mt::SOLO_WASM_LAYER, b"never pushed");
    assert!(!store.has_blob(&missing).await.unwrap());
    let err = read_blob(store.as_ref(), &missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("blob"), "{err}");
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn wrong_bytes_are_not_committed() {
    let bed = testbed();
    let host = bed_str(&bed, &["plain", "host"]);
    let store = store(&host, &unique("wrong"), options(&[&host]));
    let d = Descriptor::for_bytes(mt::SOLO_WASM_LAYER, b"expected bytes");
    // The registry itself refuses a body whose digest differs.
    let err = store
        .put_blob(&d, stream(b"expected bytez"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Registry, "{err}");
    assert_eq!(
        err.registry().map(|r| r.code.as_deref()),
        Some(Some("DIGEST_INVALID")),
        "{err}"
    );
    // Too few bytes never reach the registry.
    let err = store.put_blob(&d, stream(b"short")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
    assert!(!store.has_blob(&d).await.unwrap());
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn manifest_size_limit() {
    let bed = testbed();
    let host = bed_str(&bed, &["plain", "host"]);
    let name = unique("limit");
    let pushed = push_image(
        store(&host, &name, options(&[&host])).as_ref(),
        "v1",
        b"\0asm\x01\0\0\0".to_vec(),
    )
    .await;
    let mut o = options(&[&host]);
    o.limits.max_metadata_bytes = 100;
    assert!(pushed.manifest.bytes.len() > 100);
    let err = store(&host, &name, o)
        .manifest(&tag("v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn basic_auth_right_wrong_and_missing() {
    let bed = testbed();
    let host = bed_str(&bed, &["basic", "host"]);
    let (user, password) = (
        bed_str(&bed, &["basic", "username"]),
        bed_str(&bed, &["basic", "password"]),
    );
    let name = unique("basic");
    let with = |user: &str, password: &str| {
        let mut o = options(&[&host]);
        o.credentials.insert(
            host.clone(),
            Credentials::Basic {
                username: user.into(),
                password: password.into(),
            },
        );
        o
    };
    let good = store(&host, &name, with(&user, &password));
    let pushed = push_image(good.as_ref(), "v1", b"\0asm\x01\0\0\0basic".to_vec()).await;
    check_pushed(good.as_ref(), "v1", &pushed).await;

    let wrong_password = "not-the-password-123";
    let err = store(&host, &name, with(&user, wrong_password))
        .resolve(&tag("v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.message().contains("rejected"), "{err}");
    assert!(!err.to_string().contains(wrong_password), "{err}");
    assert!(!format!("{err:?}").contains(wrong_password));

    let err = store(&host, &name, options(&[&host]))
        .resolve(&tag("v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.message().contains("no credentials were found"), "{err}");
    assert!(err.message().contains("explicit credentials"), "{err}");
    assert!(err.message().contains(&host), "{err}");

    // A pull secret given as bytes is the second source.
    let mut o = options(&[&host]);
    let auth = base64_encode(&format!("{user}:{password}"));
    o.docker_config_json =
        Some(format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#).into_bytes());
    assert_eq!(
        store(&host, &name, o)
            .resolve(&tag("v1"))
            .await
            .unwrap()
            .digest,
        pushed.manifest_digest
    );
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn tls_with_and_without_the_ca() {
    let bed = testbed();
    let host = bed_str(&bed, &["tls", "host"]);
    let ca = std::fs::read(bed_str(&bed, &["tls", "ca_cert"])).unwrap();
    let name = unique("tls");
    let mut o = options(&[]);
    o.ca_certificates_pem = vec![ca];
    let good = store(&host, &name, o);
    let pushed = push_image(good.as_ref(), "v1", b"\0asm\x01\0\0\0tls".to_vec()).await;
    check_pushed(good.as_ref(), "v1", &pushed).await;

    let err = store(&host, &name, options(&[]))
        .resolve(&tag("v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(
        err.message().contains("certificate") && err.message().contains("not trusted"),
        "{err}"
    );
    assert!(err.message().contains("CA"), "{err}");
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn token_registry() {
    let bed = testbed();
    let host = bed_str(&bed, &["token", "host"]);
    let token_log = format!("{}/__log__", bed_str(&bed, &["token", "token_server"]));
    let (user, password) = (
        bed_str(&bed, &["token", "username"]),
        bed_str(&bed, &["token", "password"]),
    );
    let name = unique("token");
    let mut o = options(&[&host]);
    o.credentials.insert(
        host.clone(),
        Credentials::Basic {
            username: user.clone(),
            password: password.clone(),
        },
    );
    let ctx = Context::new(o).unwrap();
    let st = open(&host, &name, &ctx);
    let pushed = push_image(st.as_ref(), "v1", b"\0asm\x01\0\0\0token".to_vec()).await;
    check_pushed(st.as_ref(), "v1", &pushed).await;

    // The token server gives no expires_in: tokens live 60 s, so a second client pulling
    // several times asks the token server once.
    let reader_ctx = Context::new(ctx.options.as_ref().clone()).unwrap();
    let reader = open(&host, &name, &reader_ctx);
    let before = token_requests(&token_log, &name).await;
    check_pushed(reader.as_ref(), "v1", &pushed).await;
    check_pushed(reader.as_ref(), "v1", &pushed).await;
    assert_eq!(
        token_requests(&token_log, &name).await - before,
        1,
        "one token for all pulls"
    );

    // Anonymous: a public repository works, a private one says no credentials were found.
    let public = bed_str(&bed, &["fixtures", "token-public"]);
    let public_name = public
        .trim_start_matches(&format!("{host}/"))
        .trim_end_matches(":latest")
        .to_string();
    let anon = store(&host, &public_name, options(&[&host]));
    let d = anon
        .resolve(&tag("latest"))
        .await
        .expect("anonymous pull of public/*");
    anon.manifest(&by_digest(&d.digest)).await.unwrap();
    let err = store(&host, &name, options(&[&host]))
        .resolve(&tag("v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.message().contains("no credentials were found"), "{err}");

    // Wrong password: the token server rejects it.
    let mut bad = options(&[&host]);
    bad.credentials.insert(
        host.clone(),
        Credentials::Basic {
            username: user,
            password: "wrong-pass-777".into(),
        },
    );
    let err = store(&host, &name, bad)
        .resolve(&tag("v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.message().contains("rejected"), "{err}");
    assert!(
        !err.to_string().contains("wrong-pass-777") && !err.to_string().contains(&password),
        "{err}"
    );
}

async fn token_requests(url: &str, name: &str) -> usize {
    let r = reqwest::Client::new().get(url).send().await.unwrap();
    let all: Vec<Value> = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    all.iter().filter(|e| e.to_string().contains(name)).count()
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn mirror_read_through() {
    let bed = testbed();
    let upstream = bed_str(&bed, &["mirror", "upstream"]);
    let mirror = bed_str(&bed, &["mirror", "host"]);
    let name = unique("mirror");
    let pushed = push_image(
        store(&upstream, &name, options(&[&upstream])).as_ref(),
        "v1",
        b"\0asm\x01\0\0\0mirror".to_vec(),
    )
    .await;

    // The registry name points at a closed port: reads can only succeed via the mirrors,
    // and the first mirror (also closed) must fall through to the second.
    let dead = "127.0.0.1:9";
    let mut o = options(&[dead, &mirror, "127.0.0.1:1"]);
    o.max_retries = 0;
    o.mirrors = BTreeMap::from([(
        dead.to_string(),
        vec!["127.0.0.1:1".to_string(), mirror.clone()],
    )]);
    let via_mirror = store(dead, &name, o);
    let d = via_mirror
        .resolve(&tag("v1"))
        .await
        .expect("resolve through the mirror");
    assert_eq!(d.digest, pushed.manifest_digest);
    assert_eq!(
        via_mirror.manifest(&tag("v1")).await.unwrap().bytes,
        pushed.manifest.bytes
    );
    assert_eq!(
        read_blob(via_mirror.as_ref(), &pushed.layer.0)
            .await
            .unwrap(),
        pushed.layer.1
    );
    // Writes (and has_blob, asked before writing) go to the registry only.
    let err = via_mirror.has_blob(&pushed.layer.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn mirror_errors_fall_through_to_the_registry() {
    let bed = testbed();
    let plain = bed_str(&bed, &["plain", "host"]);
    let faulty = bed_str(&bed, &["faulty", "host"]);
    let name = unique("mirrorfall");
    let pushed = push_image(
        store(&plain, &name, options(&[&plain])).as_ref(),
        "v1",
        b"\0asm\x01\0\0\0fall".to_vec(),
    )
    .await;
    // The fault proxy (in front of the same registry) acts as a mirror that fails.
    control(
        &bed,
        json!([{"match": name, "action": "status", "status": 404, "times": 1},
                         {"match": name, "action": "status", "status": 503, "times": 1}]),
    )
    .await;
    let mut o = options(&[&plain, &faulty]);
    o.max_retries = 0;
    o.mirrors = BTreeMap::from([(plain.clone(), vec![faulty.clone()])]);
    let st = store(&plain, &name, o);
    assert_eq!(
        st.resolve(&tag("v1")).await.unwrap().digest,
        pushed.manifest_digest
    );
    assert_eq!(
        st.manifest(&tag("v1")).await.unwrap().bytes,
        pushed.manifest.bytes
    );
    // Rules used up: now the mirror answers.
    assert_eq!(
        read_blob(st.as_ref(), &pushed.layer.0).await.unwrap(),
        pushed.layer.1
    );
    let seen = log(&bed, "log", &name).await;
    assert_eq!(count(&seen, "GET", "/blobs/"), 1, "{seen:?}");
}

fn faulty_store(bed: &Value, name: &str, tweak: impl FnOnce(&mut ClientOptions)) -> Arc<dyn Store> {
    let host = bed_str(bed, &["faulty", "host"]);
    let mut o = options(&[&host]);
    tweak(&mut o);
    store(&host, name, o)
}

async fn faulty_image(bed: &Value, test: &str, layer: Vec<u8>) -> (String, Pushed) {
    let name = unique(test);
    let pushed = push_image(faulty_store(bed, &name, |_| {}).as_ref(), "v1", layer).await;
    (name, pushed)
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_resolve_is_one_request() {
    let bed = testbed();
    let (name, pushed) = faulty_image(&bed, "resolve1", b"\0asm\x01\0\0\0one".to_vec()).await;
    let st = faulty_store(&bed, &name, |_| {});
    let before = log(&bed, "log", &name).await.len();
    assert_eq!(
        st.resolve(&tag("v1")).await.unwrap().digest,
        pushed.manifest_digest
    );
    let seen = log(&bed, "log", &name).await;
    assert_eq!(seen.len() - before, 1, "{seen:?}");
    assert_eq!(seen.last().unwrap()["method"], "HEAD");
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_429_with_retry_after_then_success() {
    let bed = testbed();
    let (name, pushed) = faulty_image(&bed, "r429", b"\0asm\x01\0\0\0rl".to_vec()).await;
    control(&bed, json!([{"match": format!("{name}/manifests/"), "method": "GET", "action": "status", "status": 429, "retry_after": 1, "times": 1}])).await;
    let st = faulty_store(&bed, &name, |_| {});
    let started = Instant::now();
    assert_eq!(
        st.manifest(&tag("v1")).await.unwrap().bytes,
        pushed.manifest.bytes
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
    let seen = log(&bed, "log", &name).await;
    assert_eq!(count(&seen, "GET", "/manifests/"), 2, "{seen:?}");

    // Rate limited for good: RATE_LIMITED with the server's Retry-After.
    control(&bed, json!([{"match": format!("{name}/manifests/"), "action": "status", "status": 429, "retry_after": 7, "times": null}])).await;
    let st = faulty_store(&bed, &name, |o| {
        o.max_retries = 1;
        o.retry_max_delay = Duration::from_millis(50);
    });
    let err = st.manifest(&tag("v1")).await.unwrap_err();
    clear_rules(&bed, &format!("{name}/manifests/")).await;
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.retry_after(), Some(7));
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_500_twice_then_success() {
    let bed = testbed();
    let (name, pushed) = faulty_image(&bed, "r500", b"\0asm\x01\0\0\0five".to_vec()).await;
    control(&bed, json!([{"match": format!("{name}/blobs/{}", pushed.layer.0.digest), "method": "GET", "action": "status", "status": 500, "times": 2}])).await;
    let st = faulty_store(&bed, &name, |_| {});
    assert_eq!(
        read_blob(st.as_ref(), &pushed.layer.0).await.unwrap(),
        pushed.layer.1
    );
    let seen = log(&bed, "log", &name).await;
    assert_eq!(
        count(&seen, "GET", &pushed.layer.0.digest.to_string()),
        3,
        "{seen:?}"
    );

    // 503 beyond the retries: REGISTRY with the status.
    control(&bed, json!([{"match": format!("{name}/manifests/"), "action": "status", "status": 503, "times": 3}])).await;
    let st = faulty_store(&bed, &name, |o| o.max_retries = 2);
    let err = st.resolve(&tag("v1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Registry, "{err}");
    assert_eq!(err.registry().unwrap().status, 503);
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_404_and_403_are_not_retried() {
    let bed = testbed();
    let (name, _) = faulty_image(&bed, "r404", b"\0asm\x01\0\0\0nf".to_vec()).await;
    control(&bed, json!([{"match": format!("{name}/manifests/v1"), "action": "status", "status": 404, "times": 5}])).await;
    let st = faulty_store(&bed, &name, |_| {});
    let err = st.manifest(&tag("v1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let seen = log(&bed, "log", &format!("{name}/manifests/v1")).await;
    assert_eq!(
        count(&seen, "GET", "/manifests/v1"),
        1,
        "404 must not be retried: {seen:?}"
    );

    control(&bed, json!([{"match": format!("{name}/manifests/v2"), "action": "status", "status": 403, "times": 5}])).await;
    let err = st.manifest(&tag("v2")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    let seen = log(&bed, "log", &format!("{name}/manifests/v2")).await;
    assert_eq!(
        count(&seen, "GET", "/manifests/v2"),
        1,
        "403 must not be retried: {seen:?}"
    );
    clear_rules(&bed, &format!("{name}/manifests/v1")).await;
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_reset_mid_blob_is_resumed() {
    let bed = testbed();
    let layer = pseudo_random(3 * 1024 * 1024, 3);
    let (name, pushed) = faulty_image(&bed, "reset", layer).await;
    let digest = pushed.layer.0.digest.to_string();
    control(&bed, json!([{"match": format!("{name}/blobs/{digest}"), "method": "GET", "action": "reset_after", "bytes": 1_000_000, "times": 2}])).await;
    let st = faulty_store(&bed, &name, |_| {});
    let got = read_blob(st.as_ref(), &pushed.layer.0)
        .await
        .expect("resumed download");
    assert!(got == pushed.layer.1, "resumed bytes differ");
    let seen = log(&bed, "log", &format!("{name}/blobs/{digest}")).await;
    assert_eq!(count(&seen, "GET", &digest), 3, "{seen:?}");
    let statuses: Vec<&Value> = seen
        .iter()
        .filter(|e| e["method"] == "GET")
        .map(|e| &e["status"])
        .collect();
    assert_eq!(statuses, [200, 206, 206], "resumed with ranges");
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_stall_hits_the_idle_timeout_and_resumes() {
    let bed = testbed();
    let layer = pseudo_random(512 * 1024, 4);
    let (name, pushed) = faulty_image(&bed, "stall", layer).await;
    let digest = pushed.layer.0.digest.to_string();
    control(&bed, json!([{"match": format!("{name}/blobs/{digest}"), "method": "GET", "action": "stall", "bytes": 4096, "seconds": 5, "then": "close", "times": 1}])).await;
    let st = faulty_store(&bed, &name, |o| o.read_timeout = Duration::from_millis(700));
    let started = Instant::now();
    let got = read_blob(st.as_ref(), &pushed.layer.0)
        .await
        .expect("resumed after a stall");
    assert!(got == pushed.layer.1);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "idle timeout, not the whole stall: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_upload_chunk_is_resent() {
    let bed = testbed();
    let name = unique("patch");
    control(&bed, json!([{"match": format!("{name}/blobs/uploads/"), "method": "PATCH", "action": "status", "status": 502, "times": 1},
                         {"match": format!("{name}/blobs/uploads/"), "method": "POST", "action": "status", "status": 503, "times": 1}]))
    .await;
    let st = faulty_store(&bed, &name, |_| {});
    let pushed = push_image(st.as_ref(), "v1", pseudo_random(5 * 1024 * 1024, 5)).await;
    check_pushed(st.as_ref(), "v1", &pushed).await;
    let seen = log(&bed, "log", &name).await;
    assert!(
        seen.iter()
            .any(|e| e["method"] == "PATCH" && e["status"] == 502),
        "{seen:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn faulty_redirect_target_never_sees_authorization() {
    let bed = testbed();
    let (name, pushed) = faulty_image(&bed, "redirect", b"\0asm\x01\0\0\0redirect".to_vec()).await;
    let host = bed_str(&bed, &["faulty", "host"]);
    let digest = pushed.layer.0.digest.to_string();
    // Make the proxy ask for Basic credentials once, so every later request carries them.
    control(
        &bed,
        json!([{"match": format!("{name}/manifests/"), "action": "status", "status": 401, "times": 1,
                "headers": {"WWW-Authenticate": "Basic realm=\"testbed\""}},
               {"match": format!("{name}/blobs/{digest}"), "method": "GET", "action": "redirect_blob", "times": 1}]),
    )
    .await;
    let st = faulty_store(&bed, &name, |o| {
        o.credentials.insert(
            host.clone(),
            Credentials::Basic {
                username: "someone".into(),
                password: "redirect-secret".into(),
            },
        );
    });
    st.resolve(&tag("v1"))
        .await
        .expect("resolve with credentials after the challenge");
    assert_eq!(
        read_blob(st.as_ref(), &pushed.layer.0).await.unwrap(),
        pushed.layer.1
    );
    let seen = log(&bed, "log", &format!("{name}/blobs/{digest}")).await;
    let blob_get = seen
        .iter()
        .find(|e| e["method"] == "GET")
        .expect("the blob GET reached the proxy");
    assert_eq!(blob_get["had_authorization"], true, "{seen:?}");
    let redirected = log(&bed, "redirect_log", &format!("{name}/blobs/{digest}")).await;
    assert!(!redirected.is_empty(), "the redirect was followed");
    for e in &redirected {
        assert_eq!(e["had_authorization"], false, "{redirected:?}");
    }
}

/// The whole library over this store: pull the testbed's buildah fixtures from every kind
/// of registry, and copy between registries with the digest unchanged.
#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn client_pulls_fixtures_from_every_registry() {
    use wasm_image::client::Client;
    use wasm_image::options::CallOptions;
    let bed = testbed();
    let module = std::fs::read(bed_str(&bed, &["fixtures", "module"])).unwrap();
    let plain = bed_str(&bed, &["plain", "host"]);
    let (basic, token) = (
        bed_str(&bed, &["basic", "host"]),
        bed_str(&bed, &["token", "host"]),
    );
    let mut o = options(&[&plain, &basic, &token, &bed_str(&bed, &["faulty", "host"])]);
    o.ca_certificates_pem = vec![std::fs::read(bed_str(&bed, &["tls", "ca_cert"])).unwrap()];
    for (host, who) in [(&basic, "basic"), (&token, "token")] {
        o.credentials.insert(
            host.clone(),
            Credentials::Basic {
                username: bed_str(&bed, &[who, "username"]),
                password: bed_str(&bed, &[who, "password"]),
            },
        );
    }
    let client = Client::new(o).unwrap();
    let call = CallOptions::default();
    for key in [
        "buildah-oci",
        "buildah-docker",
        "basic",
        "tls",
        "token-private",
        "token-public",
    ] {
        let location = bed_str(&bed, &["fixtures", key]);
        let image = client
            .pull(&location, &call)
            .await
            .unwrap_or_else(|e| panic!("{location}: {e}"));
        assert_eq!(image.module().as_ref(), module.as_slice(), "{location}");
        let resolved = client.resolve(&location, &call).await.unwrap();
        assert_eq!(&resolved.digest, image.manifest_digest(), "{location}");
    }
    let source = bed_str(&bed, &["fixtures", "buildah-oci"]);
    let destination = format!(
        "{}/{}:copied",
        bed_str(&bed, &["faulty", "host"]),
        unique("copy")
    );
    let digest = client.copy(&source, &destination, &call).await.unwrap();
    assert_eq!(
        digest.to_string(),
        bed_str(&bed, &["fixtures", "digests", "buildah-oci"])
    );
    assert_eq!(
        client.resolve(&destination, &call).await.unwrap().digest,
        digest
    );
}
