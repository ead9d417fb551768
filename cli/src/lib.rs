//! The `wasm-image` command line. It parses arguments, calls the core crate and prints
//! what came back; every decision about images lives in core. The same code runs as the
//! native binary (`main.rs`) and inside the Python extension (`python -m wasm_image`).
//!
//! Exit status: 0 on success, 2 for a usage error, 130 after Ctrl-C, and for a failure
//! of the library `10 +` the error kind's code (the numbers of the C enum). On failure
//! one line `error: KIND: message` goes to stderr (and with `--json` an
//! `{"error": {...}}` object to stdout).

use std::ffi::OsString;

pub mod args;
mod client;
mod exit;
mod failure;
mod global_options;
mod json;
mod local_time;
mod logs;
mod output;
mod progress;
mod runner;
mod session;
mod signing;
mod summary;
mod verbs;

pub use exit::{exit_status, EXIT_INTERRUPTED, EXIT_USAGE};

/// Runs the command line with `args` as a process would get them (the program name
/// first) and returns the exit status. Ctrl-C is not watched: see [`run_with`].
pub fn run(args: Vec<OsString>) -> i32 {
    run_with(args, &mut || false)
}

/// [`run`], stopping the operation in progress (its partial files removed) when
/// `interrupted` returns true; it is asked every 100 ms on the calling thread.
pub fn run_with(args: Vec<OsString>, interrupted: &mut dyn FnMut() -> bool) -> i32 {
    let parsed = match args::parse(args) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    runner::run(parsed, interrupted)
}
