//! Location strings: every transport, Docker Hub normalisation, tags and digests. A parsed
//! location must print as a string that parses back to the same location, except that a
//! module URL's query (a signature, a token) is never printed: it prints as `?…`.
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
    if let Location::Url { url } = &location {
        if let Some((base, _)) = url.split_once('?') {
            assert_eq!(printed, format!("{base}?…"), "{text:?}: the query must not be printed");
            return;
        }
    }
    let again = Location::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, location, "{text:?} printed as {printed:?}");
});
