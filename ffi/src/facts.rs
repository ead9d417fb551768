//! Facts about a module, read with a real Wasm parser.

use std::ffi::c_char;
use std::ptr;

use wasm_image::module_facts::{inspect, ModuleFacts};
use wasm_image::ModuleKind;

use crate::boundary::{arg_bytes, arg_out, ffi_boundary};
use crate::handle::{self, Handle};
use crate::strings::{self, nth_ptr, NulStr};
use crate::wasm_image_error_t;

/// What a Wasm binary is.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wasm_image_module_kind_t {
    /// Not known (a NULL facts handle).
    WASM_IMAGE_MODULE_KIND_UNKNOWN = 0,
    /// A core WebAssembly module.
    WASM_IMAGE_MODULE_KIND_CORE_MODULE = 1,
    /// A component (component model).
    WASM_IMAGE_MODULE_KIND_COMPONENT = 2,
}

impl crate::boundary::FfiReturn for wasm_image_module_kind_t {
    type Output = wasm_image_module_kind_t;
    fn into_ffi(self) -> Self {
        self
    }
    fn on_panic(_message: String) -> Self {
        wasm_image_module_kind_t::WASM_IMAGE_MODULE_KIND_UNKNOWN
    }
}

/// Facts about a module: kind, size, imports, exports, and the proxy-wasm ABI versions it
/// declares. Immutable (any thread may read it); free with `wasm_image_module_facts_free`.
pub struct wasm_image_module_facts_t {
    facts: ModuleFacts,
    kind_name: NulStr,
    imports: Vec<NulStr>,
    exports: Vec<NulStr>,
    proxy_abi_versions: Vec<NulStr>,
}

impl Handle for wasm_image_module_facts_t {
    const NAME: &'static str = "wasm_image_module_facts_t";
}

/// Reads the structure of the `len` bytes at `module` (a core module or a component; not
/// a full validation, which is the engine's job). On success `*facts_out` receives new
/// facts (free with `wasm_image_module_facts_free`); on failure NULL. For a pulled image,
/// pass the pointer and length from `wasm_image_image_module`.
///
/// Errors: `INVALID_FORMAT` when the bytes are not Wasm or malformed;
/// `INVALID_ARGUMENT` for NULL pointers. Any thread; no I/O.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts(
    module: *const u8,
    len: usize,
    facts_out: *mut *mut wasm_image_module_facts_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(facts_out, "facts_out", ptr::null_mut());
        let facts = inspect(arg_bytes!(module, len, "module"))?;
        *out = handle::into_raw(wasm_image_module_facts_t {
            kind_name: NulStr::new(facts.kind.name()),
            imports: strings::list(&facts.imports),
            exports: strings::list(&facts.exports),
            proxy_abi_versions: strings::list(&facts.proxy_abi_versions),
            facts,
        });
        Ok(())
    })
}

/// Frees facts. NULL and a second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_free(facts: *mut wasm_image_module_facts_t) {
    ffi_boundary!({
        unsafe { handle::free(facts) };
    })
}

/// Core module or component; `WASM_IMAGE_MODULE_KIND_UNKNOWN` for NULL.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_kind(
    facts: *const wasm_image_module_facts_t,
) -> wasm_image_module_kind_t {
    ffi_boundary!({
        match unsafe { handle::peek(facts) }.map(|f| f.facts.kind) {
            Some(ModuleKind::CoreModule) => {
                wasm_image_module_kind_t::WASM_IMAGE_MODULE_KIND_CORE_MODULE
            }
            Some(ModuleKind::Component) => {
                wasm_image_module_kind_t::WASM_IMAGE_MODULE_KIND_COMPONENT
            }
            None => wasm_image_module_kind_t::WASM_IMAGE_MODULE_KIND_UNKNOWN,
        }
    })
}

/// The kind's name, `"core-module"` or `"component"`; NULL for NULL. Borrowed until
/// `wasm_image_module_facts_free`, like every string below.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_kind_name(
    facts: *const wasm_image_module_facts_t,
) -> *const c_char {
    ffi_boundary!({ unsafe { handle::peek(facts) }.map_or(ptr::null(), |f| f.kind_name.as_ptr()) })
}

/// The module's size in bytes.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_size(
    facts: *const wasm_image_module_facts_t,
) -> u64 {
    ffi_boundary!({ unsafe { handle::peek(facts) }.map_or(0, |f| f.facts.size) })
}

/// How many imports: `module.name` for core modules, import names for components.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_import_count(
    facts: *const wasm_image_module_facts_t,
) -> usize {
    ffi_boundary!({ unsafe { handle::peek(facts) }.map_or(0, |f| f.imports.len()) })
}

/// The `index`th import; NULL out of range.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_import(
    facts: *const wasm_image_module_facts_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(facts) }.map_or(ptr::null(), |f| nth_ptr(&f.imports, index))
    })
}

/// How many exports.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_export_count(
    facts: *const wasm_image_module_facts_t,
) -> usize {
    ffi_boundary!({ unsafe { handle::peek(facts) }.map_or(0, |f| f.exports.len()) })
}

/// The `index`th export name; NULL out of range.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_export(
    facts: *const wasm_image_module_facts_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(facts) }.map_or(ptr::null(), |f| nth_ptr(&f.exports, index))
    })
}

/// How many proxy-wasm ABI versions the module declares (exports
/// `proxy_abi_version_X_Y_Z`).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_proxy_abi_version_count(
    facts: *const wasm_image_module_facts_t,
) -> usize {
    ffi_boundary!({ unsafe { handle::peek(facts) }.map_or(0, |f| f.proxy_abi_versions.len()) })
}

/// The `index`th proxy-wasm ABI version, written `"v0.2.1"`; NULL out of range.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_module_facts_proxy_abi_version(
    facts: *const wasm_image_module_facts_t,
    index: usize,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(facts) }
            .map_or(ptr::null(), |f| nth_ptr(&f.proxy_abi_versions, index))
    })
}
