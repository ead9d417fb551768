//! The image handle and its accessors. Every pointer an accessor returns is borrowed from
//! the image and stays valid, unchanged, until `wasm_image_image_free`.

use std::ffi::c_char;
use std::ptr;

use wasm_image::{ImageInfo, WasmImage};

use crate::boundary::{arg_optional_out, ffi_boundary};
use crate::handle::{self, Handle};
use crate::strings::{self, nth_ptr, opt_ptr, NulStr};

enum Held {
    /// From `wasm_image_pull` or `wasm_image_build`: the module is in memory.
    Image(WasmImage),
    /// From `wasm_image_pull_to_file`: the module is in the file, not here.
    Info(ImageInfo),
}

/// A Wasm module with its image, from `wasm_image_pull`, `wasm_image_build` or (without
/// the module bytes) `wasm_image_pull_to_file`. Immutable: it may be read from many
/// threads at once. Free it with `wasm_image_image_free`, after which nothing borrowed
/// from it may be used.
pub struct wasm_image_image_t {
    held: Held,
    module_digest: NulStr,
    manifest_digest: NulStr,
    index_digest: Option<NulStr>,
    variant: NulStr,
    manifest_media_type: NulStr,
    runtime_type: Option<NulStr>,
    abi_versions: Vec<NulStr>,
    root_ids: Vec<NulStr>,
    runtime_config_json: Option<NulStr>,
    annotation_keys: Vec<NulStr>,
    annotation_values: Vec<NulStr>,
}

impl Handle for wasm_image_image_t {
    const NAME: &'static str = "wasm_image_image_t";
}

impl wasm_image_image_t {
    fn new(held: Held) -> wasm_image_image_t {
        let info = match &held {
            Held::Image(image) => image.info(),
            Held::Info(info) => info,
        };
        let runtime = info.runtime_config.as_ref();
        let runtime_json = runtime.map(|rc| String::from_utf8_lossy(&rc.to_json()).into_owned());
        wasm_image_image_t {
            module_digest: NulStr::new(&info.module_digest.to_string()),
            manifest_digest: NulStr::new(&info.manifest_digest.to_string()),
            index_digest: info
                .index_digest
                .as_ref()
                .map(|d| NulStr::new(&d.to_string())),
            variant: NulStr::new(info.variant.name()),
            manifest_media_type: NulStr::new(&info.manifest_media_type),
            runtime_type: runtime
                .and_then(|rc| rc.runtime_type.as_deref())
                .map(NulStr::new),
            abi_versions: runtime
                .map(|rc| strings::list(&rc.abi_versions))
                .unwrap_or_default(),
            root_ids: runtime
                .map(|rc| strings::list(&rc.root_ids))
                .unwrap_or_default(),
            runtime_config_json: runtime_json.as_deref().map(NulStr::new),
            annotation_keys: strings::list(info.annotations.keys()),
            annotation_values: strings::list(info.annotations.values()),
            held,
        }
    }

    pub(crate) fn from_image(image: WasmImage) -> *mut wasm_image_image_t {
        handle::into_raw(wasm_image_image_t::new(Held::Image(image)))
    }

    pub(crate) fn from_info(info: ImageInfo) -> *mut wasm_image_image_t {
        handle::into_raw(wasm_image_image_t::new(Held::Info(info)))
    }

    pub(crate) fn image(&self) -> Option<&WasmImage> {
        match &self.held {
            Held::Image(image) => Some(image),
            Held::Info(_) => None,
        }
    }

    fn info(&self) -> &ImageInfo {
        match &self.held {
            Held::Image(image) => image.info(),
            Held::Info(info) => info,
        }
    }
}

/// Borrows `bytes` for C: pointer, and its length through `len` when not NULL.
fn bytes_out(bytes: &[u8], len: Option<&mut usize>) -> *const u8 {
    if let Some(len) = len {
        *len = bytes.len();
    }
    bytes.as_ptr()
}

/// Frees an image and everything borrowed from it. NULL and a second free are ignored.
/// Not while another thread still reads it.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_free(image: *mut wasm_image_image_t) {
    ffi_boundary!({
        unsafe { handle::free(image) };
    })
}

/// The module bytes, borrowed without copying; their length goes to `*len` (if `len`
/// is not NULL). NULL (and length 0) for an image from `wasm_image_pull_to_file`, whose
/// module is in the file, and for a NULL or freed image.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_module(
    image: *const wasm_image_image_t,
    len: *mut usize,
) -> *const u8 {
    ffi_boundary!({
        let len = arg_optional_out!(len, 0);
        match unsafe { handle::peek(image) }.and_then(|i| i.image()) {
            Some(image) => bytes_out(image.module(), len),
            None => ptr::null(),
        }
    })
}

/// The module's size in bytes (also for an image from `wasm_image_pull_to_file`); 0 for
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_module_size(image: *const wasm_image_image_t) -> u64 {
    ffi_boundary!({ unsafe { handle::peek(image) }.map_or(0, |i| i.info().module_size) })
}

