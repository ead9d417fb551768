//! wasm-image: build, push, pull, copy and read WebAssembly modules stored as OCI images.
//!
//! Data flow: location → store → manifest/index → select → classify format →
//! extract + verify → [`WasmImage`], and back for writing.

pub mod auth;
pub mod buffer;
pub mod build;
pub mod cache;
pub mod client;
pub mod digest;
pub mod error;
pub mod extract;
pub mod files;
pub mod formats;
pub mod image;
pub mod limits;
pub mod location;
pub mod logging;
pub mod manifest;
pub mod media_types;
pub mod module_facts;
pub mod options;
pub mod plain_module;
pub mod progress;
pub mod read_ahead;
pub mod runtime;
pub mod select;
pub mod store;
pub mod transfer;

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
