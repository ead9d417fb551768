//! Strings handed out to C: NUL-terminated copies owned by the handle they belong to.

use std::ffi::{c_char, CString};
use std::ptr;

/// A NUL-terminated string kept inside a handle; C borrows it until the handle is freed.
/// Text containing a NUL byte (JSON allows `\u0000`; no tool writes it) is cut there,
/// since a C string cannot hold it.
#[derive(Debug, Clone)]
pub(crate) struct NulStr(CString);

impl NulStr {
    pub(crate) fn new(text: &str) -> NulStr {
        let cut = text.find('\0').map_or(text, |at| &text[..at]);
        NulStr(CString::new(cut).expect("no NUL left"))
    }

    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr()
    }
}

/// The pointer of an optional string: NULL when absent.
pub(crate) fn opt_ptr(s: &Option<NulStr>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), NulStr::as_ptr)
}

/// The `index`th string of a list, or NULL past its end.
pub(crate) fn nth_ptr(list: &[NulStr], index: usize) -> *const c_char {
    list.get(index).map_or(ptr::null(), NulStr::as_ptr)
}

pub(crate) fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<NulStr> {
    items.into_iter().map(|s| NulStr::new(s.as_ref())).collect()
}
