//! Error objects: what every fallible call returns instead of a thread-local "last error".

use std::ffi::{c_char, CString};
use std::sync::LazyLock;

use wasm_image::{Error, ErrorKind, Result};

use crate::boundary::{ffi_boundary, FfiReturn};
use crate::handle::{self, Handle};
use crate::strings::{opt_ptr, NulStr};

/// The kind of a failure. The values are fixed forever and shared with the Python and Go
/// bindings; a retired kind keeps its number (as a comment here). `NONE` (0) is what
/// `wasm_image_error_kind` gives for a NULL error, that is, for success.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wasm_image_error_kind_t {
    /// No error: the call succeeded (the kind of a NULL `wasm_image_error_t *`).
    WASM_IMAGE_ERROR_KIND_NONE = 0,
    /// A parameter is wrong: NULL, not UTF-8, out of range, a freed handle, an option
    /// that does not fit the operation.
    WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT = 1,
    /// A location that cannot be parsed.
    WASM_IMAGE_ERROR_KIND_INVALID_REFERENCE = 2,
    /// No such repository, tag, digest, directory or blob.
    WASM_IMAGE_ERROR_KIND_NOT_FOUND = 3,
    /// HTTP 401: no credentials, or the registry rejected them.
    WASM_IMAGE_ERROR_KIND_UNAUTHORIZED = 4,
    /// HTTP 403.
    WASM_IMAGE_ERROR_KIND_FORBIDDEN = 5,
    /// HTTP 429, still after the retries.
    WASM_IMAGE_ERROR_KIND_RATE_LIMITED = 6,
    /// Not a Wasm image: malformed manifest or config, no module found, not Wasm bytes.
    WASM_IMAGE_ERROR_KIND_INVALID_FORMAT = 7,
    /// Content does not match its digest or size.
    WASM_IMAGE_ERROR_KIND_DIGEST_MISMATCH = 8,
    /// An image is larger than a configured limit.
    WASM_IMAGE_ERROR_KIND_LIMIT_EXCEEDED = 9,
    /// The connection failed (refused, reset, TLS, DNS).
    WASM_IMAGE_ERROR_KIND_NETWORK = 10,
    /// A connect or read timeout expired.
    WASM_IMAGE_ERROR_KIND_TIMEOUT = 11,
    /// The call's cancellation token was cancelled.
    WASM_IMAGE_ERROR_KIND_CANCELLED = 12,
    /// A local file or directory could not be read or written.
    WASM_IMAGE_ERROR_KIND_IO = 13,
    /// Any other registry error: see `wasm_image_error_http_status` and
    /// `wasm_image_error_registry_code`.
    WASM_IMAGE_ERROR_KIND_REGISTRY = 14,
    /// A bug in wasm-image (for example a caught panic). Please report it.
    WASM_IMAGE_ERROR_KIND_INTERNAL = 15,
    /// A verification policy applies to the image and no signature satisfied it (none
    /// found, a wrong key, a payload naming another digest or repository, a bad
    /// certificate). Nothing was returned or cached.
    WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID = 16,
}

impl From<ErrorKind> for wasm_image_error_kind_t {
    fn from(kind: ErrorKind) -> Self {
        use wasm_image_error_kind_t::*;
        // Exhaustive on purpose: a new core kind does not compile until it is added here.
        match kind {
            ErrorKind::InvalidArgument => WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT,
            ErrorKind::InvalidReference => WASM_IMAGE_ERROR_KIND_INVALID_REFERENCE,
            ErrorKind::NotFound => WASM_IMAGE_ERROR_KIND_NOT_FOUND,
            ErrorKind::Unauthorized => WASM_IMAGE_ERROR_KIND_UNAUTHORIZED,
            ErrorKind::Forbidden => WASM_IMAGE_ERROR_KIND_FORBIDDEN,
            ErrorKind::RateLimited => WASM_IMAGE_ERROR_KIND_RATE_LIMITED,
            ErrorKind::InvalidFormat => WASM_IMAGE_ERROR_KIND_INVALID_FORMAT,
            ErrorKind::DigestMismatch => WASM_IMAGE_ERROR_KIND_DIGEST_MISMATCH,
            ErrorKind::LimitExceeded => WASM_IMAGE_ERROR_KIND_LIMIT_EXCEEDED,
            ErrorKind::Network => WASM_IMAGE_ERROR_KIND_NETWORK,
            ErrorKind::Timeout => WASM_IMAGE_ERROR_KIND_TIMEOUT,
            ErrorKind::Cancelled => WASM_IMAGE_ERROR_KIND_CANCELLED,
            ErrorKind::Io => WASM_IMAGE_ERROR_KIND_IO,
            ErrorKind::Registry => WASM_IMAGE_ERROR_KIND_REGISTRY,
            ErrorKind::Internal => WASM_IMAGE_ERROR_KIND_INTERNAL,
            ErrorKind::SignatureInvalid => WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID,
        }
    }
}

