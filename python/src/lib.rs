//! Python bindings: the private module `wasm_image._native`. A translation layer only:
//! Python arguments become core options, core results and errors become Python objects;
//! every decision lives in the core crate. The public API is `python/wasm_image/__init__.py`.

use pyo3::prelude::*;

mod bridge;
mod cache;
mod cli;
mod client;
mod convert;
mod errors;
mod image;
mod logs;
mod module_buffer;
mod signing;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logs::install();
    let wait = wrap_pyfunction!(bridge::wait_for_async_tasks, m)?;
    m.py().import("atexit")?.call_method1("register", (wait,))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::Client>()?;
    m.add_class::<client::Limits>()?;
    m.add_class::<bridge::CancelToken>()?;
    m.add_class::<image::WasmImage>()?;
    m.add_class::<image::ImageInfo>()?;
    m.add_class::<image::RuntimeConfig>()?;
    m.add_class::<image::ModuleFacts>()?;
    m.add_class::<image::ProgressEvent>()?;
    m.add_function(wrap_pyfunction!(client::pull, m)?)?;
    m.add_function(wrap_pyfunction!(client::pull_to_file, m)?)?;
    m.add_function(wrap_pyfunction!(client::push, m)?)?;
    m.add_function(wrap_pyfunction!(client::copy, m)?)?;
    m.add_function(wrap_pyfunction!(client::resolve, m)?)?;
    m.add_function(wrap_pyfunction!(client::build, m)?)?;
    m.add_function(wrap_pyfunction!(client::module_facts, m)?)?;
    m.add_class::<signing::Trust>()?;
    m.add_class::<signing::SigningKey>()?;
    m.add_class::<cache::Cache>()?;
    m.add_class::<cache::CacheStats>()?;
    m.add_class::<cache::CachedEntry>()?;
    m.add_class::<cache::GcReport>()?;
    m.add_class::<cache::FetchEntry>()?;
    m.add_function(wrap_pyfunction!(client::fetch, m)?)?;
    m.add_function(wrap_pyfunction!(cli::run_cli, m)?)?;
    Ok(())
}
