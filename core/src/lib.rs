//! wasm-image: build, push, pull, copy and read WebAssembly modules stored as OCI images.
//!
//! Data flow: location → store → manifest/index → select → classify format →
//! extract + verify → [`WasmImage`], and back for writing (build → encode → store).
//! The modules are listed in that order.

/// Error kinds every face reports, and errors carrying them.
pub mod error;
/// Limits on sizes and counts that untrusted input must stay within.
pub mod limits;
/// Client-wide options and per-call options.
pub mod options;
/// Progress events and the callback that receives them.
pub mod progress;
/// Where images live: registry references, the local store forms, bare module URLs.
pub mod location;
/// Credentials: where they are looked up, in which order, and how they are matched.
pub mod auth;
/// Every store behind one trait, with verified reads and transfers on top.
pub mod store;
/// Digests, descriptors, platforms, and readers that verify digest and size.
pub mod digest;
/// Every media type and annotation key, in one table.
pub mod media_types;
/// The one place that parses manifests and judges their media type.
pub mod manifest;
/// Choosing one manifest from an index.
pub mod select;
/// The Wasm-in-OCI formats: detection and plans (read), encoders (write); no I/O.
pub mod formats;
/// Cosign signatures: signing on push, verification policies (keys, keyless) on pull and fetch.
pub mod signature;
/// Carries out a format's plan: the module out of its layer, verified and bounded.
pub mod extract;
mod shared_extraction;
/// Facts about a module from a Wasm parser, and the Wasm header check.
pub mod module_facts;
/// The image model: WasmImage, RuntimeConfig, Variant.
pub mod image;
/// Module and options to an image ready to store.
pub mod build;
/// The parallel, reproducible gzip encoder of compat layers.
pub mod gzip;
/// Copying a tree of manifests between stores: each digest once, within the limits.
mod copy;
/// The time limit of one call.
mod deadline;
/// The operations: pull, push, copy, resolve, fetch.
pub mod client;
/// The control-plane module cache: entries, leases, pull policies, one download per image.
pub mod cache;
/// Local files: atomic durable writes, bounded reads, the caller's input files.
pub mod files;
/// What the bindings share: the runtime blocking calls run on, log forwarding, module buffers.
pub mod embed;

// Bindings reach these by their original paths.
pub use embed::{buffer, logging, panics, runtime};

pub use build::{build, BuildOptions};
pub use cache::{Cache, CacheOptions, Entry, FetchOptions, Policy};
pub use client::{default_client, Client, Resolved};
pub use digest::{Descriptor, Digest, Platform};
pub use error::{Error, ErrorKind, Result};
pub use formats::ManifestFormat;
pub use image::{ImageInfo, RuntimeConfig, Variant, WasmImage};
pub use limits::Limits;
pub use location::Location;
pub use module_facts::{ModuleFacts, ModuleKind};
pub use options::{CallOptions, ClientOptions, Credentials};
pub use progress::{Progress, ProgressEvent};
pub use runtime::CancellationToken;
pub use signature::{PublicKey, Requirement, SigningKey, Trust, VerificationPolicy};
