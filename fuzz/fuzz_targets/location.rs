//! Location strings: every transport, Docker Hub normalisation, tags and digests. A parsed
//! location must print as a string that parses back to the same location.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_image::Location;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(location) = Location::parse(text) else {
        return;
    };
    let _ = location.selector();
    let _ = location.is_registry();
    let printed = location.to_string();
    let again = Location::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, location, "{text:?} printed as {printed:?}");
});
