//! One run of the command line: the verb the arguments name, and how its outcome becomes
//! a message and an exit status.

use std::io;

use wasm_image::ErrorKind;

use crate::args::{Cli, Verb};
use crate::exit::{exit_status, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE};
use crate::failure::{Failure, Outcome};
use crate::logs;
use crate::output::Output;
use crate::session::Session;
use crate::verbs::{build, cache, copy, fetch, inspect, pull, push, resolve};

fn dispatch(verb: &Verb, session: &mut Session<'_>) -> Outcome {
    match verb {
        Verb::Build(args) => build::run(args, session),
        Verb::Pull(args) => pull::run(args, session),
        Verb::Copy(args) => copy::run(args, session),
        Verb::Push(args) => push::run(args, session),
        Verb::Inspect(args) => inspect::run(args, session),
        Verb::Resolve(args) => resolve::run(args, session),
        Verb::Fetch(args) => fetch::run(args, session),
        Verb::Cache(args) => cache::run(args, session),
    }
}

/// Runs a parsed command line; returns the exit status.
pub(crate) fn run(cli: Cli, interrupted: &mut dyn FnMut() -> bool) -> i32 {
    let out = Output::new(cli.global.json, cli.global.quiet);
    // Library warnings (a mirror falling back, a stale cache entry) on stderr.
    logs::install(!out.as_json && !out.quiet);
    let mut session = Session::new(&cli.global, out, interrupted);
    let outcome = dispatch(&cli.verb, &mut session);
    let out = &session.out;
    match outcome {
        Ok(()) => 0,
        Err(Failure::Library(err))
            if err.kind() == ErrorKind::Cancelled && session.was_interrupted() =>
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
