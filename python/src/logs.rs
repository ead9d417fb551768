//! Core log events → the Python logger `wasm_image`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use wasm_image::logging::{set_sink, LogLevel, LogRecord};

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The `wasm_image` logger's effective level as of the latest call (WARNING until then),
/// so records nobody wants are dropped without waiting for the GIL on a worker thread.
static THRESHOLD: AtomicU32 = AtomicU32::new(30);

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    let logger = LOGGER.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("logging")?
            .call_method1("getLogger", ("wasm_image",))?
            .unbind())
    })?;
    Ok(logger.bind(py))
}

/// Reads the logger's effective level; called at the start of every operation.
pub fn refresh(py: Python<'_>) {
    let level = logger(py)
        .and_then(|l| l.call_method0("getEffectiveLevel"))
        .and_then(|v| v.extract::<u32>());
    if let Ok(level) = level {
        THRESHOLD.store(level, Ordering::Relaxed);
    }
}

/// `logging` level numbers for core's levels (TRACE has none; it maps to 5).
fn python_level(level: LogLevel) -> u32 {
    match level {
        LogLevel::Error => 40,
        LogLevel::Warn => 30,
        LogLevel::Info => 20,
        LogLevel::Debug => 10,
        LogLevel::Trace => 5,
    }
}

fn emit(py: Python<'_>, record: &LogRecord) -> PyResult<()> {
    let logger = LOGGER.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("logging")?
            .call_method1("getLogger", ("wasm_image",))?
            .unbind())
    })?;
    let logger = logger.bind(py);
    let level = python_level(record.level);
    if logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        let extra = pyo3::types::PyDict::new(py);
        extra.set_item("wasm_image_target", &record.target)?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("extra", extra)?;
        logger.call_method("log", (level, "%s", &record.message), Some(&kwargs))?;
    }
    Ok(())
}

/// Installs the sink once, at import. Events may come from runtime worker threads; they
/// attach to the interpreter (blocking calls have released the GIL, so this cannot wait on
/// the thread that waits on us) and are dropped while the interpreter shuts down.
pub fn install() {
    set_sink(
        Arc::new(|record: &LogRecord| {
            if python_level(record.level) < THRESHOLD.load(Ordering::Relaxed) {
                return;
            }
            let _ = Python::try_attach(|py| {
                if let Err(err) = emit(py, record) {
                    // A broken handler must not break a pull; show it like logging does.
                    err.print(py);
                }
            });
        }),
        LogLevel::Debug,
    );
}
