//! Why a verb stopped: the library's error, a usage mistake, or output that could not
//! be written.

use std::io;

/// Why a verb stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The library's answer, with its kind.
    Library(wasm_image::Error),
    /// A command-line mistake the library never saw (exit status 2).
    Usage(String),
    /// Writing the result failed (a closed pipe, a full disk).
    Output(io::Error),
}

impl From<wasm_image::Error> for Failure {
    fn from(err: wasm_image::Error) -> Failure {
        Failure::Library(err)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Output(err)
    }
}

pub(crate) type Outcome = Result<(), Failure>;
