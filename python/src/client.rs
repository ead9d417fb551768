//! `Client`, `Limits` and the module-level functions: Python arguments → core options.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use wasm_image::{
    BuildOptions, CallOptions, ClientOptions, Credentials, ManifestFormat, Platform, Variant,
};

use crate::bridge::{self, CancelToken, ToPython};
use crate::convert::{seconds, BytesOrPath};
use crate::errors::IntoPyResult;
use crate::image::{py_list, py_str, ImageInfo, ModuleFacts, WasmImage};

// ---- arguments ----------------------------------------------------------------------

#[derive(FromPyObject)]
enum CredentialArg {
    Bearer(String),
    Basic((String, String)),
}

fn parse<T: FromStr<Err = wasm_image::Error>>(py: Python<'_>, value: &str) -> PyResult<T> {
    value.parse::<T>().py_err(py)
}

fn platform(py: Python<'_>, value: Option<&str>) -> PyResult<Option<Platform>> {
    value.map(|p| parse::<Platform>(py, p)).transpose()
}

// ---- Limits -------------------------------------------------------------------------

/// Bounds on what an image may make the client read. Unset fields keep core's defaults.
#[pyclass(module = "wasm_image", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Limits {
    inner: wasm_image::Limits,
}

#[pymethods]
impl Limits {
    #[new]
    #[pyo3(signature = (*, max_module_bytes=None, max_metadata_bytes=None, max_decompressed_bytes=None,
                        max_tar_entries=None, max_index_depth=None, max_index_entries=None))]
    fn new(
        max_module_bytes: Option<u64>,
        max_metadata_bytes: Option<u64>,
        max_decompressed_bytes: Option<u64>,
        max_tar_entries: Option<u64>,
        max_index_depth: Option<u32>,
        max_index_entries: Option<u64>,
    ) -> Limits {
        let d = wasm_image::Limits::default();
        Limits {
            inner: wasm_image::Limits {
                max_module_bytes: max_module_bytes.unwrap_or(d.max_module_bytes),
                max_metadata_bytes: max_metadata_bytes.unwrap_or(d.max_metadata_bytes),
                max_decompressed_bytes: max_decompressed_bytes.unwrap_or(d.max_decompressed_bytes),
                max_tar_entries: max_tar_entries.unwrap_or(d.max_tar_entries),
                max_index_depth: max_index_depth.unwrap_or(d.max_index_depth),
                max_index_entries: max_index_entries.unwrap_or(d.max_index_entries),
            },
        }
    }
    /// Largest module accepted.
    #[getter]
    fn max_module_bytes(&self) -> u64 {
        self.inner.max_module_bytes
    }
    /// Largest manifest, index or config blob read into memory.
    #[getter]
    fn max_metadata_bytes(&self) -> u64 {
        self.inner.max_metadata_bytes
    }
    /// Most bytes decompressed from one layer while looking for the module.
    #[getter]
    fn max_decompressed_bytes(&self) -> u64 {
        self.inner.max_decompressed_bytes
    }
    /// Most tar entries looked at in one layer.
    #[getter]
    fn max_tar_entries(&self) -> u64 {
        self.inner.max_tar_entries
    }
    /// How many indexes may point at further indexes.
    #[getter]
    fn max_index_depth(&self) -> u32 {
        self.inner.max_index_depth
    }
    /// Most entries in one index.
    #[getter]
    fn max_index_entries(&self) -> u64 {
        self.inner.max_index_entries
    }
    fn __repr__(&self) -> String {
        let l = &self.inner;
        format!(
            "Limits(max_module_bytes={}, max_metadata_bytes={}, max_decompressed_bytes={}, max_tar_entries={}, max_index_depth={}, max_index_entries={})",
            l.max_module_bytes, l.max_metadata_bytes, l.max_decompressed_bytes, l.max_tar_entries, l.max_index_depth, l.max_index_entries
        )
    }
}

// ---- results ------------------------------------------------------------------------

impl ToPython for wasm_image::WasmImage {
    fn to_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, WasmImage::new(py, self, None))?.into_any())
    }
}

impl ToPython for wasm_image::ImageInfo {
    fn to_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, ImageInfo { inner: self })?.into_any())
    }
}

