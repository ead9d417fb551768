//! Building an image from module bytes.

use std::ffi::c_char;
use std::sync::Mutex;

use wasm_image::{BuildOptions, ManifestFormat, Variant};

use crate::boundary::{arg_bytes, arg_handle, arg_optional_handle, arg_out, arg_str, ffi_boundary};
use crate::handle::{self, Handle};
use crate::image::wasm_image_image_t;
use crate::wasm_image_error_t;

/// Options for `wasm_image_build`, built with setters (which lock, so any thread may
/// use them). `wasm_image_build` copies them. Defaults: the `"oci"` variant, runtime
/// type `"envoy_proxy"`, the ABI versions the module exports (`proxy_abi_version_*`),
/// no root ids, no annotations, an OCI manifest, and no timestamps unless
/// `SOURCE_DATE_EPOCH` is set (so builds are reproducible).
pub struct wasm_image_build_options_t {
    options: Mutex<BuildOptions>,
}

impl Handle for wasm_image_build_options_t {
    const NAME: &'static str = "wasm_image_build_options_t";
}

fn edit(options: &wasm_image_build_options_t, change: impl FnOnce(&mut BuildOptions)) {
    change(&mut options.options.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Makes build options with the defaults. Never returns NULL. Free with
/// `wasm_image_build_options_free`.
#[no_mangle]
pub extern "C" fn wasm_image_build_options_new() -> *mut wasm_image_build_options_t {
    ffi_boundary!({
        handle::into_raw(wasm_image_build_options_t {
            options: Mutex::new(BuildOptions::default()),
        })
    })
}

/// Frees build options. NULL and a second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_free(options: *mut wasm_image_build_options_t) {
    ffi_boundary!({
        unsafe { handle::free(options) };
    })
}

/// The format to write: `"oci"` (default) or `"compat"`. Errors: `INVALID_ARGUMENT`
/// for another name (the other formats are read, not written: `wasm_image_build` says
/// so) or bad UTF-8.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_set_variant(
    options: *const wasm_image_build_options_t,
    variant: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let variant: Variant = arg_str!(variant, "variant").parse()?;
        edit(options, |o| o.variant = Some(variant));
        Ok(())
    })
}

/// The runtime type recorded in the runtime metadata (default `"envoy_proxy"`).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_set_runtime_type(
    options: *const wasm_image_build_options_t,
    runtime_type: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let runtime_type = arg_str!(runtime_type, "runtime_type").to_string();
        edit(options, |o| o.runtime_type = Some(runtime_type));
        Ok(())
    })
}

/// Appends an ABI version (e.g. `"v0.2.1"`). Once any is given, the module's own
/// `proxy_abi_version_*` exports are no longer used as the default.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_add_abi_version(
    options: *const wasm_image_build_options_t,
    abi_version: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let version = arg_str!(abi_version, "abi_version").to_string();
        edit(options, |o| o.abi_versions.push(version));
        Ok(())
    })
}

/// Appends a root id (the filter's root context name).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_add_root_id(
    options: *const wasm_image_build_options_t,
    root_id: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let root_id = arg_str!(root_id, "root_id").to_string();
        edit(options, |o| o.root_ids.push(root_id));
        Ok(())
    })
}

/// Sets a manifest annotation (replacing an earlier value for the same key).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_set_annotation(
    options: *const wasm_image_build_options_t,
    key: *const c_char,
    value: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let key = arg_str!(key, "key").to_string();
        let value = arg_str!(value, "value").to_string();
        edit(options, |o| {
            o.annotations.insert(key, value);
        });
        Ok(())
    })
}

/// The manifest format: `"oci"` (default) or `"docker"` (Docker schema 2, only with the
/// `"compat"` variant). Errors: `INVALID_ARGUMENT` for another name.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_set_manifest_format(
    options: *const wasm_image_build_options_t,
    manifest_format: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let format: ManifestFormat = arg_str!(manifest_format, "manifest_format").parse()?;
        edit(options, |o| o.manifest_format = format);
        Ok(())
    })
}

/// Timestamps to write, in seconds since the epoch (overrides `SOURCE_DATE_EPOCH`).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build_options_set_source_date_epoch(
    options: *const wasm_image_build_options_t,
    seconds: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.source_date_epoch = Some(seconds));
        Ok(())
    })
}

/// Builds an image from the `len` bytes at `module` (copied; a Wasm core module or
/// component) without writing it anywhere: push it with `wasm_image_push`. `options`
/// may be NULL for the defaults. On success `*image_out` receives a new image (free
/// with `wasm_image_image_free`); on failure it is set to NULL.
///
/// Errors: `INVALID_FORMAT` when the bytes are not Wasm; `INVALID_ARGUMENT` for NULL
/// pointers, options that do not fit together, or a malformed `SOURCE_DATE_EPOCH`.
/// Thread safety: any thread; no I/O.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_build(
    module: *const u8,
    len: usize,
    options: *const wasm_image_build_options_t,
    image_out: *mut *mut wasm_image_image_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(image_out, "image_out", std::ptr::null_mut());
        let module = arg_bytes!(module, len, "module");
        let options = match arg_optional_handle!(options, "options") {
            Some(o) => o.options.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            None => BuildOptions::default(),
        };
        let image = wasm_image::build(module.to_vec().into(), &options)?;
        *out = wasm_image_image_t::from_image(image);
        Ok(())
    })
}
