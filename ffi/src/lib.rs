//! C ABI over the wasm-image core.
