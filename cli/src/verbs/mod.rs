//! One file per verb: its arguments (a clap `Args` struct) and what it does with them.

pub mod build;
pub mod cache;
pub mod copy;
pub mod fetch;
pub mod inspect;
pub mod pull;
pub mod push;
pub mod resolve;

use crate::args::Verb;
use crate::session::{Outcome, Session};

pub(crate) fn run(verb: &Verb, session: &mut Session<'_>) -> Outcome {
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
