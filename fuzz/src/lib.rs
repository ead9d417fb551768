//! What the fuzz targets share: one runtime and client, an in-memory store, blobs that
//! name each other by digest, and the oracles every target applies (no panic, no hang, no
//! INTERNAL error for any input, and a successful read hands back exactly the verified
//! module).

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use async_trait::async_trait;
use bytes::Bytes;
use wasm_image::location::Selector;
use wasm_image::store::{BlobStream, RawManifest, Store};
use wasm_image::{
    CallOptions, Client, ClientOptions, Descriptor, Digest, ErrorKind, Limits, Result,
};

/// Limits small enough that a decompression bomb or a huge declared size is refused in
/// milliseconds, so the fuzzer spends its time on parsing rather than on copying.
pub fn limits() -> Limits {
    Limits {
        max_module_bytes: 1 << 20,
        max_metadata_bytes: 1 << 20,
        max_decompressed_bytes: 8 << 20,
        max_tar_entries: 1_000,
        ..Limits::default()
    }
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// A client that reads only local stores and never looks for credentials.
pub fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let options = ClientOptions {
            use_config_files: false,
            limits: limits(),
            ..ClientOptions::default()
        };
        Client::new(options).expect("a client")
    })
}

/// Bad input must be a typed error of the kind it deserves: INTERNAL means the library
/// lost track of its own state (a worker panicked, an invariant broke).
pub fn check<T>(result: &Result<T>) {
    if let Err(e) = result {
        assert_ne!(e.kind(), ErrorKind::Internal, "INTERNAL error: {e}");
    }
}

/// Pulls a location into memory; a success must carry the module its digest names.
pub fn pull(location: &str) {
    let result = runtime().block_on(client().pull(location, &CallOptions::default()));
    check(&result);
    if let Ok(image) = result {
        assert_eq!(
            Digest::sha256_of(image.module()),
            *image.module_digest(),
            "pulled module differs from its digest"
        );
        assert_eq!(image.module().len() as u64, image.info().module_size);
    }
}

/// A scratch directory for the targets that need files; one per process, reused.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

/// Separates the documents of a linked input.
pub const SEPARATOR: &[u8] = b"\n%%\n";

/// Splits an input into documents and links them: in document `i`, each `@@k` (`k` one
/// hex digit, `k > i`) becomes `"digest":"sha256:…","size":N` of document `k`. Without
/// this, a mutated blob would never match a digest written in a manifest, and the fuzzer
/// would never get past digest verification. Documents are linked last first, so a chain
/// index → manifest → config works.
pub fn link(data: &[u8]) -> Vec<Vec<u8>> {
    let mut docs: Vec<Vec<u8>> = split(data, SEPARATOR).into_iter().take(16).collect();
    for i in (0..docs.len()).rev() {
        let mut out = Vec::with_capacity(docs[i].len());
        let doc = &docs[i];
        let mut at = 0;
        while at < doc.len() {
            if doc[at..].starts_with(b"@@") && at + 2 < doc.len() {
                if let Some(k) = (doc[at + 2] as char).to_digit(16).map(|k| k as usize) {
                    if k > i && k < docs.len() {
                        let target = &docs[k];
                        out.extend_from_slice(
                            format!(
                                "\"digest\":\"{}\",\"size\":{}",
                                Digest::sha256_of(target),
                                target.len()
                            )
                            .as_bytes(),
                        );
                        at += 3;
                        continue;
                    }
                }
            }
            out.push(doc[at]);
            at += 1;
        }
        docs[i] = out;
    }
    docs
}

fn split<'a>(data: &'a [u8], separator: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + separator.len() <= data.len() {
        if &data[at..at + separator.len()] == separator {
            parts.push(data[start..at].to_vec());
            at += separator.len();
            start = at;
        } else {
            at += 1;
        }
    }
    parts.push(data[start..].to_vec());
    parts
}

/// Blobs held in memory, served by digest: a store without files, so extraction can be
/// fuzzed at full speed. Stores nothing.
pub struct MemoryStore {
    blobs: HashMap<Digest, Bytes>,
}

impl MemoryStore {
    pub fn new(blobs: impl IntoIterator<Item = Vec<u8>>) -> MemoryStore {
        MemoryStore {
            blobs: blobs
                .into_iter()
                .map(|b| (Digest::sha256_of(&b), Bytes::from(b)))
                .collect(),
        }
    }
}

fn read_only() -> wasm_image::Error {
    wasm_image::Error::invalid_argument("the fuzzing store is read only")
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    async fn resolve(&self, _selector: &Selector) -> Result<Descriptor> {
        Err(wasm_image::Error::not_found(
            "the fuzzing store has no tags",
        ))
    }

    async fn manifest(&self, _selector: &Selector) -> Result<RawManifest> {
        Err(wasm_image::Error::not_found(
            "the fuzzing store has no tags",
        ))
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        let bytes = self
            .blobs
            .get(&descriptor.digest)
            .cloned()
            .ok_or_else(|| wasm_image::Error::not_found(format!("{}", descriptor.digest)))?;
        Ok(Box::pin(std::io::Cursor::new(bytes)))
    }

    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        Ok(self.blobs.contains_key(&descriptor.digest))
    }

    async fn put_blob(&self, _descriptor: &Descriptor, _data: BlobStream) -> Result<()> {
        Err(read_only())
    }

    async fn put_manifest(
        &self,
        _manifest: &RawManifest,
        _digest: &Digest,
        _tag: Option<&str>,
    ) -> Result<()> {
        Err(read_only())
    }
}
