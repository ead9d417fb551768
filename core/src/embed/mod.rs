//! What the bindings share and the core needs only at its edges: the fork-aware runtime
//! that blocking calls run on, log forwarding to a binding's sink, memory a binding
//! provides for a pulled module, and reading the caller's input files.

pub mod buffer;
pub mod files;
pub mod logging;
pub mod runtime;
