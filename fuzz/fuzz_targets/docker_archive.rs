//! A `docker-archive:` file (what `docker save` writes) pulled whole: manifest.json,
//! RepoTags, the synthesized manifest, and layers served from their tar offsets. The first
//! byte picks whether a reference is asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;

const REFERENCES: &[&str] = &[
    "",
    ":wasm/compat:v1",
    ":docker.io/library/plugin:latest",
    ":@0",
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, archive)) = data.split_first() else {
        return;
    };
    let file = wasm_image_fuzz::scratch().join("image.tar");
    std::fs::write(&file, archive).expect("writing the archive");
    let reference = REFERENCES[first as usize % REFERENCES.len()];
    wasm_image_fuzz::pull(&format!("docker-archive:{}{reference}", file.display()));
});