/// A failure: its kind, a message naming what failed, and what the registry said.
/// Immutable; may be read from any thread; freed with `wasm_image_error_free`.
pub struct wasm_image_error_t {
    kind: ErrorKind,
    name: NulStr,
    message: NulStr,
    http_status: u16,
    registry_code: Option<NulStr>,
    retry_after: u64,
}

impl Handle for wasm_image_error_t {
    const NAME: &'static str = "wasm_image_error_t";
}

impl wasm_image_error_t {
    pub(crate) fn into_raw(error: Error) -> *mut wasm_image_error_t {
        let detail = error.registry();
        handle::into_raw(wasm_image_error_t {
            kind: error.kind(),
            name: NulStr::new(error.kind().name()),
            message: NulStr::new(error.message()),
            http_status: detail.map_or(0, |d| d.status),
            registry_code: detail.and_then(|d| d.code.as_deref()).map(NulStr::new),
            retry_after: error.retry_after().unwrap_or(0),
        })
    }
}

/// A fallible body's result at the C boundary: NULL on success, else an error object.
impl FfiReturn for Result<()> {
    type Output = *mut wasm_image_error_t;
    fn into_ffi(self) -> Self::Output {
        match self {
            Ok(()) => std::ptr::null_mut(),
            Err(error) => wasm_image_error_t::into_raw(error),
        }
    }
    fn on_panic(message: String) -> Self::Output {
        wasm_image_error_t::into_raw(Error::internal(format!(
            "a bug in wasm-image: a panic was caught at the C boundary: {message}"
        )))
    }
}

/// The contract names (`"NOT_FOUND"`), indexed by code, kept for the life of the process.
static KIND_NAMES: LazyLock<Vec<(u32, CString)>> = LazyLock::new(|| {
    ErrorKind::ALL
        .iter()
        .map(|k| (k.code(), CString::new(k.name()).expect("names are ASCII")))
        .collect()
});

/// The error's kind; `WASM_IMAGE_ERROR_KIND_NONE` for NULL (success).
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_error_kind(
    error: *const wasm_image_error_t,
) -> wasm_image_error_kind_t {
    ffi_boundary!({
        match unsafe { handle::peek(error) } {
            Some(e) => wasm_image_error_kind_t::from(e.kind),
            None => wasm_image_error_kind_t::WASM_IMAGE_ERROR_KIND_NONE,
        }
    })
}

/// The name of the error's kind, e.g. `"NOT_FOUND"` (the names Python and Go use too);
/// `"NONE"` for NULL. Borrowed from the error: valid until `wasm_image_error_free`.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_error_name(error: *const wasm_image_error_t) -> *const c_char {
    ffi_boundary!({
        match unsafe { handle::peek(error) } {
            Some(e) => e.name.as_ptr(),
            None => c"NONE".as_ptr(),
        }
    })
}

/// A message for people: what failed, where, and what was expected. Never contains a
/// password or token. `""` for NULL. Borrowed from the error: valid until
/// `wasm_image_error_free`.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_error_message(
    error: *const wasm_image_error_t,
) -> *const c_char {
    ffi_boundary!({
        match unsafe { handle::peek(error) } {
            Some(e) => e.message.as_ptr(),
            None => c"".as_ptr(),
        }
    })
}