// ---- the operations, shared by Client and the module functions -----------------------

/// The per-call arguments of a blocking call, as Python gave them.
#[derive(Default)]
struct Call<'a> {
    platform: Option<&'a str>,
    progress: Option<Py<PyAny>>,
    cancel: Option<&'a CancelToken>,
    signing: Signing,
}

/// The per-call signing arguments: `verify=` and `sign_with=`, already translated.
#[derive(Default, Clone)]
struct Signing {
    verify: Option<wasm_image::Requirement>,
    sign_with: Option<std::sync::Arc<wasm_image::SigningKey>>,
}

impl Signing {
    fn verify(py: Python<'_>, verify: Option<crate::signing::VerifyArg<'_>>) -> PyResult<Signing> {
        Ok(Signing {
            verify: crate::signing::requirement(py, verify)?,
            sign_with: None,
        })
    }

    fn sign(sign_with: Option<PyRef<'_, crate::signing::SigningKey>>) -> Signing {
        Signing {
            verify: None,
            sign_with: sign_with.map(|k| k.inner.clone()),
        }
    }

    fn apply(self, mut call: CallOptions) -> CallOptions {
        call.verify = self.verify;
        call.sign_with = self.sign_with;
        call
    }
}

struct Ops<'a> {
    client: &'a wasm_image::Client,
    progress: Option<&'a Py<PyAny>>,
}

impl<'c> Ops<'c> {
    fn progress(&self, py: Python<'_>, call: Option<Py<PyAny>>) -> Option<Py<PyAny>> {
        call.or_else(|| self.progress.map(|p| p.clone_ref(py)))
    }

