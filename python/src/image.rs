//! The image model as Python objects: WasmImage, ImageInfo, RuntimeConfig, ModuleFacts,
//! ProgressEvent. All immutable (`frozen`), so they can be shared between threads.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::IntoPyResult;

/// A Python-style string literal, for `__repr__`s.
pub fn py_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A Python-style list of strings, for `__repr__`s.
pub fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| py_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn py_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "None".to_string(), py_str)
}

fn json_to_py<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (PyBytes::new(py, data),))
}

fn annotations_dict<'py>(
    py: Python<'py>,
    map: &BTreeMap<String, String>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, v)?;
    }
    Ok(dict)
}

/// The runtime metadata of the Wasm Image specification.
#[pyclass(module = "wasm_image", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct RuntimeConfig {
    pub inner: wasm_image::RuntimeConfig,
}

#[pymethods]
impl RuntimeConfig {
    /// The runtime type, e.g. ``"envoy_proxy"``.
    #[getter]
    fn r#type(&self) -> Option<&str> {
        self.inner.runtime_type.as_deref()
    }
    /// The ABI versions the module supports (empty when the config names none).
    #[getter]
    fn abi_versions(&self) -> Vec<String> {
        self.inner.abi_versions.clone()
    }
    /// The Envoy root context ids (``rootIds``, or ``root_ids`` as the spec spells it).
    #[getter]
    fn root_ids(&self) -> Vec<String> {
        self.inner.root_ids.clone()
    }
    /// The whole JSON object as stored, unknown fields included (a new dict each time).
    #[getter]
    fn raw<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.to_json())
    }
    fn __repr__(&self) -> String {
        format!(
            "RuntimeConfig(type={}, abi_versions={}, root_ids={})",
            py_opt(self.inner.runtime_type.as_deref()),
            py_list(&self.inner.abi_versions),
            py_list(&self.inner.root_ids)
        )
    }
}

/// Facts about a module read with a Wasm parser.
#[pyclass(module = "wasm_image", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct ModuleFacts {
    pub inner: wasm_image::ModuleFacts,
}

#[pymethods]
impl ModuleFacts {
    /// ``"core-module"`` or ``"component"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.name()
    }
    /// The module's size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size
    }
    /// Every import as ``"module.name"``.
    #[getter]
    fn imports(&self) -> Vec<String> {
        self.inner.imports.clone()
    }
    /// Every export's name.
    #[getter]
    fn exports(&self) -> Vec<String> {
        self.inner.exports.clone()
    }
    /// The proxy-wasm ABI versions the module declares through its
    /// ``proxy_abi_version_*`` exports.
    #[getter]
    fn proxy_abi_versions(&self) -> Vec<String> {
        self.inner.proxy_abi_versions.clone()
    }
    fn __repr__(&self) -> String {
        format!(
            "<ModuleFacts kind={} size={} imports={} exports={} proxy_abi_versions={}>",
            py_str(self.inner.kind.name()),
            self.inner.size,
            self.inner.imports.len(),
            self.inner.exports.len(),
            py_list(&self.inner.proxy_abi_versions)
        )
    }
}

/// Progress of one blob's transfer, given to ``progress`` callbacks.
#[pyclass(module = "wasm_image", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct ProgressEvent {
    inner: wasm_image::ProgressEvent,
}

impl From<&wasm_image::ProgressEvent> for ProgressEvent {
    fn from(event: &wasm_image::ProgressEvent) -> Self {
        ProgressEvent {
            inner: event.clone(),
        }
    }
}

#[pymethods]
impl ProgressEvent {
    /// Digest of the blob being moved.
    #[getter]
    fn digest(&self) -> String {
        self.inner.digest.to_string()
    }
    /// Media type of the blob being moved.
    #[getter]
    fn media_type(&self) -> &str {
        &self.inner.media_type
    }
    /// Bytes moved so far.
    #[getter]
    fn done(&self) -> u64 {
        self.inner.done
    }
    /// The blob's size.
    #[getter]
    fn total(&self) -> u64 {
        self.inner.total
    }
    fn __repr__(&self) -> String {
        format!(
            "ProgressEvent(digest={}, media_type={}, done={}, total={})",
            py_str(&self.inner.digest.to_string()),
            py_str(&self.inner.media_type),
            self.inner.done,
            self.inner.total
        )
    }
}

