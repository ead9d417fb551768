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
/// the pull succeeded, through `Made::holding`.
struct Filling {
    object: Py<PyBytes>,
    data: *mut u8,
    len: usize,
}

// The pointer is into `object`, which this struct keeps alive; only one thread fills it.
unsafe impl Send for Filling {}

impl ModuleBuffer for Filling {
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `data` points at `len` bytes owned by `object`, which no Python code has
        // a reference to yet; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }

    fn freeze(self: Box<Self>) -> Bytes {
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
            let object = PyBytes::new_with(py, len, |_| Ok(())).map_err(|e| {
                wasm_image::Error::new(
                    wasm_image::ErrorKind::LimitExceeded,
                    format!("cannot allocate {len} bytes for the module: {e}"),
                )
            })?;
            let data = object.as_bytes().as_ptr() as *mut u8;
            *made.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(object.clone().unbind());
            Ok(Box::new(Filling {
                object: object.unbind(),
                data,
                len,
            }) as Box<dyn ModuleBuffer>)
        })
    })
}
