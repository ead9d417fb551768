//! C ABI over the wasm-image core: `libwasmimage.so` / `libwasmimage.a` and the header
//! `include/wasm_image.h` that cbindgen generates from this crate (`ffi/gen-header`).
//!
//! A translation layer only: handles wrap core values, options build core options,
//! errors carry core's kinds. Every entry point goes through `ffi_boundary!` (no panic
//! reaches C) and checks its pointers with the `arg_*!` macros (NULL, bad UTF-8, freed
//! handles → `INVALID_ARGUMENT`). The library installs no signal handlers.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // the rules are in the header's preamble and each function's doc

// The header lists each file's functions together (files in name order).
mod boundary;
mod build_image;
mod cache;
mod call;
mod client;
mod error;
mod facts;
mod handle;
mod image;
mod log;
mod options;
mod quarantine;
mod strings;

use std::ffi::c_char;

pub use build_image::*;
pub use cache::*;
pub use call::*;
pub use client::*;
pub use error::*;
pub use facts::*;
pub use image::*;
pub use log::*;
pub use options::*;

/// The library's version, `"MAJOR.MINOR.PATCH"`: compare it with
/// `WASM_IMAGE_VERSION_STRING` to detect a header/library mismatch. Static.
#[no_mangle]
pub extern "C" fn wasm_image_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