    /// Runs a blocking operation with the call's progress, cancel token and platform.
    fn run<T, F, Fut>(&self, py: Python<'_>, call: Call<'_>, op: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&'c wasm_image::Client, CallOptions) -> Fut + Send,
        Fut: std::future::Future<Output = wasm_image::Result<T>>,
    {
        let platform = platform(py, call.platform)?;
        crate::logs::refresh(py);
        let client = self.client;
        let signing = call.signing;
        bridge::run(
            py,
            self.progress(py, call.progress),
            call.cancel,
            move |p| {
                op(
                    client,
                    signing.apply(wasm_image::client::call_options(p, platform)),
                )
            },
        )
    }

    /// Starts an operation on the running asyncio loop.
    fn spawn<'py, T, F, Fut>(
        &self,
        py: Python<'py>,
        platform: Option<&str>,
        progress: Option<Py<PyAny>>,
        signing: Signing,
        op: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        T: ToPython,
        F: FnOnce(wasm_image::Client, CallOptions) -> Fut,
        Fut: std::future::Future<Output = wasm_image::Result<T>> + Send + 'static,
    {
        let platform = self::platform(py, platform)?;
        crate::logs::refresh(py);
        let client = self.client.clone();
        bridge::async_call(py, self.progress(py, progress), move |p| {
            op(
                client,
                signing.apply(wasm_image::client::call_options(p, platform)),
            )
        })
    }

    fn pull(&self, py: Python<'_>, location: &str, call: Call<'_>) -> PyResult<WasmImage> {
        let made = crate::module_buffer::Made::default();
        let allocate = crate::module_buffer::allocator(&made);
        let image = self.run(py, call, |c, mut o| async move {
            o.module_allocator = Some(allocate);
            c.pull(location, &o).await
        })?;
        let module = made.holding(py, image.module());
        Ok(WasmImage::new(py, image, module))
    }

    fn pull_to_file(
        &self,
        py: Python<'_>,
        location: &str,
        path: PathBuf,
        call: Call<'_>,
    ) -> PyResult<ImageInfo> {
        let info = self.run(py, call, |c, o| async move {
            c.pull_to_file(location, &path, &o).await
        })?;
        Ok(ImageInfo { inner: info })
    }

    fn push(
        &self,
        py: Python<'_>,
        image: &WasmImage,
        location: &str,
        call: Call<'_>,
    ) -> PyResult<String> {
        let image = &image.inner;
        self.run(py, call, |c, o| async move {
            Ok(c.push(image, location, &o).await?.to_string())
        })
    }

    fn copy(
        &self,
        py: Python<'_>,
        source: &str,
        destination: &str,
        call: Call<'_>,
    ) -> PyResult<String> {
        self.run(py, call, |c, o| async move {
            Ok(c.copy(source, destination, &o).await?.to_string())
        })
    }

    fn resolve(&self, py: Python<'_>, location: &str, call: Call<'_>) -> PyResult<String> {
        self.run(py, call, |c, o| async move {
            Ok(c.resolve(location, &o).await?.digest.to_string())
        })
    }

    fn fetch(
        &self,
        py: Python<'_>,
        location: &str,
        fetch: wasm_image::FetchOptions,
        call: Call<'_>,
    ) -> PyResult<crate::cache::FetchEntry> {
        let entry = self.run(py, call, |c, o| async move {
            c.fetch(location, &fetch, &o).await
        })?;
        Ok(entry.into())
    }
}

fn default_ops(py: Python<'_>) -> PyResult<Ops<'static>> {
    let client = bridge::compute(py, wasm_image::default_client)?;
    Ok(Ops {
        client,
        progress: None,
    })
}

// ---- Client -------------------------------------------------------------------------

/// Options shared by every call made through it: credentials, TLS, timeouts, retries,
/// limits, mirrors, platform, progress. Thread-safe; share one per process.
#[pyclass(module = "wasm_image", frozen)]
pub struct Client {
    inner: wasm_image::Client,
    progress: Option<Py<PyAny>>,
}

impl Client {
    fn ops(&self) -> Ops<'_> {
        Ops {
            client: &self.inner,
            progress: self.progress.as_ref(),
        }
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (*, credentials=None, docker_config=None, use_config_files=None, insecure=None,
                        ca_certs=None, connect_timeout=None, read_timeout=None, retries=None,
                        retry_base_delay=None, retry_max_delay=None, call_timeout=None, limits=None,
                        mirrors=None, platform=None, user_agent=None, progress=None, cache=None,
                        verify=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        credentials: Option<BTreeMap<String, CredentialArg>>,
        docker_config: Option<PyBackedBytes>,
        use_config_files: Option<bool>,
        insecure: Option<Vec<String>>,
        ca_certs: Option<Vec<BytesOrPath>>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        retries: Option<u32>,
        retry_base_delay: Option<f64>,
        retry_max_delay: Option<f64>,
        call_timeout: Option<f64>,
        limits: Option<Limits>,
        mirrors: Option<BTreeMap<String, Vec<String>>>,
        platform: Option<&str>,
        user_agent: Option<String>,
        progress: Option<Py<PyAny>>,
        cache: Option<PyRef<'_, crate::cache::Cache>>,
        verify: Option<BTreeMap<String, Option<PyRef<'_, crate::signing::Trust>>>>,
    ) -> PyResult<Client> {
        let mut options = ClientOptions::default();
        if let Some(credentials) = credentials {
            options.credentials = credentials
                .into_iter()
                .map(|(host, c)| {
                    let c = match c {
                        CredentialArg::Bearer(token) => Credentials::Bearer(token),
                        CredentialArg::Basic((username, password)) => {
                            Credentials::Basic { username, password }
                        }
                    };
                    (host, c)
                })
                .collect();
        }
        options.docker_config_json = docker_config.map(|b| b.to_vec());
        if let Some(v) = use_config_files {
            options.use_config_files = v;
        }
        if let Some(v) = insecure {
            options.insecure_registries = v;
        }
        if let Some(certs) = ca_certs {
            options.ca_certificates_pem = certs
                .into_iter()
                .map(|c| c.load("CA certificate").map(|b| b.to_vec()))
                .collect::<wasm_image::Result<_>>()
                .py_err(py)?;
        }
        if let Some(v) = connect_timeout {
            options.connect_timeout = seconds(py, "connect_timeout", v)?;
        }
        if let Some(v) = read_timeout {
            options.read_timeout = seconds(py, "read_timeout", v)?;
        }
        if let Some(v) = retries {
            options.max_retries = v;
        }
        if let Some(v) = retry_base_delay {
            options.retry_base_delay = seconds(py, "retry_base_delay", v)?;
        }
        if let Some(v) = retry_max_delay {
            options.retry_max_delay = seconds(py, "retry_max_delay", v)?;
        }
        if let Some(v) = call_timeout {
            options.call_timeout = Some(seconds(py, "call_timeout", v)?);
        }
        if let Some(l) = limits {
            options.limits = l.inner;
        }
        if let Some(m) = mirrors {
            options.mirrors = m;
        }
        options.platform = self::platform(py, platform)?;
        if let Some(ua) = user_agent {
            options.user_agent = ua;
        }
        options.cache = cache.map(|c| c.inner.clone());
        if let Some(rules) = verify {
            options.verification = crate::signing::policy(py, rules)?;
        }
        let inner = bridge::compute(py, || wasm_image::Client::new(options))?;
        Ok(Client { inner, progress })
    }

    /// The limits in force.
    #[getter]
    fn limits(&self) -> Limits {
        Limits {
            inner: self.inner.options().limits,
        }
    }

    /// Fetches, verifies and extracts the module into memory.
    #[pyo3(signature = (location, *, platform=None, progress=None, cancel=None, verify=None))]
    fn pull(
        &self,
        py: Python<'_>,
        location: &str,
        platform: Option<&str>,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
        verify: Option<crate::signing::VerifyArg<'_>>,
    ) -> PyResult<WasmImage> {
        let call = Call {
            platform,
            progress,
            cancel: cancel.as_deref(),
            signing: Signing::verify(py, verify)?,
        };
        self.ops().pull(py, location, call)
    }

    /// Fetches and verifies the module straight into a file, which appears only once
    /// complete.
    #[pyo3(signature = (location, path, *, platform=None, progress=None, cancel=None, verify=None))]
    #[allow(clippy::too_many_arguments)]
    fn pull_to_file(
        &self,
        py: Python<'_>,
        location: &str,
        path: PathBuf,
        platform: Option<&str>,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
        verify: Option<crate::signing::VerifyArg<'_>>,
    ) -> PyResult<ImageInfo> {
        let call = Call {
            platform,
            progress,
            cancel: cancel.as_deref(),
            signing: Signing::verify(py, verify)?,
        };
        self.ops().pull_to_file(py, location, path, call)
    }

    /// Writes an image to a location; returns the manifest digest.
    #[pyo3(signature = (image, location, *, progress=None, cancel=None, sign_with=None))]
    fn push(
        &self,
        py: Python<'_>,
        image: PyRef<'_, WasmImage>,
        location: &str,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
        sign_with: Option<PyRef<'_, crate::signing::SigningKey>>,
    ) -> PyResult<String> {
        let call = Call {
            platform: None,
            progress,
            cancel: cancel.as_deref(),
            signing: Signing::sign(sign_with),
        };
        self.ops().push(py, &image, location, call)
    }

    /// Copies an image or index between two locations, digests unchanged; returns the digest.
    #[pyo3(signature = (source, destination, *, progress=None, cancel=None))]
    fn copy(
        &self,
        py: Python<'_>,
        source: &str,
        destination: &str,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<String> {
        let call = Call {
            platform: None,
            progress,
            cancel: cancel.as_deref(),
            signing: Signing::default(),
        };
        self.ops().copy(py, source, destination, call)
    }

    /// The manifest (or index) digest a location names, without fetching the module.
    #[pyo3(signature = (location, *, cancel=None))]
    fn resolve(
        &self,
        py: Python<'_>,
        location: &str,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<String> {
        let call = Call {
            cancel: cancel.as_deref(),
            ..Call::default()
        };
        self.ops().resolve(py, location, call)
    }

    /// The asyncio twin of :meth:`pull`: an awaitable of a :class:`WasmImage`.
    /// Cancel it by cancelling the task.
    #[pyo3(signature = (location, *, platform=None, progress=None, verify=None))]
    fn pull_async<'py>(
        &self,
        py: Python<'py>,
        location: String,
        platform: Option<&str>,
        progress: Option<Py<PyAny>>,
        verify: Option<crate::signing::VerifyArg<'_>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let signing = Signing::verify(py, verify)?;
        self.ops()
            .spawn(py, platform, progress, signing, |c, o| async move {
                c.pull(&location, &o).await
            })
    }

    /// The asyncio twin of :meth:`pull_to_file`: an awaitable of an :class:`ImageInfo`.
    #[pyo3(signature = (location, path, *, platform=None, progress=None, verify=None))]
    fn pull_to_file_async<'py>(
        &self,
        py: Python<'py>,
        location: String,
        path: PathBuf,
        platform: Option<&str>,
        progress: Option<Py<PyAny>>,
        verify: Option<crate::signing::VerifyArg<'_>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let signing = Signing::verify(py, verify)?;
        self.ops()
            .spawn(py, platform, progress, signing, |c, o| async move {
                c.pull_to_file(&location, &path, &o).await
            })
    }

    /// The asyncio twin of :meth:`push`: an awaitable of the manifest digest.
    #[pyo3(signature = (image, location, *, progress=None, sign_with=None))]
    fn push_async<'py>(
        &self,
        py: Python<'py>,
        image: PyRef<'_, WasmImage>,
        location: String,
        progress: Option<Py<PyAny>>,
        sign_with: Option<PyRef<'_, crate::signing::SigningKey>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let signing = Signing::sign(sign_with);
        let image = image.inner.clone();
        self.ops()
            .spawn(py, None, progress, signing, |c, o| async move {
                Ok(c.push(&image, &location, &o).await?.to_string())
            })
    }

    /// The asyncio twin of :meth:`copy`: an awaitable of the copied digest.
    #[pyo3(signature = (source, destination, *, progress=None))]
    fn copy_async<'py>(
        &self,
        py: Python<'py>,
        source: String,
        destination: String,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.ops()
            .spawn(py, None, progress, Signing::default(), |c, o| async move {
                Ok(c.copy(&source, &destination, &o).await?.to_string())
            })
    }

