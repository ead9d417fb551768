//! `run_cli(argv)`: the native command line (crate wasm-image-cli) inside the extension,
//! so `python -m wasm_image` and `wasm_image.cli.main` run the same code as the binary.

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs the command line with `argv` (the program name first); returns the exit status.
/// The GIL is released while it runs; Ctrl-C stops the operation in progress, which
/// removes its partial files and exits with 130.
#[pyfunction]
pub fn run_cli(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    let status = py.detach(|| {
        wasm_image::panics::catch_panic(|| {
            let mut interrupted = || Python::attach(|py| py.check_signals().is_err());
            Ok(wasm_image_cli::run_with(argv, &mut interrupted))
        })
    });
    // The command line sent the library's log events to stderr; give them back to the
    // `wasm_image` logger for whatever the process does next.
    crate::logs::install();
    match status {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {}: {}", err.kind().name(), err.message());
            wasm_image_cli::exit_status(err.kind())
        }
    }
}
