//! What a verb works with: the global options, where output goes, the client it needs,
//! and running a library call with progress bars and Ctrl-C.

use std::future::Future;

use wasm_image::runtime::{block_on, Blocking};
use wasm_image::{CallOptions, Client, Platform};

use crate::client;
use crate::failure::Failure;
use crate::global_options::GlobalOptions;
use crate::output::Output;

pub(crate) struct Session<'a> {
    pub global: &'a GlobalOptions,
    pub out: Output,
    interrupted: &'a mut dyn FnMut() -> bool,
    /// Set once `interrupted` said yes, so the cancellation it caused reads as Ctrl-C.
    was_interrupted: bool,
}

impl<'a> Session<'a> {
    pub fn new(
        global: &'a GlobalOptions,
        out: Output,
        interrupted: &'a mut dyn FnMut() -> bool,
    ) -> Session<'a> {
        Session {
            global,
            out,
            interrupted,
            was_interrupted: false,
        }
    }

    /// Whether the user interrupted a call of this session.
    pub fn was_interrupted(&self) -> bool {
        self.was_interrupted
    }

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
