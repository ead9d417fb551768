//! wasm-image: build, push, pull, copy and read WebAssembly modules stored as OCI images.
//!
//! Data flow: location → store → manifest/index → select → classify format →
//! extract + verify → [`WasmImage`], and back for writing.

pub mod digest;
pub mod error;
pub mod image;
pub mod limits;
pub mod location;
pub mod manifest;
pub mod media_types;
pub mod options;
pub mod progress;
pub mod runtime;
pub mod store;

pub use digest::{Descriptor, Digest, Platform};
pub use error::{Error, ErrorKind, Result};
pub use image::{ImageInfo, RuntimeConfig, Variant, WasmImage};
pub use limits::Limits;
pub use location::Location;
pub use options::{CallOptions, ClientOptions, Credentials};
pub use progress::{Progress, ProgressEvent};
pub use runtime::CancellationToken;
