//! Inputs the fuzz targets (fuzz/, FUZZING.md) found to crash, kept as tests.

use tokio::io::AsyncReadExt;
use wasm_image::digest::VerifyingReader;
use wasm_image::{Descriptor, ErrorKind};

/// oci_archive crash-55aaec68: a blob longer than its descriptor says. The verifying
/// reader filled the caller's buffer and then returned the size error, which breaks the
/// `AsyncRead` contract (tokio's `read_to_end` asserts on it in debug builds, and a
/// caller could use bytes that were never accepted). It must fail with nothing read.
#[tokio::test]
async fn verifying_reader_fails_without_handing_out_the_extra_bytes() {
    let declared = Descriptor::for_bytes("application/octet-stream", b"abc");
    let mut reader = VerifyingReader::new(
        std::io::Cursor::new(b"abcdef".to_vec()),
        &declared,
        "config",
    );
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).await.unwrap_err();
    let err = wasm_image::Error::from_io(err);
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
    assert!(out.is_empty(), "bytes handed out with the error: {out:?}");
}