/// The module's digest, `"sha256:…"`. NULL for a NULL image.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_module_digest(
    image: *const wasm_image_image_t,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| i.module_digest.as_ptr())
    })
}

/// The manifest's digest, `"sha256:…"` (what `wasm_image_push` returns). NULL for a
/// NULL image.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_manifest_digest(
    image: *const wasm_image_image_t,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| i.manifest_digest.as_ptr())
    })
}

/// The index's digest when the location named an index and a manifest was chosen from
/// it; NULL otherwise.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_index_digest(
    image: *const wasm_image_image_t,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| opt_ptr(&i.index_digest))
    })
}

/// The image's format: `"oci"`, `"compat"` (the two variants of the Wasm Image
/// specification) or another format's name (`"wasm-artifact"`, `"wasm-to-oci"`,
/// `"wasmcloud"`, `"wasi-image"`, `"oci-artifact"`). NULL for a NULL image.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_variant(
    image: *const wasm_image_image_t,
) -> *const c_char {
    ffi_boundary!({ unsafe { handle::peek(image) }.map_or(ptr::null(), |i| i.variant.as_ptr()) })
}

/// The manifest exactly as stored (its SHA-256 is the manifest digest), borrowed; its
/// length goes to `*len` (if not NULL). NULL for a NULL image.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_manifest(
    image: *const wasm_image_image_t,
    len: *mut usize,
) -> *const u8 {
    ffi_boundary!({
        let len = arg_optional_out!(len, 0);
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| bytes_out(&i.info().manifest, len))
    })
}

/// The manifest's media type (`"application/vnd.oci.image.manifest.v1+json"`, or
/// Docker's). NULL for a NULL image.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_manifest_media_type(
    image: *const wasm_image_image_t,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| i.manifest_media_type.as_ptr())
    })
}

/// The config blob exactly as stored, borrowed; its length goes to `*len` (if not
/// NULL). NULL for a NULL image.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_config(
    image: *const wasm_image_image_t,
    len: *mut usize,
) -> *const u8 {
    ffi_boundary!({
        let len = arg_optional_out!(len, 0);
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| bytes_out(&i.info().config, len))
    })
}

/// Whether the image carries runtime metadata (type, ABI versions, root ids). When it
/// does not, the runtime accessors below give NULL and 0.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_has_runtime_config(
    image: *const wasm_image_image_t,
) -> bool {
    ffi_boundary!({
        unsafe { handle::peek(image) }.is_some_and(|i| i.info().runtime_config.is_some())
    })
}

/// The runtime type, e.g. `"envoy_proxy"`; NULL when absent.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_runtime_type(
    image: *const wasm_image_image_t,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| opt_ptr(&i.runtime_type))
    })
}

/// How many ABI versions the runtime metadata lists (e.g. `"v0.2.1"`).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_abi_version_count(
    image: *const wasm_image_image_t,
) -> usize {
    ffi_boundary!({ unsafe { handle::peek(image) }.map_or(0, |i| i.abi_versions.len()) })
}

/// The `index`th ABI version; NULL when `index` is out of range.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_abi_version(
    image: *const wasm_image_image_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| nth_ptr(&i.abi_versions, index))
    })
}

/// How many root ids the runtime metadata lists.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_root_id_count(image: *const wasm_image_image_t) -> usize {
    ffi_boundary!({ unsafe { handle::peek(image) }.map_or(0, |i| i.root_ids.len()) })
}

/// The `index`th root id; NULL when `index` is out of range.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_root_id(
    image: *const wasm_image_image_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| nth_ptr(&i.root_ids, index))
    })
}

/// The whole runtime metadata as a JSON object, unknown fields included (as the
/// image's own tools wrote it); NULL when the image has none.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_runtime_config_json(
    image: *const wasm_image_image_t,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| opt_ptr(&i.runtime_config_json))
    })
}

/// How many annotations the manifest has.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_annotation_count(
    image: *const wasm_image_image_t,
) -> usize {
    ffi_boundary!({ unsafe { handle::peek(image) }.map_or(0, |i| i.annotation_keys.len()) })
}

/// The key of the `index`th annotation (keys are in byte order); NULL out of range.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_annotation_key(
    image: *const wasm_image_image_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| nth_ptr(&i.annotation_keys, index))
    })
}

/// The value of the `index`th annotation; NULL out of range.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_annotation_value(
    image: *const wasm_image_image_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(image) }.map_or(ptr::null(), |i| nth_ptr(&i.annotation_values, index))
    })
}

/// The value of the annotation `key`; NULL when there is none (or `key` is NULL or not
/// UTF-8).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_image_annotation(
    image: *const wasm_image_image_t,
    key: *const c_char,
) -> *const c_char {
    ffi_boundary!({
        let Some(image) = (unsafe { handle::peek(image) }) else {
            return ptr::null();
        };
        let Ok(key) = (unsafe { crate::boundary::str_arg(key, "key") }) else {
            return ptr::null();
        };
        match image.info().annotations.keys().position(|k| k == key) {
            Some(index) => image.annotation_values[index].as_ptr(),
            None => ptr::null(),
        }
    })
}
