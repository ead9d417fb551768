//! `WWW-Authenticate` headers from a registry (one header value per line): challenge
//! splitting, quoting, and the choice of Bearer over Basic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_image::store::registry::fuzz_www_authenticate;

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let _ = fuzz_www_authenticate(&values);
});
