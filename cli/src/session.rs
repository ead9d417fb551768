//! One run of the command line: the parsed arguments, where output goes, the client the
//! verb needs, and how a failure becomes a message and an exit status.

use std::future::Future;
use std::io;

use wasm_image::runtime::{block_on, Blocking};
use wasm_image::{CallOptions, Client, ErrorKind, Platform};

use crate::args::{Cli, GlobalOptions};
use crate::exit::{exit_status, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE};
use crate::output::Output;
use crate::{client, logs, verbs};

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

pub(crate) struct Session<'a> {
    pub global: &'a GlobalOptions,
    pub out: Output,
    interrupted: &'a mut dyn FnMut() -> bool,
    /// Set once `interrupted` said yes, so the cancellation it caused reads as Ctrl-C.
    was_interrupted: bool,
}

impl Session<'_> {
    /// A client with the global options, and the cache a cache verb names.
    pub fn client(&self, cache: Option<wasm_image::Cache>) -> Result<Client, Failure> {
        client::make(self.global, cache)
    }

    /// Runs one library operation to completion on core's runtime, with progress bars
    /// when they are wanted, stopping it when the user interrupts.
    pub fn call<T, F, Fut>(&mut self, client: &Client, op: F) -> Result<T, Failure>
    where
        F: FnOnce(Client, CallOptions) -> Fut,
        Fut: Future<Output = wasm_image::Result<T>>,
    {
        let platform: Option<Platform> = None; // the client's platform applies
        let client = client.clone();
        let interrupted = &mut *self.interrupted;
        let mut seen = false;
        let mut check = || {
            seen = seen || interrupted();
            seen
        };
        let result = block_on(
            Blocking {
                cancel: None,
                interrupted: Some(&mut check),
                progress: self.out.progress(),
            },
            |progress| op(client, wasm_image::client::call_options(progress, platform)),
        );
        self.was_interrupted |= seen;
        Ok(result?)
    }
}

/// Runs a parsed command line; returns the exit status.
pub(crate) fn run(cli: Cli, interrupted: &mut dyn FnMut() -> bool) -> i32 {
    let out = Output::new(cli.global.json, cli.global.quiet);
    // Library warnings (a mirror falling back, a stale cache entry) on stderr.
    logs::install(!out.as_json && !out.quiet);
    let mut session = Session {
        global: &cli.global,
        out,
        interrupted,
        was_interrupted: false,
    };
    let outcome = verbs::run(&cli.verb, &mut session);
    let out = &session.out;
    match outcome {
        Ok(()) => 0,
        Err(Failure::Library(err))
            if err.kind() == ErrorKind::Cancelled && session.was_interrupted =>
        {
            out.stderr_line("\ninterrupted");
            EXIT_INTERRUPTED
        }
        Err(Failure::Library(err)) => {
            out.error(&err);
            exit_status(err.kind())
        }
        Err(Failure::Usage(message)) => {
            out.stderr_line(&format!("error: usage: {message}"));
            EXIT_USAGE
        }
        Err(Failure::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => EXIT_BROKEN_PIPE,
        Err(Failure::Output(err)) => {
            let err = wasm_image::Error::io("writing the output", err);
            out.error(&err);
            exit_status(err.kind())
        }
    }
}
