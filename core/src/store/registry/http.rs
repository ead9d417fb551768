//! The HTTP client of this process and the retry loop every request goes through
//! (back-off with jitter, `Retry-After`), and bounded reads of response bodies.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, Response, StatusCode, Url};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::options::ClientOptions;

use super::endpoint::show_url;
use super::errors::{error_chain, is_certificate_error, transport_error};
use super::ssrf::{proxy_hosts, InternalAddressGuard};
use super::tls::LazyVerifier;

/// Bytes of an error body read for the registry's error code.
pub(super) const ERROR_BODY_LIMIT: usize = 64 * 1024;

const MAX_REDIRECTS: usize = 10;

/// The connection pool, TLS roots and timeouts of one wasm-image client.
pub(super) struct HttpClient {
    /// The HTTP client and the PID that built it: pooled connections belong to the
    /// runtime of the process that made them, so a forked child builds its own.
    clients: Mutex<Clients>,
    config: HttpConfig,
}

/// What the HTTP client is built from (kept to rebuild it after a fork).
struct HttpConfig {
    user_agent: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    /// Shared by every client built from this configuration, so the system's CA store is
    /// read at most once (see `tls.rs`).
    verifier: Arc<LazyVerifier>,
    guard: InternalAddressGuard,
}

impl HttpConfig {
    /// The client for registry requests, or with `guard`, the one for token requests of
    /// a registry not on an internal address (see `ssrf.rs`).
    fn build(&self, guard: Option<&InternalAddressGuard>) -> Result<reqwest::Client> {
        let hop_guard = guard.cloned();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            let downgrade = attempt
                .previous()
                .last()
                .is_some_and(|p| p.scheme() == "https")
                && attempt.url().scheme() != "https";
            if downgrade {
                return attempt.error("refusing a redirect from https to plain http");
            }
            if let Some(guard) = &hop_guard {
                if !guard.allows_hop(attempt.url()) {
                    return attempt.error(
                        "refusing a redirect of a token request to a loopback, private, link-local, shared or cloud metadata address",
                    );
                }
            }
            // reqwest drops Authorization (and cookies) itself when the host, port or
            // scheme changes.
            attempt.follow()
        });
        // Proxies come from HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY (reqwest's default).
        let mut builder = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .redirect(redirects)
            .tls_backend_preconfigured(
                self.verifier
                    .client_config()
                    .map_err(|e| Error::internal(format!("could not set up TLS: {e}")))?,
            );
        if let Some(guard) = guard {
            builder = builder.dns_resolver(Arc::new(guard.resolver(proxy_hosts())));
        }
        builder.build().map_err(|e| {
            Error::internal(format!(
                "could not set up the HTTP client: {}",
                error_chain(&e)
            ))
        })
    }

    fn build_registry(&self) -> Result<Clients> {
        Ok(Clients {
            pid: std::process::id(),
            registry: self.build(None)?,
            token: None,
        })
    }
}

/// The clients of one process.
struct Clients {
    pid: u32,
    registry: reqwest::Client,
    /// For token requests that must not reach an internal address. Built on first use:
    /// most registries a process talks to never ask for a token.
    token: Option<reqwest::Client>,
}

impl HttpClient {
    pub(super) fn new(options: &ClientOptions) -> Result<HttpClient> {
        Self::with_guard(options, InternalAddressGuard::default())
    }

    pub(super) fn with_guard(
        options: &ClientOptions,
        guard: InternalAddressGuard,
    ) -> Result<HttpClient> {
        let mut extra_roots = Vec::new();
        for (i, pem) in options.ca_certificates_pem.iter().enumerate() {
            let invalid = |why: String| {
                Error::invalid_argument(format!(
                    "CA certificate #{} is not valid PEM: {why}",
                    i + 1
                ))
            };
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| invalid(e.to_string()))?;
            if certs.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "CA certificate #{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    i + 1
                )));
            }
            extra_roots.extend(certs);
        }
        let verifier = LazyVerifier::new(extra_roots).map_err(|e| {
            Error::invalid_argument(format!(
                "could not set up the HTTP client: {e} (check the CA certificates given to the client)"
            ))
        })?;
        let config = HttpConfig {
            user_agent: options.user_agent.clone(),
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
            verifier: Arc::new(verifier),
            guard,
        };
        let clients = config.build_registry()?;
        Ok(HttpClient {
            clients: Mutex::new(clients),
            config,
        })
    }

    pub(super) fn guard(&self) -> &InternalAddressGuard {
        &self.config.guard
    }

    /// The HTTP client of this process (rebuilt in a forked child).
    pub(super) fn client(&self) -> reqwest::Client {
        self.current().registry.clone()
    }

    /// The client for token requests that must reach no internal address.
    pub(super) fn token_client(&self) -> Result<reqwest::Client> {
        let mut clients = self.current();
        if let Some(token) = &clients.token {
            return Ok(token.clone());
        }
        let token = self.config.build(Some(&self.config.guard))?;
        clients.token = Some(token.clone());
        Ok(token)
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Clients> {
        let mut slot = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if slot.pid != std::process::id() {
            match self.config.build_registry() {
                Ok(fresh) => *slot = fresh,
                Err(e) => warn!(error = %e, "could not rebuild the HTTP client after fork"),
            }
        }
        slot
    }
}

