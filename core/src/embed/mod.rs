//! What the bindings share and the core needs only at its edges: the fork-aware runtime
//! that blocking calls run on (and the one way core runs blocking work on it), log
//! forwarding to a binding's sink, memory a binding provides for a pulled module, and the panic boundary.

pub mod buffer;
pub mod logging;
pub mod panics;
pub mod runtime;
