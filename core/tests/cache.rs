//! The module cache through the public Rust API, on OCI layouts (no server needed): pull
//! policies over a tag that moves, pinned hits, leases against eviction, damaged entries,
//! concurrent fetches of one image, and bad inputs. The registry side (request counts,
//! outages, several processes) is covered by tests/python/test_cache.py.

use std::sync::Arc;
use std::time::Duration;

use wasm_image::cache::parse_expected_digest;
use wasm_image::{
    build, BuildOptions, Cache, CacheOptions, CallOptions, Client, ClientOptions, ErrorKind,
    FetchOptions, Policy,
};

/// A valid module made distinct by a custom section holding `seed`.
fn module(seed: u8) -> bytes::Bytes {
    let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    m.extend_from_slice(&[0x00, 0x03, 0x01, b's', seed]);
    bytes::Bytes::from(m)
}

struct Setup {
    _dir: tempfile::TempDir,
    store: String,
    cache_dir: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("oci:{}", dir.path().join("store").display());
    let cache_dir = dir.path().join("cache");
    Setup {
        _dir: dir,
        store,
        cache_dir,
    }
}

fn client(cache: &Cache) -> Client {
    Client::new(ClientOptions {
        cache: Some(cache.clone()),
        use_config_files: false,
        ..Default::default()
    })
    .unwrap()
}

fn open(dir: &std::path::Path, tag_ttl: Duration) -> Cache {
    Cache::open(CacheOptions {
        dir: Some(dir.to_path_buf()),
        tag_ttl,
        ..Default::default()
    })
    .unwrap()
}

async fn push(c: &Client, location: &str, seed: u8) -> wasm_image::Digest {
    let image = build(module(seed), &BuildOptions::default()).unwrap();
    c.push(&image, location, &CallOptions::default())
        .await
        .unwrap()
}

fn policy(p: Policy) -> FetchOptions {
    FetchOptions {
        policy: p,
        ..Default::default()
    }
}

#[tokio::test]
async fn policies_over_a_tag_that_moves() {
    let s = setup();
    let cache = open(&s.cache_dir, Duration::from_secs(3600));
    let c = client(&cache);
    let loc = format!("{}:v1", s.store);
    let call = CallOptions::default();
    let first = push(&c, &loc, 1).await;
    let e = c
        .fetch(&loc, &policy(Policy::IfNotPresent), &call)
        .await
        .unwrap();
    assert_eq!(e.manifest_digest(), Some(&first));
    assert_eq!(std::fs::read(e.path()).unwrap(), &module(1)[..]);
    drop(e);

    let second = push(&c, &loc, 2).await;
    let inside_ttl = c
        .fetch(&loc, &policy(Policy::IfNotPresent), &call)
        .await
        .unwrap();
    assert_eq!(inside_ttl.manifest_digest(), Some(&first));
    let always = c.fetch(&loc, &policy(Policy::Always), &call).await.unwrap();
    assert_eq!(always.manifest_digest(), Some(&second));
    let never = c.fetch(&loc, &policy(Policy::Never), &call).await.unwrap();
    assert_eq!(never.manifest_digest(), Some(&second));
    let pinned = format!("{}@{first}", s.store);
    let old = c
        .fetch(&pinned, &policy(Policy::Never), &call)
        .await
        .unwrap();
    assert_eq!(old.module_digest(), inside_ttl.module_digest());

    let missing = format!("{}:v9", s.store);
    let err = c
        .fetch(&missing, &policy(Policy::Never), &call)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits), (2, 3));
}

#[tokio::test]
async fn leases_hold_off_eviction_and_damage_is_refetched() {
    let s = setup();
    let cache = open(&s.cache_dir, Duration::from_secs(60));
    let c = client(&cache);
    let loc = format!("{}:v1", s.store);
    let call = CallOptions::default();
    push(&c, &loc, 3).await;
    let held = c
        .fetch(&loc, &FetchOptions::default(), &call)
        .await
        .unwrap();
    let report = cache.gc_with(Some(0), None).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(report.kept_leased, 1);
    assert!(held.path().exists());
    let path = held.path().to_path_buf();
    drop(held);
    assert_eq!(cache.gc_with(Some(0), None).unwrap().removed.len(), 1);
    assert!(!path.exists());

    // A module file cut short is dropped on the next hit and fetched again.
    let e = c
        .fetch(&loc, &FetchOptions::default(), &call)
        .await
        .unwrap();
    let path = e.path().to_path_buf();
    drop(e);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, b"\0asm").unwrap();
    let e = c
        .fetch(&loc, &FetchOptions::default(), &call)
        .await
        .unwrap();
    assert_eq!(e.read_module().unwrap(), module(3));
    assert_eq!(cache.verify().unwrap().dropped.len(), 0);
}

