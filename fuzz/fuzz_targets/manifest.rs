//! Manifest and index bytes as a registry or layout would serve them, with the media type
//! the store declared (chosen by the first byte): parsing, the media-type rule, choosing
//! from an index, and classifying a manifest into a format's plan.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_image::formats::{self, ConfigView};
use wasm_image::manifest::{self, Parsed};
use wasm_image::media_types as mt;
use wasm_image::{select, Platform};

const DECLARED: &[Option<&str>] = &[
    None,
    Some(mt::OCI_MANIFEST),
    Some(mt::OCI_INDEX),
    Some(mt::DOCKER_MANIFEST),
    Some(mt::DOCKER_MANIFEST_LIST),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let declared = DECLARED[first as usize % DECLARED.len()];
    let parsed = manifest::parse(bytes, declared, "fuzz");
    wasm_image_fuzz::check(&parsed);
    let media_type = manifest::media_type_of(bytes, declared, "fuzz");
    assert_eq!(parsed.is_ok(), media_type.is_ok());
    match parsed {
        Ok(Parsed::Index(index)) => {
            let chosen = select::choose(&index, None);
            wasm_image_fuzz::check(&chosen);
            let linux = Platform {
                architecture: "amd64".into(),
                os: "linux".into(),
                ..Platform::default()
            };
            wasm_image_fuzz::check(&select::choose(&index, Some(&linux)));
        }
        Ok(Parsed::Manifest(m)) => {
            let config = ConfigView::new(&m.config, b"{}");
            wasm_image_fuzz::check(&formats::classify(&m, &config, "fuzz"));
            // What was parsed can be written again and reads back the same.
            let written = serde_json::to_vec(&m).expect("a parsed manifest serialises");
            match manifest::parse(&written, declared, "fuzz") {
                Ok(Parsed::Manifest(again)) => assert_eq!(again.layers.len(), m.layers.len()),
                other => panic!("a re-serialised manifest reads back as {other:?}"),
            }
        }
        Err(_) => {}
    }
});
