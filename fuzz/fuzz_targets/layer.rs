//! A tar layer, plain, gzip or zstd (the first byte picks the media type, which file is
//! looked for and whether runtime-config.json is read), carried through extraction:
//! decompression, tar headers (GNU long names, PAX), path rules, limits, the module's
//! digest.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use wasm_image::extract::{self, Destination};
use wasm_image::formats::{ModuleSource, Plan, TarTarget};
use wasm_image::media_types as mt;
use wasm_image::store::verified::BlobOpener;
use wasm_image::{CancellationToken, Descriptor, Digest, Variant};
use wasm_image_fuzz::{check, limits, runtime, MemoryStore};

const MEDIA_TYPES: &[&str] = &[
    mt::OCI_LAYER_TAR,
    mt::OCI_LAYER_TAR_GZIP,
    mt::OCI_LAYER_TAR_ZSTD,
    mt::DOCKER_LAYER_TAR_GZIP,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, layer)) = data.split_first() else {
        return;
    };
    let media_type = MEDIA_TYPES[first as usize % MEDIA_TYPES.len()];
    let target = if first & 0x10 == 0 {
        TarTarget::BaseName(mt::COMPAT_MODULE_FILE)
    } else {
        TarTarget::Path("app/module.wasm".to_string())
    };
    let descriptor = Descriptor::for_bytes(media_type, layer);
    let plan = Plan {
        variant: Variant::Compat,
        source: ModuleSource::InTar {
            layers: vec![descriptor],
            target,
            runtime_config_file: first & 0x20 == 0,
        },
        runtime_config: None,
    };
    let opener = BlobOpener {
        store: Arc::new(MemoryStore::new([layer.to_vec()])),
        progress: None,
        handle: runtime().handle().clone(),
        cancel: CancellationToken::new(),
        preopened: Default::default(),
    };
    let extracted = extract::extract(&plan, &opener, &limits(), &Destination::Memory);
    check(&extracted);
    if let Ok(found) = extracted {
        let module = found.module.expect("extracted into memory");
        assert_eq!(Digest::sha256_of(&module), found.digest);
        assert_eq!(module.len() as u64, found.size);
    }
});