    /// The module for a control plane, from the cache when the policy allows; returns a
    /// leased entry (a context manager).
    #[pyo3(signature = (location, *, policy=None, expected_digest=None, stale_on_error=None,
                        platform=None, progress=None, cancel=None, verify=None))]
    #[allow(clippy::too_many_arguments)]
    fn fetch(
        &self,
        py: Python<'_>,
        location: &str,
        policy: Option<&str>,
        expected_digest: Option<&str>,
        stale_on_error: Option<bool>,
        platform: Option<&str>,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
        verify: Option<crate::signing::VerifyArg<'_>>,
    ) -> PyResult<crate::cache::FetchEntry> {
        let fetch = crate::cache::fetch_options(py, policy, expected_digest, stale_on_error)?;
        let call = Call {
            platform,
            progress,
            cancel: cancel.as_deref(),
            signing: Signing::verify(py, verify)?,
        };
        self.ops().fetch(py, location, fetch, call)
    }

    /// The asyncio twin of :meth:`fetch`: an awaitable of the entry.
    #[pyo3(signature = (location, *, policy=None, expected_digest=None, stale_on_error=None,
                        platform=None, progress=None, verify=None))]
    #[allow(clippy::too_many_arguments)]
    fn fetch_async<'py>(
        &self,
        py: Python<'py>,
        location: String,
        policy: Option<&str>,
        expected_digest: Option<&str>,
        stale_on_error: Option<bool>,
        platform: Option<&str>,
        progress: Option<Py<PyAny>>,
        verify: Option<crate::signing::VerifyArg<'_>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let signing = Signing::verify(py, verify)?;
        let fetch = crate::cache::fetch_options(py, policy, expected_digest, stale_on_error)?;
        self.ops()
            .spawn(py, platform, progress, signing, |c, o| async move {
                c.fetch(&location, &fetch, &o).await
            })
    }

    /// The cache `fetch` uses (the default directory's when none was given).
    #[getter]
    fn cache(&self, py: Python<'_>) -> PyResult<crate::cache::Cache> {
        let inner = bridge::compute(py, || self.inner.cache())?;
        Ok(crate::cache::Cache { inner })
    }

    /// The asyncio twin of :meth:`resolve`: an awaitable of the digest.
    fn resolve_async<'py>(&self, py: Python<'py>, location: String) -> PyResult<Bound<'py, PyAny>> {
        self.ops()
            .spawn(py, None, None, Signing::default(), |c, o| async move {
                Ok(c.resolve(&location, &o).await?.digest.to_string())
            })
    }

    fn __repr__(&self) -> String {
        let o = self.inner.options();
        let hosts: Vec<String> = o.credentials.keys().cloned().collect();
        let mirrors: Vec<String> = o
            .mirrors
            .iter()
            .map(|(k, v)| format!("{}: {}", py_str(k), py_list(v)))
            .collect();
        format!(
            "<Client credentials_for={} insecure={} ca_certs={} connect_timeout={} read_timeout={} retries={} mirrors={} platform={}>",
            py_list(&hosts),
            py_list(&o.insecure_registries),
            o.ca_certificates_pem.len(),
            o.connect_timeout.as_secs_f64(),
            o.read_timeout.as_secs_f64(),
            o.max_retries,
            format_args!("{{{}}}", mirrors.join(", ")),
            o.platform.as_ref().map_or_else(|| "None".into(), |p| py_str(&p.to_string())),
        )
    }
}

