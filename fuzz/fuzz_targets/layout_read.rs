//! A whole read from an `oci:` layout written to a scratch directory: index.json, then
//! every blob it reaches (indexes, manifests, configs, layers), linked by digest (see
//! `wasm_image_fuzz::link`), then a pull: resolve, select, classify, extract, verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_image::Digest;

fuzz_target!(|data: &[u8]| {
    let docs = wasm_image_fuzz::link(data);
    let dir = wasm_image_fuzz::scratch().join("layout");
    let _ = std::fs::remove_dir_all(&dir);
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).expect("creating the layout");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("writing oci-layout");
    std::fs::write(dir.join("index.json"), &docs[0]).expect("writing index.json");
    for blob in &docs[1..] {
        std::fs::write(blobs.join(Digest::sha256_of(blob).hex()), blob).expect("writing a blob");
    }
    wasm_image_fuzz::pull(&format!("oci:{}", dir.display()));
});
