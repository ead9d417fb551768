//! The one panic boundary every entry point goes through, and the argument checks.
//!
//! `ffi_boundary!({ ... })` runs the body under `catch_unwind`. A body returning
//! `wasm_image::Result<()>` becomes a fallible entry point (`NULL` on success, an error
//! object otherwise, an `INTERNAL` error for a panic); a body returning a plain value
//! (an accessor) gives its value, or the type's neutral value (NULL, 0, false) on a panic.

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use wasm_image::{Error, Result};

/// What a body produces, and what it becomes at the C boundary. (`Result<()>` becomes an
/// error object: its impl lives with `wasm_image_error_t`.)
pub(crate) trait FfiReturn {
    type Output;
    fn into_ffi(self) -> Self::Output;
    fn on_panic(message: String) -> Self::Output;
}

macro_rules! neutral {
    ($($t:ty => $v:expr),* $(,)?) => {$(
        impl FfiReturn for $t {
            type Output = $t;
            fn into_ffi(self) -> $t { self }
            fn on_panic(_message: String) -> $t { $v }
        }
    )*};
}

neutral! {
    () => (),
    bool => false,
    u16 => 0,
    u32 => 0,
    u64 => 0,
    usize => 0,
}

impl<T> FfiReturn for *const T {
    type Output = *const T;
    fn into_ffi(self) -> Self::Output {
        self
    }
    fn on_panic(_message: String) -> Self::Output {
        std::ptr::null()
    }
}

impl<T> FfiReturn for *mut T {
    type Output = *mut T;
    fn into_ffi(self) -> Self::Output {
        self
    }
    fn on_panic(_message: String) -> Self::Output {
        std::ptr::null_mut()
    }
}

thread_local! {
    /// Whether this thread is inside an entry point (a C caller's thread during a call).
    static IN_ENTRY_POINT: Cell<bool> = const { Cell::new(false) };
}

/// True on a thread that is running one of the library's entry points for C: the thread
/// that made the call. Log events are handed to C only there.
pub(crate) fn in_entry_point() -> bool {
    IN_ENTRY_POINT.with(Cell::get)
}

pub(crate) fn run<R: FfiReturn>(body: impl FnOnce() -> R) -> R::Output {
    let outer = IN_ENTRY_POINT.with(|flag| flag.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(body));
    IN_ENTRY_POINT.with(|flag| flag.set(outer));
    match outcome {
        Ok(value) => value.into_ffi(),
        Err(payload) => R::on_panic(wasm_image::panics::panic_message(&*payload)),
    }
}

/// Wraps an entry point's body: no panic crosses into C. `fallible { ... }` bodies return
/// `wasm_image::Result<()>` and become `wasm_image_error_t *`; plain bodies are accessors.
macro_rules! ffi_boundary {
    (fallible $body:block) => {
        $crate::boundary::run(move || -> ::wasm_image::Result<()> { $body })
    };
    ($body:block) => {
        $crate::boundary::run(move || $body)
    };
}

/// Borrows a live handle (`&T`), or returns `INVALID_ARGUMENT` from the entry point.
macro_rules! arg_handle {
    ($pointer:expr, $name:literal) => {
        unsafe { $crate::handle::get($pointer, $name) }?
    };
}

/// Like `arg_handle!`, with NULL meaning the defaults (`Option<&T>`).
macro_rules! arg_optional_handle {
    ($pointer:expr, $name:literal) => {
        unsafe { $crate::handle::get_optional($pointer, $name) }?
    };
}

/// A NUL-terminated UTF-8 string in (`&str`); NULL or bad UTF-8 is `INVALID_ARGUMENT`.
macro_rules! arg_str {
    ($pointer:expr, $name:literal) => {
        unsafe { $crate::boundary::str_arg($pointer, $name) }?
    };
}

/// Bytes in (`&[u8]`) from a pointer and a length; NULL is allowed only with length 0.
macro_rules! arg_bytes {
    ($pointer:expr, $len:expr, $name:literal) => {
        unsafe { $crate::boundary::bytes_arg($pointer, $len, $name) }?
    };
}

/// An out-pointer (`&mut T`), first cleared to `$empty` so a failed call leaves no stale
/// value behind; NULL is `INVALID_ARGUMENT`.
macro_rules! arg_out {
    ($pointer:expr, $name:literal, $empty:expr) => {{
        let pointer = $pointer;
        if pointer.is_null() {
            return Err(::wasm_image::Error::invalid_argument(concat!(
                $name, " is NULL"
            )));
        }
        // SAFETY: non-NULL; C promises it points at writable storage for one value.
        let out = unsafe { &mut *pointer };
        *out = $empty;
        out
    }};
}

/// An optional out-pointer (`Option<&mut T>`): NULL means "not wanted".
macro_rules! arg_optional_out {
    ($pointer:expr, $empty:expr) => {{
        let pointer = $pointer;
        if pointer.is_null() {
            None
        } else {
            // SAFETY: as in `arg_out!`.
            let out = unsafe { &mut *pointer };
            *out = $empty;
            Some(out)
        }
    }};
}

pub(crate) use {
    arg_bytes, arg_handle, arg_optional_handle, arg_optional_out, arg_out, arg_str, ffi_boundary,
};

/// # Safety
/// `pointer` is NULL or points at a NUL-terminated string that outlives the call.
pub(crate) unsafe fn str_arg<'a>(pointer: *const c_char, name: &str) -> Result<&'a str> {
    if pointer.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's promise.
    let bytes = unsafe { CStr::from_ptr(pointer) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid_argument(format!(
            "{name} is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// # Safety
/// `pointer` is NULL or points at `len` readable bytes that outlive the call.
pub(crate) unsafe fn bytes_arg<'a>(pointer: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if pointer.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::invalid_argument(format!(
            "{name} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!(
            "{name}: length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, `len` bytes readable by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(pointer, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error_or_the_neutral_value() {
        let error = run(|| -> Result<()> { panic!("boom") });
        assert!(!error.is_null());
        unsafe {
            assert_eq!(
                crate::wasm_image_error_kind(error),
                crate::wasm_image_error_kind_t::WASM_IMAGE_ERROR_KIND_INTERNAL
            );
            let message = CStr::from_ptr(crate::wasm_image_error_message(error))
                .to_str()
                .unwrap();
            assert!(message.contains("boom"), "{message}");
            crate::wasm_image_error_free(error);
        }
        assert!(run(|| -> *const u8 { panic!("boom") }).is_null());
        assert_eq!(run(|| -> usize { panic!("boom") }), 0);
        assert!(!in_entry_point());
    }

    #[test]
    fn strings_and_bytes_are_checked() {
        let bad = [b'o', b'c', b'i', 0xff, 0];
        let err = unsafe { str_arg(bad.as_ptr().cast(), "location") }.unwrap_err();
        assert_eq!(err.kind(), wasm_image::ErrorKind::InvalidArgument);
        assert!(err.message().contains("location is not valid UTF-8"));
        assert!(unsafe { str_arg(std::ptr::null(), "x") }.is_err());
        assert_eq!(unsafe { bytes_arg(std::ptr::null(), 0, "m") }.unwrap(), b"");
        assert!(unsafe { bytes_arg(std::ptr::null(), 3, "m") }.is_err());
    }
}