// ---- module functions ---------------------------------------------------------------

/// Fetches the image at ``location``, verifies every digest and size, and returns the
/// :class:`WasmImage` with its module in memory. Uses a default :class:`Client`; make one
/// for credentials, insecure registries, timeouts or limits.
///
/// ``platform`` (``"os/arch"``) picks from an index; ``progress`` is called with a
/// :class:`ProgressEvent` as bytes move; ``cancel`` is a :class:`CancelToken`. Raises a
/// :class:`WasmImageError` subclass (``NotFoundError``, ``UnauthorizedError``, …).
#[pyfunction]
#[pyo3(signature = (location, *, platform=None, progress=None, cancel=None, verify=None))]
pub fn pull(
    py: Python<'_>,
    location: &str,
    platform: Option<&str>,
    progress: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
    verify: Option<crate::signing::VerifyArg<'_>>,
) -> PyResult<WasmImage> {
    let call = Call {
        platform,
        progress,
        cancel: cancel.as_deref(),
        signing: Signing::verify(py, verify)?,
    };
    default_ops(py)?.pull(py, location, call)
}

/// Like :func:`pull`, but streams the verified module into the file ``path``, which
/// appears only once every byte is verified; returns an :class:`ImageInfo`.
#[pyfunction]
#[pyo3(signature = (location, path, *, platform=None, progress=None, cancel=None, verify=None))]
pub fn pull_to_file(
    py: Python<'_>,
    location: &str,
    path: PathBuf,
    platform: Option<&str>,
    progress: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
    verify: Option<crate::signing::VerifyArg<'_>>,
) -> PyResult<ImageInfo> {
    let call = Call {
        platform,
        progress,
        cancel: cancel.as_deref(),
        signing: Signing::verify(py, verify)?,
    };
    default_ops(py)?.pull_to_file(py, location, path, call)
}