/// The getters WasmImage and ImageInfo share.
macro_rules! info_getters {
    ($ty:ty, $info:ident, { $($extra:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($extra)*

            /// ``"oci"``, ``"compat"``, ``"wasm-artifact"``, …
            #[getter]
            fn variant(&self) -> &'static str {
                self.$info().variant.name()
            }
            /// ``"sha256:…"`` of the module bytes.
            #[getter]
            fn module_digest(&self) -> String {
                self.$info().module_digest.to_string()
            }
            /// The module's size in bytes.
            #[getter]
            fn module_size(&self) -> u64 {
                self.$info().module_size
            }
            /// ``"sha256:…"`` of the manifest.
            #[getter]
            fn manifest_digest(&self) -> String {
                self.$info().manifest_digest.to_string()
            }
            /// The manifest's media type (OCI image manifest or Docker schema 2).
            #[getter]
            fn manifest_media_type(&self) -> &str {
                &self.$info().manifest_media_type
            }
            /// The index's digest when the location named an index, else None.
            #[getter]
            fn index_digest(&self) -> Option<String> {
                self.$info().index_digest.as_ref().map(ToString::to_string)
            }
            /// The runtime metadata (a :class:`RuntimeConfig`), or None when the image has none.
            #[getter]
            fn runtime_config(&self) -> Option<RuntimeConfig> {
                self.$info()
                    .runtime_config
                    .clone()
                    .map(|inner| RuntimeConfig { inner })
            }
            /// The manifest's annotations (a new dict each time).
            #[getter]
            fn annotations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                annotations_dict(py, &self.$info().annotations)
            }
            /// The manifest exactly as stored (its sha256 is ``manifest_digest``).
            #[getter]
            fn manifest<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                PyBytes::new(py, &self.$info().manifest)
            }
            /// The config blob exactly as stored.
            #[getter]
            fn config<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                PyBytes::new(py, &self.$info().config)
            }
        }
    };
}

/// A Wasm module with its image: what ``pull`` and ``build`` return and ``push`` takes.
#[pyclass(module = "wasm_image", frozen)]
pub struct WasmImage {
    pub inner: wasm_image::WasmImage,
    /// The module as Python bytes, made once on first access (or the caller's own bytes
    /// object when built from one).
    module: PyOnceLock<Py<PyBytes>>,
}

impl WasmImage {
    pub fn new(
        py: Python<'_>,
        inner: wasm_image::WasmImage,
        module: Option<Py<PyBytes>>,
    ) -> WasmImage {
        let cache = PyOnceLock::new();
        if let Some(bytes) = module {
            // A fresh lock is empty, so this always fills it.
            let _ = cache.set(py, bytes);
        }
        WasmImage {
            inner,
            module: cache,
        }
    }
    fn info(&self) -> &wasm_image::ImageInfo {
        self.inner.info()
    }
}

info_getters!(WasmImage, info, {
    /// The Wasm module's bytes (the same object on every access).
    #[getter]
    fn module<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.module
            .get_or_init(py, || PyBytes::new(py, self.inner.module()).unbind())
            .bind(py)
            .clone()
    }
    /// Kind, imports, exports and proxy-wasm ABI versions of the module.
    fn facts(&self, py: Python<'_>) -> PyResult<ModuleFacts> {
        let module = self.inner.module().clone();
        py.detach(|| wasm_image::module_facts::inspect(&module))
            .py_err(py)
            .map(|inner| ModuleFacts { inner })
    }
    fn __repr__(&self) -> String {
        let info = self.info();
        format!(
            "<WasmImage variant={} module_digest={} module_size={} manifest_digest={}>",
            py_str(info.variant.name()),
            py_str(&info.module_digest.to_string()),
            self.inner.module().len(),
            py_str(&info.manifest_digest.to_string())
        )
    }
});

/// What ``pull_to_file`` returns: everything about the image except the module bytes.
#[pyclass(module = "wasm_image", frozen)]
pub struct ImageInfo {
    pub inner: wasm_image::ImageInfo,
}

impl ImageInfo {
    fn info(&self) -> &wasm_image::ImageInfo {
        &self.inner
    }
}

info_getters!(ImageInfo, info, {
    fn __repr__(&self) -> String {
        format!(
            "<ImageInfo variant={} module_digest={} module_size={} manifest_digest={}>",
            py_str(self.inner.variant.name()),
            py_str(&self.inner.module_digest.to_string()),
            self.inner.module_size,
            py_str(&self.inner.manifest_digest.to_string())
        )
    }
});
