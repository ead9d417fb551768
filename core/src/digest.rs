//! Content digests, descriptors, and readers that verify size and digest as bytes pass.

use std::fmt;
use std::io::{self, Read};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{quoted, Error, ErrorKind, Result, QUOTED_CHARS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A content digest such as `sha256:9f86…`, always validated and lower-case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, which names the blob file in an OCI layout.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    pub fn algorithm_name(&self) -> &'static str {
        self.algorithm.name()
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Digest> {
        let (algorithm, hex) = s.split_once(':').ok_or_else(|| {
            Error::invalid_reference(format!(
                "digest \"{}\" has no algorithm prefix (expected sha256:<64 hex>)",
                quoted(s, QUOTED_CHARS)
            ))
        })?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(Error::invalid_reference(format!(
                    "digest \"{}\" uses an unsupported algorithm (expected sha256 or sha512)",
                    quoted(s, QUOTED_CHARS)
                )))
            }
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::invalid_reference(format!(
                "digest \"{}\" must have {} lower-case hex characters after \"{}:\"",
                quoted(s, QUOTED_CHARS),
                algorithm.hex_len(),
                algorithm.name()
            )));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for either algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

/// An OCI content descriptor. Unknown fields are not kept: descriptors we write are ours,
/// and descriptors we read are only used for their digest, size and hints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            artifact_type: None,
            platform: None,
            annotations: None,
        }
    }

    pub fn for_bytes(media_type: impl Into<String>, data: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256_of(data), data.len() as u64)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Checks bytes already in memory against this descriptor.
    pub fn verify(&self, data: &[u8], what: &str) -> Result<()> {
        if data.len() as u64 != self.size {
            return Err(size_mismatch(
                what,
                &self.digest,
                self.size,
                data.len() as u64,
            ));
        }
        let mut hasher = Hasher::new(self.digest.algorithm());
        hasher.update(data);
        let actual = hasher.finish();
        if actual != self.digest {
            return Err(digest_mismatch(what, &self.digest, &actual));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Platform> {
        let mut parts = s.split('/');
        let (os, arch) = match (parts.next(), parts.next()) {
            (Some(os), Some(arch)) if !os.is_empty() && !arch.is_empty() => (os, arch),
            _ => {
                return Err(Error::invalid_argument(format!(
                    "platform {s:?} must be OS/ARCH[/VARIANT], e.g. wasip1/wasm or linux/amd64"
                )))
            }
        };
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return Err(Error::invalid_argument(format!(
                "platform {s:?} has too many parts"
            )));
        }
        Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant,
            os_version: None,
        })
    }
}

pub(crate) fn size_mismatch(what: &str, digest: &Digest, expected: u64, actual: u64) -> Error {
    let relation = if actual > expected { "more" } else { "fewer" };
    Error::new(
        ErrorKind::DigestMismatch,
        format!("{what} {digest}: got {relation} bytes than its descriptor says ({actual} instead of {expected})"),
    )
}

pub(crate) fn digest_mismatch(what: &str, expected: &Digest, actual: &Digest) -> Error {
    Error::new(
        ErrorKind::DigestMismatch,
        format!("{what}: content has digest {actual}, expected {expected}"),
    )
}

/// Tracks bytes against a descriptor; shared by the sync and async verifying readers and
/// the read-ahead's hashing thread.
pub(crate) struct Verifier {
    what: String,
    expected: Descriptor,
    hasher: Hasher,
    seen: u64,
    done: bool,
}

impl Verifier {
    pub(crate) fn new(what: String, expected: Descriptor) -> Verifier {
        Verifier {
            hasher: Hasher::new(expected.digest.algorithm()),
            what,
            expected,
            seen: 0,
            done: false,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) -> io::Result<()> {
        self.seen += data.len() as u64;
        if self.seen > self.expected.size {
            return Err(size_mismatch(
                &self.what,
                &self.expected.digest,
                self.expected.size,
                self.seen,
            )
            .into_io());
        }
        self.hasher.update(data);
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if self.seen != self.expected.size {
            return Err(size_mismatch(
                &self.what,
                &self.expected.digest,
                self.expected.size,
                self.seen,
            )
            .into_io());
        }
        let actual = std::mem::replace(&mut self.hasher, Hasher::new(Algorithm::Sha256)).finish();
        if actual != self.expected.digest {
            return Err(digest_mismatch(&self.what, &self.expected.digest, &actual).into_io());
        }
        Ok(())
    }
}

/// Wraps a reader so that it fails, instead of reporting end of stream, when the bytes do
/// not match the descriptor. Fails early as soon as there are more bytes than declared.
pub struct VerifyingReader<R> {
    inner: R,
    verifier: Verifier,
}

impl<R> VerifyingReader<R> {
    pub fn new(inner: R, expected: &Descriptor, what: impl Into<String>) -> Self {
        VerifyingReader {
            inner,
            verifier: Verifier::new(what.into(), expected.clone()),
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.verifier.finish()?;
        } else {
            self.verifier.feed(&buf[..n])?;
        }
        Ok(n)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for VerifyingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                let verdict = if fresh.is_empty() && buf.remaining() > 0 {
                    this.verifier.finish()
                } else {
                    this.verifier.feed(fresh)
                };
                if verdict.is_err() {
                    // AsyncRead's contract: an error hands out no bytes (tokio asserts it).
                    buf.set_filled(before);
                }
                Poll::Ready(verdict)
            }
            other => other,
        }
    }
}

/// Hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(Algorithm::Sha256),
            written: 0,
        }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.written)
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_digest_string_is_quoted_bounded_and_escaped() {
        for s in [
            format!("sha256:\n\u{1b}[31m{}", "a".repeat(5000)),
            format!("md5\r\n{}:00", "x".repeat(5000)),
            "x".repeat(60_000),
        ] {
            let err = s.parse::<Digest>().unwrap_err();
            assert!(err.message().len() < 600, "{}", err.message().len());
            assert!(!err.message().chars().any(char::is_control), "{err}");
        }
    }

    #[test]
    fn parses_and_rejects_digests() {
        let d: Digest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
            .parse()
            .unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        for bad in [
            "sha256:abc",
            "md5:00",
            "nocolon",
            "sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
        ] {
            let err = bad.parse::<Digest>().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidReference, "{bad}");
        }
    }

    #[test]
    fn verifying_reader_catches_size_and_content() {
        let good = Descriptor::for_bytes("x", b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], &good, "blob")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");

        for data in [&b"hell"[..], &b"hello!"[..], &b"jello"[..]] {
            let err = VerifyingReader::new(data, &good, "blob")
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            assert_eq!(Error::from_io(err).kind(), ErrorKind::DigestMismatch);
        }
    }
}
