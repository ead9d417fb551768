//! Core errors → the Python exception classes of `wasm_image._errors` (one per kind).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static BY_KIND: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    let dict = BY_KIND.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let by_kind = py.import("wasm_image._errors")?.getattr("_BY_KIND")?;
        Ok(by_kind.cast_into::<PyDict>()?.unbind())
    })?;
    Ok(dict.bind(py))
}

fn build(py: Python<'_>, err: &wasm_image::Error) -> PyResult<PyErr> {
    let cls = classes(py)?
        .get_item(err.kind().name())?
        .ok_or_else(|| PyRuntimeError::new_err(format!("no exception class for {}", err.kind())))?;
    let (status, code) = match err.registry() {
        Some(detail) => (Some(detail.status), detail.code.clone()),
        None => (None, None),
    };
    let value = cls.call1((err.message(), status, code))?;
    Ok(PyErr::from_value(value))
}

/// The Python exception for a core error. Needs the GIL (the classes are Python ones).
pub fn to_py(py: Python<'_>, err: wasm_image::Error) -> PyErr {
    build(py, &err).unwrap_or_else(|lookup| {
        let fallback = PyRuntimeError::new_err(format!("{}: {}", err.kind(), err.message()));
        fallback.set_cause(py, Some(lookup));
        fallback
    })
}

/// An argument the binding could not translate into core's types.
pub fn invalid_argument(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_py(py, wasm_image::Error::invalid_argument(message))
}

pub trait IntoPyResult<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for wasm_image::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
