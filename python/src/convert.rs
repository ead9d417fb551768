//! Python argument values converted to core's types, with the error a Python caller
//! expects for a bad one.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use crate::errors::invalid_argument;

/// Seconds as a `Duration`; a negative or non-finite number is `INVALID_ARGUMENT`.
pub(crate) fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid_argument(
            py,
            format!("{name} must be a non-negative number of seconds, got {value}"),
        )
    })
}

/// Bytes, or a file to read them from (`str` or `os.PathLike`).
#[derive(FromPyObject)]
pub enum BytesOrPath {
    Bytes(PyBackedBytes),
    Path(PathBuf),
}

impl BytesOrPath {
    pub(crate) fn load(self, what: &str) -> wasm_image::Result<Bytes> {
        match self {
            BytesOrPath::Bytes(b) => Ok(Bytes::from_owner(b)),
            BytesOrPath::Path(p) => wasm_image::files::read_input(&p, what),
        }
    }
}