/// The HTTP status of the registry response that caused the error, or 0 when the error
/// did not come from a registry response (and for NULL).
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_error_http_status(error: *const wasm_image_error_t) -> u16 {
    ffi_boundary!({ unsafe { handle::peek(error) }.map_or(0, |e| e.http_status) })
}

/// The distribution error code from the registry's response body (`"MANIFEST_UNKNOWN"`,
/// `"DENIED"`, …), or NULL when there was none. Borrowed from the error: valid until
/// `wasm_image_error_free`.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_error_registry_code(
    error: *const wasm_image_error_t,
) -> *const c_char {
    ffi_boundary!({
        unsafe { handle::peek(error) }.map_or(std::ptr::null(), |e| opt_ptr(&e.registry_code))
    })
}

/// Seconds the registry asked to wait before trying again (`Retry-After` of a 429 or
/// 503), or 0 when it did not say.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_error_retry_after(error: *const wasm_image_error_t) -> u64 {
    ffi_boundary!({ unsafe { handle::peek(error) }.map_or(0, |e| e.retry_after) })
}

/// The name of a kind code (`"NOT_FOUND"` for 3), or NULL for a number that is no kind.
/// The string is static.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn wasm_image_error_kind_name(kind: u32) -> *const c_char {
    ffi_boundary!({
        KIND_NAMES
            .iter()
            .find(|(code, _)| *code == kind)
            .map_or(std::ptr::null(), |(_, name)| name.as_ptr())
    })
}

/// Frees an error. NULL is ignored, and so is an error freed already (detected, not
/// undefined behaviour), but do not free it while another thread still reads it.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_error_free(error: *mut wasm_image_error_t) {
    ffi_boundary!({
        unsafe { handle::free(error) };
    })
}

impl crate::boundary::FfiReturn for wasm_image_error_kind_t {
    type Output = wasm_image_error_kind_t;
    fn into_ffi(self) -> Self {
        self
    }
    fn on_panic(_message: String) -> Self {
        wasm_image_error_kind_t::WASM_IMAGE_ERROR_KIND_INTERNAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_values_are_the_core_codes() {
        for kind in ErrorKind::ALL {
            assert_eq!(
                wasm_image_error_kind_t::from(kind) as u32,
                kind.code(),
                "{kind}"
            );
        }
        assert_eq!(
            wasm_image_error_kind_t::WASM_IMAGE_ERROR_KIND_NOT_FOUND as u32,
            3
        );
    }

    #[test]
    fn error_accessors_and_double_free() {
        let e = wasm_image_error_t::into_raw(
            Error::not_found("oci:x: no tag y").with_registry(404, Some("MANIFEST_UNKNOWN".into())),
        );
        unsafe {
            assert_eq!(
                wasm_image_error_kind(e),
                wasm_image_error_kind_t::WASM_IMAGE_ERROR_KIND_NOT_FOUND
            );
            assert_eq!(
                std::ffi::CStr::from_ptr(wasm_image_error_name(e))
                    .to_str()
                    .unwrap(),
                "NOT_FOUND"
            );
            assert_eq!(wasm_image_error_http_status(e), 404);
            assert_eq!(
                std::ffi::CStr::from_ptr(wasm_image_error_registry_code(e))
                    .to_str()
                    .unwrap(),
                "MANIFEST_UNKNOWN"
            );
            wasm_image_error_free(e);
            wasm_image_error_free(e);
            assert_eq!(
                wasm_image_error_kind(e),
                wasm_image_error_kind_t::WASM_IMAGE_ERROR_KIND_NONE
            );
            assert!(wasm_image_error_kind_name(99).is_null());
            assert_eq!(
                std::ffi::CStr::from_ptr(wasm_image_error_kind_name(8))
                    .to_str()
                    .unwrap(),
                "DIGEST_MISMATCH"
            );
        }
    }
}