/// The retry loop shared by registry and token requests. Non-retryable statuses and
/// the last retryable one are returned as responses for the caller to map.
pub(super) async fn execute(
    options: &ClientOptions,
    method: &Method,
    url: &Url,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Response> {
    let mut attempt: u32 = 0;
    loop {
        let result = make().send().await;
        let more = attempt < options.max_retries;
        match result {
            Ok(response) => {
                let status = response.status();
                debug!(%method, url = %show_url(url), status = status.as_u16(), attempt, "registry request");
                if more && is_retryable_status(status) {
                    let delay = match retry_after(response.headers()) {
                        Some(secs) => Duration::from_secs(secs).min(options.retry_max_delay),
                        None => backoff(options, attempt),
                    };
                    debug!(
                        status = status.as_u16(),
                        ?delay,
                        "retrying after a transient status"
                    );
                    drop(response);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    continue;
                }
                return Ok(response);
            }
            Err(e) => {
                debug!(%method, url = %show_url(url), error = %error_chain(&e), attempt, "registry request failed");
                if more && is_retryable_error(&e) {
                    tokio::time::sleep(backoff(options, attempt)).await;
                    attempt += 1;
                    continue;
                }
                return Err(transport_error(&e, url));
            }
        }
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

fn is_retryable_error(e: &reqwest::Error) -> bool {
    if e.is_builder() || e.is_redirect() || is_certificate_error(e) {
        return false;
    }
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
}

/// Seconds from a `Retry-After` header: delay-seconds, or an HTTP-date (RFC 9110 §10.2.3)
/// counted from now (a date in the past means "now"). Unreadable values mean "soon".
pub(super) fn retry_after(headers: &HeaderMap) -> Option<u64> {
    retry_after_at(headers, std::time::SystemTime::now())
}

fn retry_after_at(headers: &HeaderMap, now: std::time::SystemTime) -> Option<u64> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    match httpdate::parse_http_date(v) {
        Ok(when) => Some(
            when.duration_since(now)
                .map_or(0, |d| d.as_secs_f64().ceil() as u64),
        ),
        Err(_) => Some(1),
    }
}

/// Exponential backoff from the base delay, capped, with jitter (half fixed, half random).
pub(super) fn backoff(options: &ClientOptions, attempt: u32) -> Duration {
    let exp = options
        .retry_base_delay
        .saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(options.retry_max_delay);
    let half = capped / 2;
    half + half.mul_f64(random_fraction())
}

fn random_fraction() -> f64 {
    let h = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    (h >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) fn header_str<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The Content-Length header (HEAD responses have no body to measure).
pub(super) fn content_length(response: &Response) -> Option<u64> {
    header_str(response, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok())
}

pub(super) async fn read_limited(mut response: Response, max: usize) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, response.url()))?
    {
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= max {
            break;
        }
    }
    Ok(buf.freeze())
}

/// Reads a body that must not exceed `max` bytes.
pub(super) async fn read_bounded(mut response: Response, max: u64, what: &str) -> Result<Bytes> {
    if let Some(len) = content_length(&response) {
        if len > max {
            return Err(Error::limit_exceeded(format!(
                "{what} is {len} bytes, more than the limit of {max}"
            )));
        }
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, response.url()))?
    {
        if (buf.len() + chunk.len()) as u64 > max {
            return Err(Error::limit_exceeded(format!(
                "{what} is more than the limit of {max} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    /// A bad CA option is refused when the client is made, though the system's CA store
    /// is read only at the first handshake.
    #[test]
    fn bad_ca_certificates_are_invalid_arguments_when_the_client_is_made() {
        let cases: [(&[u8], &str); 3] = [
            (b"not a certificate", "holds no PEM certificate"),
            (
                b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                "is not valid PEM",
            ),
            (
                // Well-formed PEM around bytes that are no certificate.
                b"-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n",
                "check the CA certificates",
            ),
        ];
        for (pem, message) in cases {
            let options = ClientOptions {
                ca_certificates_pem: vec![pem.to_vec()],
                ..ClientOptions::default()
            };
            let err = HttpClient::new(&options)
                .err()
                .expect("a bad CA is refused");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{err}");
            assert!(err.message().contains(message), "{err}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let o = ClientOptions {
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(300),
            ..ClientOptions::default()
        };
        let d0 = backoff(&o, 0);
        assert!(
            d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
            "{d0:?}"
        );
        let d5 = backoff(&o, 5);
        assert!(
            d5 >= Duration::from_millis(150) && d5 <= Duration::from_millis(300),
            "{d5:?}"
        );
        assert!(backoff(&o, 40) <= Duration::from_millis(300));
    }

    #[test]
    fn retry_after_values() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(7));
        // An HTTP-date counts from now; one in the past means "now".
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let date = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after_at(&h, date - Duration::from_secs(90)), Some(90));
        assert_eq!(retry_after_at(&h, date + Duration::from_secs(5)), Some(0));
        assert_eq!(retry_after(&h), Some(0));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon-ish"));
        assert_eq!(retry_after(&h), Some(1));
    }
}