/// Stores ``image`` (from :func:`build` or :func:`pull`) at ``location``: a registry, an
/// ``oci:`` layout directory or an ``oci-archive:`` file. Returns the manifest digest.
#[pyfunction]
#[pyo3(signature = (image, location, *, progress=None, cancel=None, sign_with=None))]
pub fn push(
    py: Python<'_>,
    image: PyRef<'_, WasmImage>,
    location: &str,
    progress: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
    sign_with: Option<PyRef<'_, crate::signing::SigningKey>>,
) -> PyResult<String> {
    let call = Call {
        platform: None,
        progress,
        cancel: cancel.as_deref(),
        signing: Signing::sign(sign_with),
    };
    default_ops(py)?.push(py, &image, location, call)
}

/// Copies an image or index from ``source`` to ``destination`` (any two locations),
/// digests unchanged. Returns the digest of what was copied.
#[pyfunction]
#[pyo3(signature = (source, destination, *, progress=None, cancel=None))]
pub fn copy(
    py: Python<'_>,
    source: &str,
    destination: &str,
    progress: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<String> {
    let call = Call {
        platform: None,
        progress,
        cancel: cancel.as_deref(),
        signing: Signing::default(),
    };
    default_ops(py)?.copy(py, source, destination, call)
}

/// Returns the manifest (or index) digest ``location`` names, without fetching the module.
#[pyfunction]
#[pyo3(signature = (location, *, cancel=None))]
pub fn resolve(
    py: Python<'_>,
    location: &str,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<String> {
    let call = Call {
        cancel: cancel.as_deref(),
        ..Call::default()
    };
    default_ops(py)?.resolve(py, location, call)
}

/// Builds an image from ``module`` (bytes, or a path to read) without storing it; store
/// it with :func:`push`.
///
/// ``variant`` is ``"oci"`` (the two-layer shape Istio and Envoy Gateway read) or
/// ``"compat"`` (``plugin.wasm`` in a tar+gzip layer). ``runtime_type`` (default
/// ``"envoy_proxy"``), ``abi_versions`` (default: the module's ``proxy_abi_version_*``
/// exports) and ``root_ids`` fill the runtime config; ``annotations`` go on the manifest;
/// ``manifest_format`` is ``"oci"`` or ``"docker"`` (Docker schema 2, compat variant
/// only). Builds are reproducible: the same inputs give the same digests. Timestamps
/// appear only when ``source_date_epoch`` (or the ``SOURCE_DATE_EPOCH`` environment
/// variable) gives them.
#[pyfunction]
#[pyo3(signature = (location, *, policy=None, expected_digest=None, stale_on_error=None,
                    platform=None, progress=None, cancel=None, verify=None))]
