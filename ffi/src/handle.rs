//! Ownership of the opaque handles given to C.
//!
//! Every handle is a `Box` turned into a raw pointer, and every live pointer is recorded in
//! one table with its type. A pointer is only dereferenced after the table confirms it is a
//! live handle of the expected type, so a NULL, a handle freed already (double free, use
//! after free) or a handle of another type passed by mistake is reported as
//! `INVALID_ARGUMENT` instead of corrupting memory — reliably, where a magic number inside
//! the freed block could be overwritten by the allocator and would itself be a read of
//! freed memory. The cost is one uncontended read lock per call.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use wasm_image::{Error, Result};

/// A type handed to C as an opaque pointer. `NAME` is its C type name, used in messages.
pub(crate) trait Handle: Send + Sync + Sized + 'static {
    const NAME: &'static str;
}

static LIVE: LazyLock<RwLock<HashMap<usize, TypeId>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

fn is_live<T: Handle>(address: usize) -> bool {
    let live = LIVE.read().unwrap_or_else(|p| p.into_inner());
    live.get(&address) == Some(&TypeId::of::<T>())
}

/// Moves `value` to the heap and records it; C owns the result until the matching `_free`.
pub(crate) fn into_raw<T: Handle>(value: T) -> *mut T {
    let pointer = Box::into_raw(Box::new(value));
    LIVE.write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(pointer as usize, TypeId::of::<T>());
    pointer
}

/// Borrows a handle C passed in. NULL, a freed handle or one of another type is
/// `INVALID_ARGUMENT` naming the parameter.
///
/// # Safety
/// The caller must not free the handle while the borrow is in use (documented for every
/// handle: no `_free` concurrent with a call using it).
pub(crate) unsafe fn get<'a, T: Handle>(pointer: *const T, parameter: &str) -> Result<&'a T> {
    if pointer.is_null() {
        return Err(Error::invalid_argument(format!("{parameter} is NULL")));
    }
    if !is_live::<T>(pointer as usize) {
        return Err(Error::invalid_argument(format!(
            "{parameter} is not a live {} (freed already, or not made by this library)",
            T::NAME
        )));
    }
    // SAFETY: recorded as a live `Box<T>` by `into_raw` and not yet freed.
    Ok(unsafe { &*pointer })
}

/// Like [`get`], where NULL means "use the defaults".
pub(crate) unsafe fn get_optional<'a, T: Handle>(
    pointer: *const T,
    parameter: &str,
) -> Result<Option<&'a T>> {
    if pointer.is_null() {
        Ok(None)
    } else {
        unsafe { get(pointer, parameter) }.map(Some)
    }
}

/// Borrows a handle in an accessor that has no error to return: `None` for NULL or a
/// pointer that is not a live handle of this type.
pub(crate) unsafe fn peek<'a, T: Handle>(pointer: *const T) -> Option<&'a T> {
    unsafe { get(pointer, "handle") }.ok()
}

/// Frees a handle. NULL, and a pointer that is not a live handle of this type (a second
/// free), are ignored: returns whether something was freed.
pub(crate) unsafe fn free<T: Handle>(pointer: *mut T) -> bool {
    if pointer.is_null() {
        return false;
    }
    let removed = {
        let mut live = LIVE.write().unwrap_or_else(|p| p.into_inner());
        match live.get(&(pointer as usize)) {
            Some(id) if *id == TypeId::of::<T>() => live.remove(&(pointer as usize)).is_some(),
            _ => false,
        }
    };
    if removed {
        // SAFETY: it was a live `Box<T>`, and it is no longer recorded, so no other free
        // or borrow can start from here on.
        drop(unsafe { Box::from_raw(pointer) });
    }
    removed
}

/// Marks strings returned to C (`char *` from `CString::into_raw`) in the table.
struct ReturnedString;

/// Hands a string to C; it is freed with [`free_string`].
pub(crate) fn string_into_raw(text: &str) -> *mut std::ffi::c_char {
    let cut = text.find('\0').map_or(text, |at| &text[..at]);
    let pointer = std::ffi::CString::new(cut).expect("no NUL left").into_raw();
    LIVE.write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(pointer as usize, TypeId::of::<ReturnedString>());
    pointer
}

/// Frees a string from [`string_into_raw`]; NULL and a second free are ignored.
pub(crate) unsafe fn free_string(pointer: *mut std::ffi::c_char) -> bool {
    if pointer.is_null() {
        return false;
    }
    let removed = {
        let mut live = LIVE.write().unwrap_or_else(|p| p.into_inner());
        match live.get(&(pointer as usize)) {
            Some(id) if *id == TypeId::of::<ReturnedString>() => {
                live.remove(&(pointer as usize)).is_some()
            }
            _ => false,
        }
    };
    if removed {
        // SAFETY: made by `CString::into_raw` in `string_into_raw`, freed once.
        drop(unsafe { std::ffi::CString::from_raw(pointer) });
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing(#[allow(dead_code)] u32);
    impl Handle for Thing {
        const NAME: &'static str = "thing_t";
    }
    struct Other;
    impl Handle for Other {
        const NAME: &'static str = "other_t";
    }

    #[test]
    fn double_free_and_wrong_type_are_detected() {
        let p = into_raw(Thing(7));
        assert!(unsafe { get(p, "thing") }.is_ok());
        let err = unsafe { get::<Other>(p.cast(), "other") }.err().unwrap();
        assert!(
            err.message().contains("not a live other_t"),
            "{}",
            err.message()
        );
        assert!(unsafe { free(p) });
        assert!(!unsafe { free(p) });
        let err = unsafe { get(p, "thing") }.err().unwrap();
        assert_eq!(err.kind(), wasm_image::ErrorKind::InvalidArgument);
        assert!(unsafe { get::<Thing>(std::ptr::null(), "thing") }
            .err()
            .unwrap()
            .message()
            .contains("NULL"));
        assert!(!unsafe { free::<Thing>(std::ptr::null_mut()) });
    }
}
