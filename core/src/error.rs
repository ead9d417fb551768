//! One error type for the whole library, with a stable kind that every binding maps.

use std::fmt;

/// The kinds of failure a caller can tell apart. Names and numeric codes are part of the
/// public contract (C enum values, Python exception classes, Go sentinel errors): codes are
/// never reused; a retired kind keeps its number as a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorKind {
    InvalidArgument = 1,
    InvalidReference = 2,
    NotFound = 3,
    Unauthorized = 4,
    Forbidden = 5,
    RateLimited = 6,
    InvalidFormat = 7,
    DigestMismatch = 8,
    LimitExceeded = 9,
    Network = 10,
    Timeout = 11,
    Cancelled = 12,
    Io = 13,
    Registry = 14,
    Internal = 15,
    SignatureInvalid = 16,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::InvalidArgument,
        ErrorKind::InvalidReference,
        ErrorKind::NotFound,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::RateLimited,
        ErrorKind::InvalidFormat,
        ErrorKind::DigestMismatch,
        ErrorKind::LimitExceeded,
        ErrorKind::Network,
        ErrorKind::Timeout,
        ErrorKind::Cancelled,
        ErrorKind::Io,
        ErrorKind::Registry,
        ErrorKind::Internal,
        ErrorKind::SignatureInvalid,
    ];

    /// The contract name, e.g. `NOT_FOUND`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::InvalidReference => "INVALID_REFERENCE",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::Unauthorized => "UNAUTHORIZED",
            ErrorKind::Forbidden => "FORBIDDEN",
            ErrorKind::RateLimited => "RATE_LIMITED",
            ErrorKind::InvalidFormat => "INVALID_FORMAT",
            ErrorKind::DigestMismatch => "DIGEST_MISMATCH",
            ErrorKind::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorKind::Network => "NETWORK",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::Cancelled => "CANCELLED",
            ErrorKind::Io => "IO",
            ErrorKind::Registry => "REGISTRY",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::SignatureInvalid => "SIGNATURE_INVALID",
        }
    }

    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn from_code(code: u32) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Whether a transfer that failed this way may succeed when tried again.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Network | ErrorKind::Timeout
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Details a registry gave with a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryDetail {
    pub status: u16,
    /// The distribution error code (`MANIFEST_UNKNOWN`, `DENIED`, …) when the body had one.
    pub code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    registry: Option<RegistryDetail>,
    /// Seconds the server asked us to wait (429 / 503 `Retry-After`).
    retry_after: Option<u64>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            registry: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn with_registry(mut self, status: u16, code: Option<String>) -> Self {
        self.registry = Some(RegistryDetail { status, code });
        self
    }

    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn registry(&self) -> Option<&RegistryDetail> {
        self.registry.as_ref()
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// Prefixes the message with where it happened, keeping kind and details.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn invalid_reference(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidReference, message)
    }
    pub fn invalid_format(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidFormat, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::LimitExceeded, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }
    pub fn cancelled() -> Self {
        Error::new(ErrorKind::Cancelled, "the operation was cancelled")
    }
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Error::from_io(err).context(what)
    }

    /// Maps an I/O error, recovering our own `Error` when one travelled inside it, directly
    /// or wrapped by a reader above (verifying readers report digest and size failures
    /// through `io::Error`).
    pub fn from_io(err: std::io::Error) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let inner = err.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        if let Some(ours) = Error::find_in_io(&err) {
            return ours;
        }
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::BrokenPipe => ErrorKind::Network,
            _ => ErrorKind::Io,
        };
        let message = err.to_string();
        Error::new(kind, message).with_source(err)
    }

    /// Finds one of our errors anywhere in an I/O error's chain (tar and decompressors wrap
    /// the errors of the readers below them), keeping its kind and message.
    pub fn find_in_io(err: &std::io::Error) -> Option<Error> {
        let mut node: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(current) = node {
            if let Some(ours) = current.downcast_ref::<Error>() {
                return Some(Error {
                    kind: ours.kind,
                    message: ours.message.clone(),
                    registry: ours.registry.clone(),
                    retry_after: ours.retry_after,
                    source: None,
                });
            }
            node = match current.downcast_ref::<std::io::Error>() {
                Some(io) => io
                    .get_ref()
                    .map(|inner| inner as &(dyn std::error::Error + 'static)),
                None => current.source(),
            };
        }
        None
    }

    /// Wraps this error so it can travel through `std::io::Read`/`AsyncRead`.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::from_io(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest piece of untrusted text (a registry's message, a URL, a header, a digest
/// string from a manifest) quoted in an error.
pub(crate) const QUOTED_CHARS: usize = 200;

/// Untrusted text (what a registry or an image holds), fit to quote in an error message or a log: at most `max`
/// characters (then `…`), with control characters (newlines, ANSI escapes) escaped so a
/// hostile registry or image can neither flood nor forge what the user's terminal shows.
pub(crate) fn quoted(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 2));
    let mut shown = 0;
    for c in text.chars() {
        let escaped = c.is_control().then(|| c.escape_default().to_string());
        let width = escaped.as_ref().map_or(1, |e| e.chars().count());
        if shown + width > max {
            out.push('…');
            break;
        }
        shown += width;
        match escaped {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(99), None);
    }

    #[test]
    fn error_survives_a_trip_through_io_error() {
        let original = Error::new(ErrorKind::DigestMismatch, "blob sha256:ab differs");
        let back = Error::from_io(original.into_io());
        assert_eq!(back.kind(), ErrorKind::DigestMismatch);
        assert!(back.message().contains("sha256:ab"));
    }
}