#[allow(clippy::too_many_arguments)]
pub fn fetch(
    py: Python<'_>,
    location: &str,
    policy: Option<&str>,
    expected_digest: Option<&str>,
    stale_on_error: Option<bool>,
    platform: Option<&str>,
    progress: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
    verify: Option<crate::signing::VerifyArg<'_>>,
) -> PyResult<crate::cache::FetchEntry> {
    let fetch = crate::cache::fetch_options(py, policy, expected_digest, stale_on_error)?;
    let call = Call {
        platform,
        progress,
        cancel: cancel.as_deref(),
        signing: Signing::verify(py, verify)?,
    };
    default_ops(py)?.fetch(py, location, fetch, call)
}

/// Builds an image from a module (bytes or a path): the oci variant or compat, with
/// optional runtime metadata and annotations; nothing is written until it is pushed.
#[pyfunction]
#[pyo3(signature = (module, *, variant="oci", runtime_type=None, abi_versions=None, root_ids=None,
                    annotations=None, manifest_format="oci", source_date_epoch=None))]
#[allow(clippy::too_many_arguments)]
pub fn build(
    py: Python<'_>,
    module: Bound<'_, PyAny>,
    variant: &str,
    runtime_type: Option<String>,
    abi_versions: Option<Vec<String>>,
    root_ids: Option<Vec<String>>,
    annotations: Option<BTreeMap<String, String>>,
    manifest_format: &str,
    source_date_epoch: Option<u64>,
) -> PyResult<WasmImage> {
    let options = BuildOptions {
        variant: Some(parse::<Variant>(py, variant)?),
        runtime_type,
        abi_versions: abi_versions.unwrap_or_default(),
        root_ids: root_ids.unwrap_or_default(),
        annotations: annotations.unwrap_or_default(),
        manifest_format: parse::<ManifestFormat>(py, manifest_format)?,
        source_date_epoch,
    };
    // A `bytes` argument is used in place and handed back as `.module`: no copy at all.
    let original = module.cast::<PyBytes>().ok().map(|b| b.clone().unbind());
    let input: BytesOrPath = module.extract()?;
    let image = bridge::compute(py, || {
        let data = input.load("module")?;
        wasm_image::build(data, &options)
    })?;
    Ok(WasmImage::new(py, image, original))
}

/// Facts about a module given as bytes or a path.
#[pyfunction]
pub fn module_facts(py: Python<'_>, module: BytesOrPath) -> PyResult<ModuleFacts> {
    bridge::compute(py, || {
        wasm_image::module_facts::inspect(&module.load("module")?)
    })
    .map(|inner| ModuleFacts { inner })
}
