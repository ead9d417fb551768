//! Python bindings (private module wasm_image._native).
