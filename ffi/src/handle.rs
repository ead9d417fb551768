//! Ownership of the opaque handles given to C.
//!
//! Every handle is a `Box` turned into a raw pointer, and every live pointer is recorded in
//! one table with its type. A pointer is only dereferenced after the table confirms it is a
//! live handle of the expected type, so a NULL, a handle freed already (double free, use
//! after free) or a handle of another type passed by mistake is reported as
//! `INVALID_ARGUMENT` instead of corrupting memory — reliably, where a magic number inside
//! the freed block could be overwritten by the allocator and would itself be a read of
//! freed memory. The cost is one uncontended read lock per call.
//!
//! A freed block is not given back to the allocator at once but held in a quarantine
//! (`quarantine.rs`): otherwise the next handle would usually get the freed address, and
//! a stale pointer would pass for the new handle.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use wasm_image::{Error, Result};

use crate::quarantine;

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
        // or borrow can start from here on. Its value is dropped here, once; the memory,
        // as a `MaybeUninit<T>` that drops nothing, goes to the quarantine.
        unsafe { std::ptr::drop_in_place(pointer) };
        let block = unsafe { Box::from_raw(pointer.cast::<std::mem::MaybeUninit<T>>()) };
        quarantine::hold(block, std::mem::size_of::<T>());
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
        let text = unsafe { std::ffi::CString::from_raw(pointer) };
        let bytes = text.as_bytes_with_nul().len();
        quarantine::hold(Box::new(text), bytes);
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

    #[test]
    fn a_freed_handle_stays_detected_when_a_new_handle_is_made() {
        // Allocators hand the last freed block of a size out again first: without the
        // quarantine the new handle would sit at the stale one's address and the stale
        // pointer would pass for it.
        for _ in 0..100 {
            let stale = into_raw(Thing(1));
            assert!(unsafe { free(stale) });
            let fresh = into_raw(Thing(2));
            assert_ne!(
                stale, fresh,
                "a freed handle's address was handed out again"
            );
            let err = unsafe { get(stale, "thing") }.err().unwrap();
            assert_eq!(err.kind(), wasm_image::ErrorKind::InvalidArgument);
            assert!(!unsafe { free(stale) }, "a second free of the stale handle");
            assert_eq!(unsafe { get(fresh, "thing") }.unwrap().0, 2);
            assert!(unsafe { free(fresh) });
        }
    }

    #[test]
    fn a_freed_string_stays_detected_when_a_new_string_is_returned() {
        let stale = string_into_raw("first");
        assert!(unsafe { free_string(stale) });
        let fresh = string_into_raw("again");
        assert_ne!(
            stale, fresh,
            "a freed string's address was handed out again"
        );
        assert!(!unsafe { free_string(stale) });
        assert!(unsafe { free_string(fresh) });
    }

    #[test]
    fn the_quarantine_gives_memory_back_beyond_its_budget() {
        struct Big(#[allow(dead_code)] [u8; 4096]);
        impl Handle for Big {
            const NAME: &'static str = "big_t";
        }
        for _ in 0..(2 * quarantine::BUDGET_BYTES / 4096) {
            assert!(unsafe { free(into_raw(Big([0; 4096]))) });
        }
        assert!(quarantine::held_bytes() <= quarantine::BUDGET_BYTES);
    }

    #[test]
    fn a_free_drops_the_value_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted(#[allow(dead_code)] u64);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        impl Handle for Counted {
            const NAME: &'static str = "counted_t";
        }
        let p = into_raw(Counted(9));
        assert!(unsafe { free(p) });
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        assert!(!unsafe { free(p) });
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    }
}
