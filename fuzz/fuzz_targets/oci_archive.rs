//! An `oci-archive:` file (a tar of an OCI layout) pulled whole: the archive reader, the
//! layout inside it, and everything a pull does after.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = wasm_image_fuzz::scratch().join("image.tar");
    std::fs::write(&file, data).expect("writing the archive");
    wasm_image_fuzz::pull(&format!("oci-archive:{}", file.display()));
});
