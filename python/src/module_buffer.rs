//! Pulled modules land directly in a Python `bytes` object: core asks for a buffer of the
//! module's exact size, we give it the inside of a fresh `bytes`, and `WasmImage.module`
//! later returns that very object. One write, no copy, one module's worth of memory.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use wasm_image::buffer::{ModuleAllocator, ModuleBuffer};

/// The `bytes` object made for the module of one call.
#[derive(Clone, Default)]
pub struct Made(Arc<Mutex<Option<Py<PyBytes>>>>);

impl Made {
    /// The object holding `module`, if `module` lives in one we made.
    pub fn holding(&self, py: Python<'_>, module: &Bytes) -> Option<Py<PyBytes>> {
        let made = self.0.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let data = made.bind(py).as_bytes();
        (data.as_ptr() == module.as_ptr() && data.len() == module.len()).then_some(made)
    }
}

/// Filled by core while no Python code can see the object: it is handed out only after
/// the pull succeeded, through `Made::holding`. The object is made uninitialised and each
/// range is zeroed just before core fills it, so memory is committed as bytes arrive, not
/// for the whole declared size up front (a registry declaring 256 MiB and sending a byte
/// at a time would otherwise hold 256 MiB of RSS); no byte is ever read uninitialised.
struct Filling {
    object: Py<PyBytes>,
    data: *mut u8,
    len: usize,
    /// Bytes `..initialised` have been zeroed (and perhaps filled).
    initialised: usize,
}

impl Filling {
    fn initialise_to(&mut self, end: usize) {
        let end = end.min(self.len);
        if end > self.initialised {
            // SAFETY: `initialised..end` lies within the `len` bytes of `object`.
            unsafe {
                std::ptr::write_bytes(self.data.add(self.initialised), 0, end - self.initialised)
            };
            self.initialised = end;
        }
    }
}

// The pointer is into `object`, which this struct keeps alive; only one thread fills it.
unsafe impl Send for Filling {}

impl ModuleBuffer for Filling {
    fn size(&mut self) -> usize {
        self.len
    }

    fn slice_mut(&mut self, range: std::ops::Range<usize>) -> &mut [u8] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range within the buffer"
        );
        self.initialise_to(range.end);
        // SAFETY: as in `as_mut_slice`, for a range within the buffer that is initialised.
        unsafe { std::slice::from_raw_parts_mut(self.data.add(range.start), range.len()) }
    }

    fn fill(&mut self, at: usize, data: &[u8]) {
        let end = at.checked_add(data.len()).filter(|end| *end <= self.len);
        match end {
            // The next bytes in order: copied into the uninitialised memory, which they
            // initialise; zeroing them first would write every byte twice.
            Some(end) if at == self.initialised => {
                // SAFETY: `at..end` lies within the `len` bytes of `object`, and `data`
                // is a different allocation.
                unsafe {
                    std::ptr::copy_nonoverlapping(data.as_ptr(), self.data.add(at), data.len())
                };
                self.initialised = end;
            }
            _ => self.slice_mut(at..at + data.len()).copy_from_slice(data),
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.initialise_to(self.len);
        // SAFETY: `data` points at `len` bytes owned by `object`, all initialised, which no
        // Python code has a reference to yet; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }

    fn freeze(mut self: Box<Self>) -> Bytes {
        self.initialise_to(self.len);
        Bytes::from_owner(Frozen {
            object: self.object,
            data: self.data,
            len: self.len,
        })
    }
}

struct Frozen {
    /// Kept only to keep the memory alive.
    #[allow(dead_code)]
    object: Py<PyBytes>,
    data: *const u8,
    len: usize,
}

// Immutable from here on; `Py` may be dropped on any thread.
unsafe impl Send for Frozen {}
unsafe impl Sync for Frozen {}

impl AsRef<[u8]> for Frozen {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: as in `Filling`, and no longer written.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// An allocator for one call, remembering what it made in `made`.
pub fn allocator(made: &Made) -> ModuleAllocator {
    let made = made.clone();
    Arc::new(move |len: usize| {
        Python::attach(|py| {
            let too_big = |why: String| {
                wasm_image::Error::new(
                    wasm_image::ErrorKind::LimitExceeded,
                    format!("cannot allocate {len} bytes for the module: {why}"),
                )
            };
            let size = pyo3::ffi::Py_ssize_t::try_from(len).map_err(|e| too_big(e.to_string()))?;
            // SAFETY: a NULL source asks CPython for an uninitialised `bytes` of `size`
            // bytes; `Filling` initialises every byte before anything reads it.
            let object = unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size),
                )
            }
            .map_err(|e| too_big(e.to_string()))?
            .cast_into::<PyBytes>()
            .map_err(|e| too_big(e.to_string()))?;
            // The raw pointer, not `as_bytes()`: no slice may view the uninitialised bytes.
            // SAFETY: `object` is a live `bytes`.
            let data = unsafe { pyo3::ffi::PyBytes_AsString(object.as_ptr()) }.cast::<u8>();
            *made.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(object.clone().unbind());
            Ok(Box::new(Filling {
                object: object.unbind(),
                data,
                len,
                initialised: 0,
            }) as Box<dyn ModuleBuffer>)
        })
    })
}