#[tokio::test]
async fn concurrent_fetches_of_one_image_download_once() {
    let s = setup();
    let cache = open(&s.cache_dir, Duration::from_secs(60));
    let c = Arc::new(client(&cache));
    let loc = format!("{}:v1", s.store);
    push(&c, &loc, 4).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let c = c.clone();
            let loc = loc.clone();
            tokio::spawn(async move {
                c.fetch(&loc, &FetchOptions::default(), &CallOptions::default())
                    .await
                    .map(|e| e.module_digest().clone())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits), (1, 15));
}

#[tokio::test]
async fn expected_digests_and_bad_inputs() {
    let s = setup();
    let cache = open(&s.cache_dir, Duration::from_secs(60));
    let c = client(&cache);
    let loc = format!("{}:v1", s.store);
    let call = CallOptions::default();
    let manifest = push(&c, &loc, 5).await;
    let expect = |d: &str| FetchOptions {
        expected_digest: Some(parse_expected_digest(d).unwrap()),
        ..Default::default()
    };
    let module_hex = wasm_image::Digest::sha256_of(&module(5)).hex().to_string();
    c.fetch(&loc, &expect(&module_hex), &call).await.unwrap();
    c.fetch(&loc, &expect(&manifest.to_string()), &call)
        .await
        .unwrap();
    let wrong = "ab".repeat(32);
    let err = c.fetch(&loc, &expect(&wrong), &call).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch);
    for (bad, kind) in [
        ("oci://", ErrorKind::InvalidReference),
        ("https://", ErrorKind::InvalidReference),
        ("file://host/x.wasm", ErrorKind::InvalidReference),
    ] {
        let err = c
            .fetch(bad, &FetchOptions::default(), &call)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{bad}");
    }
    let not_a_dir = s.cache_dir.join("CACHEDIR.TAG");
    let err = Cache::open(CacheOptions {
        dir: Some(not_a_dir),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(cache.entries().unwrap().len(), 1);
}

/// A large eviction (removed side by side) still goes oldest first, skips leased entries
/// and goes on past them until the cache is under its bound.
#[tokio::test]
async fn a_large_eviction_goes_oldest_first_around_leased_entries() {
    let s = setup();
    let cache = open(&s.cache_dir, Duration::from_secs(60));
    let c = client(&cache);
    let call = CallOptions::default();
    let mut entries = Vec::new();
    for seed in 0..80u8 {
        let loc = format!("{}:v{seed}", s.store);
        push(&c, &loc, seed).await;
        let entry = c
            .fetch(&loc, &FetchOptions::default(), &call)
            .await
            .unwrap();
        entries.push(entry);
    }
    let size = module(0).len() as u64;
    // Oldest first by seed; file times are set, as fast inserts can share a tick.
    let start = std::time::SystemTime::now() - Duration::from_secs(3600);
    let record = |e: &wasm_image::cache::Entry| {
        s.cache_dir
            .join("entries")
            .join(format!("{}.json", e.module_digest().hex()))
    };
    for (i, e) in entries.iter().enumerate() {
        std::fs::File::options()
            .write(true)
            .open(record(e))
            .unwrap()
            .set_modified(start + Duration::from_secs(i as u64))
            .unwrap();
    }
    let digests: Vec<_> = entries.iter().map(|e| e.module_digest().clone()).collect();
    // Leases on two of the oldest; the rest are released.
    let leased: Vec<_> = entries
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || *i == 5)
        .map(|(_, e)| e)
        .collect();

    let report = cache.gc_with(Some(30 * size), None).unwrap();
    assert_eq!(report.kept_leased, 2);
    let removed: Vec<_> = report
        .removed
        .iter()
        .map(|r| r.module_digest.clone())
        .collect();
    let expected: Vec<_> = (0..52)
        .filter(|i| *i != 0 && *i != 5)
        .map(|i| digests[i].clone())
        .collect();
    assert_eq!(removed, expected);
    assert_eq!(report.freed_bytes, 50 * size);
    let left = cache.entries().unwrap();
    assert_eq!(left.len(), 30);
    assert!(left.iter().all(|e| e.path.exists()));
    for e in &leased {
        assert!(e.path().exists(), "a leased module was removed");
    }
}
