//! Registry answers and transport failures mapped to the library's error kinds, with
//! messages that name the location and never a secret.

use reqwest::{StatusCode, Url};

use crate::auth::Lookup;
use crate::error::{Error, ErrorKind};

use super::endpoint::{host_port, Endpoint, Req};

/// The error for a registry answer that is not a success. `body` is what was read of the
/// error body (empty for HEAD); `lookup` and `with_credentials` say, for a 401, whether
/// credentials were missing or rejected.
pub(super) fn status_error(
    ep: &Endpoint,
    req: &Req,
    answer: (StatusCode, Option<u64>, &[u8]),
    tries: u32,
    lookup: &Lookup,
    with_credentials: bool,
) -> Error {
    let (status, retry, body) = answer;
    let (code, detail) = registry_error(body);
    let suffix = match (&code, &detail) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    };
    let here = format!("{}: {}", ep.describe(), req.what);
    let error = match status {
        StatusCode::UNAUTHORIZED => {
            if with_credentials {
                rejected(ep, &req.what, lookup, None)
            } else {
                no_credentials(ep, &req.what, lookup)
            }
        }
        StatusCode::FORBIDDEN => Error::new(
            ErrorKind::Forbidden,
            format!("{here}: access denied{suffix}"),
        ),
        StatusCode::NOT_FOUND => {
            Error::new(ErrorKind::NotFound, format!("{here}: not found{suffix}"))
        }
        StatusCode::TOO_MANY_REQUESTS => Error::new(
            ErrorKind::RateLimited,
            format!("{here}: rate limited by the registry after {tries} tries{suffix}"),
        )
        .with_retry_after(retry),
        _ => Error::new(
            ErrorKind::Registry,
            format!("{here}: the registry answered {status}{suffix}"),
        )
        .with_retry_after(retry),
    };
    error.with_registry(status.as_u16(), code)
}

pub(super) fn no_credentials(ep: &Endpoint, what: &str, lookup: &Lookup) -> Error {
    if let Some(found) = &lookup.found {
        // Found, but of a kind this challenge cannot use (an identity token for Basic).
        return Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{}: {what}: the registry requires Basic authentication, and the credential for {} (from {}) is a token that Basic authentication cannot use",
                ep.describe(),
                ep.host,
                found.source
            ),
        );
    }
    Error::new(
        ErrorKind::Unauthorized,
        format!(
            "{}: {what}: the registry requires authentication and no credentials were found for {} (looked in: {})",
            ep.describe(),
            ep.host,
            lookup.searched_list()
        ),
    )
}

pub(super) fn rejected(ep: &Endpoint, what: &str, lookup: &Lookup, by: Option<&str>) -> Error {
    let from = lookup
        .found
        .as_ref()
        .map(|f| format!(" (from {})", f.source))
        .unwrap_or_default();
    let by = by.map(|b| format!(" {b}")).unwrap_or_default();
    Error::new(
        ErrorKind::Unauthorized,
        format!(
            "{}: {what}: credentials for {}{from} were rejected{by}",
            ep.describe(),
            ep.host
        ),
    )
}

pub(super) fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let chain = error_chain(e).to_ascii_lowercase();
    chain.contains("certificate")
        || chain.contains("unknownissuer")
        || chain.contains("invalid peer")
}

/// `a: b: c` over an error and its sources, without URLs reqwest adds.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(e);
    while let Some(err) = current {
        let text = match err.downcast_ref::<reqwest::Error>() {
            Some(r) if r.url().is_some() => {
                let s = r.to_string();
                // reqwest formats "… for url (URL)"; drop the URL (it may carry a signature).
                match s.find(" for url (") {
                    Some(i) => s[..i].to_string(),
                    None => s,
                }
            }
            _ => err.to_string(),
        };
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

pub(super) fn transport_error(e: &reqwest::Error, url: &Url) -> Error {
    let chain = error_chain(e);
    let target = url.origin().ascii_serialization();
    if is_certificate_error(e) {
        return Error::new(
            ErrorKind::Network,
            format!(
                "the TLS certificate of {} was not trusted ({chain}); if the registry uses a private CA, pass that CA's PEM certificate in the client's CA certificates option",
                host_port(url).unwrap_or(target)
            ),
        );
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    let to = if e.is_connect() { " to" } else { "" };
    Error::new(kind, format!("{what}{to} {target}: {chain}"))
}

/// Longest distribution error code kept (real ones are a few words: `MANIFEST_UNKNOWN`).
const CODE_CHARS: usize = 64;
use crate::error::{quoted, QUOTED_CHARS};

/// The distribution error `code` and `message` from a JSON error body.
pub(super) fn registry_error(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => match b.errors.into_iter().next() {
            Some(i) => (
                i.code
                    .filter(|c| !c.is_empty())
                    .map(|c| quoted(&c, CODE_CHARS)),
                i.message
                    .filter(|m| !m.is_empty())
                    .map(|m| quoted(&m, QUOTED_CHARS)),
            ),
            None => (None, None),
        },
        Err(_) => (None, None),
    }
}

pub(super) trait ContextIfMissing {
    fn context_if_missing(self, location: &str) -> Self;
}

impl ContextIfMissing for Error {
    /// Adds the location unless the message already names it.
    fn context_if_missing(self, location: &str) -> Error {
        if self.message().contains(location) {
            self
        } else {
            self.context(location)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_error(body),
            (
                Some("MANIFEST_UNKNOWN".into()),
                Some("manifest unknown".into())
            )
        );
        assert_eq!(registry_error(b"<html>"), (None, None));
    }

    #[test]
    fn registry_text_is_bounded_and_escaped() {
        // JSON escapes: a newline, an ANSI colour sequence, a carriage return.
        let hostile_code = format!(r"EVIL\n\u001b[31mFAKE\r{}", "X".repeat(5000));
        let body = format!(
            r#"{{"errors":[{{"code":"{hostile_code}","message":"line1\nline2\u001b[0m{}"}}]}}"#,
            "m".repeat(60_000)
        );
        let (code, message) = registry_error(body.as_bytes());
        let (code, message) = (code.unwrap(), message.unwrap());
        assert!(code.chars().count() <= CODE_CHARS + 1, "{}", code.len());
        assert!(
            message.chars().count() <= QUOTED_CHARS + 1,
            "{}",
            message.len()
        );
        for text in [&code, &message] {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        assert!(code.starts_with(r"EVIL\n\u{1b}[31mFAKE\r"), "{code}");
        assert!(code.ends_with('…'));
        assert_eq!(quoted("short", 10), "short");
    }
}
