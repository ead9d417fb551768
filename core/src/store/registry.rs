//! Registries over the OCI distribution protocol, spoken directly with `reqwest`.
//!
//! Every request goes through [`RegistryClient::request`], which adds authentication
//! (Basic, or a bearer token from the registry's token server), retries what may succeed
//! when tried again (429 with `Retry-After`, 500/502/503/504, broken connections) and maps
//! failures to the library's error kinds. Reads try the configured mirrors before the
//! registry itself; writes go to the registry only.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, Stream, StreamExt};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::io::AsyncReadExt;
use tokio_util::io::StreamReader;
use tracing::{debug, warn};

use crate::auth::{self, Lookup, Secret};
use crate::digest::{size_mismatch, Descriptor, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::location::{Repository, Selector};
use crate::media_types::{self as mt, MANIFEST_ACCEPT};
use crate::options::{ClientOptions, Context};
use crate::store::{BlobStream, RawManifest, Store};

/// Largest request body we send (GHCR rejects more): blob uploads go in chunks of this size.
pub const UPLOAD_CHUNK: usize = 4 * 1024 * 1024;
/// Lifetime of a token whose answer has no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Bytes of an error body read for the registry's error code.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 10;
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
const OCTET_STREAM: &str = "application/octet-stream";

/// Shared HTTP state of a client: connection pool, TLS roots, token and credential caches.
/// One per wasm-image client; thread-safe.
pub struct RegistryClient {
    /// The HTTP client and the PID that built it: pooled connections belong to the
    /// runtime of the process that made them, so a forked child builds its own.
    http: Mutex<(u32, reqwest::Client)>,
    http_config: HttpConfig,
    /// The last challenge seen per registry host, so later requests authenticate up front.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Bearer tokens by `host|scope` (the scope names the repository).
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// Credential lookups by registry host (helpers run once per client).
    credentials: Mutex<HashMap<String, Arc<Lookup>>>,
    /// Whether a host resolves to a loopback/private/link-local address (SSRF guard).
    internal_hosts: Mutex<HashMap<String, bool>>,
}

/// What the HTTP client is built from (kept to rebuild it after a fork).
struct HttpConfig {
    user_agent: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    certificates: Vec<reqwest::Certificate>,
}

impl HttpConfig {
    fn build(&self) -> std::result::Result<reqwest::Client, reqwest::Error> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
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
            // reqwest drops Authorization (and cookies) itself when the host, port or
            // scheme changes.
            attempt.follow()
        });
        // Proxies come from HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY (reqwest's default).
        reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .redirect(redirects)
            .tls_certs_merge(self.certificates.clone())
            .build()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone)]
struct CachedToken {
    value: String,
    expires: Instant,
    with_credentials: bool,
}

/// The `Authorization` a request carries, and whether it came from the user's credentials.
#[derive(Clone, Default)]
struct AuthState {
    header: Option<HeaderValue>,
    with_credentials: bool,
}

/// One place a repository can be read from or written to: the registry or a mirror.
#[derive(Debug, Clone)]
struct Endpoint {
    /// `HOST[:PORT]` as configured (Docker Hub as `docker.io`): keys credentials and caches.
    host: String,
    /// `scheme://api-host/`.
    base: Url,
    /// The repository path at this endpoint.
    name: String,
    /// The registry this endpoint mirrors, for mirrors.
    mirror_of: Option<String>,
}

impl Endpoint {
    fn new(
        host: &str,
        api_host: &str,
        name: String,
        mirror_of: Option<String>,
        options: &ClientOptions,
    ) -> Result<Endpoint> {
        let insecure = options
            .insecure_registries
            .iter()
            .any(|r| r == host || r == api_host);
        let scheme = if insecure { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{api_host}/")).map_err(|e| {
            Error::invalid_argument(format!(
                "registry host {api_host:?} does not form a URL: {e}"
            ))
        })?;
        Ok(Endpoint {
            host: host.to_string(),
            base,
            name,
            mirror_of,
        })
    }

    fn url(&self, rest: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/v2/{}/{rest}", self.name));
        url
    }

    fn describe(&self) -> String {
        match &self.mirror_of {
            Some(of) => format!("{}/{} (mirror of {of})", self.host, self.name),
            None => format!("{}/{}", self.host, self.name),
        }
    }

    fn scope(&self, action: Action) -> String {
        match action {
            Action::Pull => format!("repository:{}:pull", self.name),
            Action::Push => format!("repository:{}:pull,push", self.name),
        }
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Pull,
    Push,
}

/// A request that can be sent again (bodies are held as `Bytes`).
struct Req {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    action: Action,
    /// What is asked for, for messages: `manifest :v1`, `blob sha256:…`.
    what: String,
}

impl Req {
    fn new(method: Method, url: Url, action: Action, what: impl Into<String>) -> Req {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            action,
            what: what.into(),
        }
    }
    fn header(mut self, name: header::HeaderName, value: &str) -> Req {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
    fn body(mut self, body: Bytes) -> Req {
        self.body = Some(body);
        self
    }
}

/// A URL fit for logs and messages: no query (upload state, signed redirects), no userinfo.
fn show_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

impl RegistryClient {
    pub fn new(options: &ClientOptions) -> Result<RegistryClient> {
        for (registry, mirrors) in &options.mirrors {
            for mirror in mirrors {
                let (host, _) = split_mirror(mirror);
                if host.is_empty() || Url::parse(&format!("https://{host}/")).is_err() {
                    return Err(Error::invalid_argument(format!(
                        "mirror {mirror:?} of {registry} is not HOST[:PORT][/PATH]"
                    )));
                }
            }
        }
        let mut certificates = Vec::new();
        for (i, pem) in options.ca_certificates_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::invalid_argument(format!("CA certificate #{} is not valid PEM: {e}", i + 1))
            })?;
            if certs.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "CA certificate #{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    i + 1
                )));
            }
            certificates.extend(certs);
        }
        let has_extra_roots = !certificates.is_empty();
        let http_config = HttpConfig {
            user_agent: options.user_agent.clone(),
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
            certificates,
        };
        let http = http_config.build().map_err(|e| {
            let message = format!("could not set up the HTTP client: {}", error_chain(&e));
            if has_extra_roots {
                Error::invalid_argument(format!(
                    "{message} (check the CA certificates given to the client)"
                ))
            } else {
                Error::internal(message)
            }
        })?;
        Ok(RegistryClient {
            http: Mutex::new((std::process::id(), http)),
            http_config,
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
            internal_hosts: Mutex::new(HashMap::new()),
        })
    }

    /// The HTTP client of this process (rebuilt in a forked child).
    fn http(&self) -> reqwest::Client {
        let mut slot = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        if slot.0 != pid {
            match self.http_config.build() {
                Ok(fresh) => *slot = (pid, fresh),
                Err(e) => {
                    warn!(error = %error_chain(&e), "could not rebuild the HTTP client after fork")
                }
            }
        }
        slot.1.clone()
    }

    /// Sends a request with authentication, retries and error mapping. Returns only
    /// successful (2xx) responses.
    async fn request(&self, options: &ClientOptions, ep: &Endpoint, req: &Req) -> Result<Response> {
        let scope = ep.scope(req.action);
        let mut auth = self.authorization(options, ep, &scope, &req.what).await?;
        let mut challenged = false;
        loop {
            let sent = if ep.same_origin(&req.url) {
                auth.header.as_ref()
            } else {
                None
            };
            let response = self.send(options, ep, req, sent).await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let Some(challenge) = parse_challenges(response.headers()) else {
                    return Err(self.status_error(options, ep, req, response, &auth).await);
                };
                debug!(host = %ep.host, ?challenge, "authentication challenge");
                self.challenges
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(ep.host.clone(), challenge);
                self.forget_token(ep, &scope);
                let next = self.authorization(options, ep, &scope, &req.what).await?;
                if next.header.is_none() {
                    return Err(self.status_error(options, ep, req, response, &auth).await);
                }
                auth = next;
                continue;
            }
            if status.is_success() {
                return Ok(response);
            }
            return Err(self.status_error(options, ep, req, response, &auth).await);
        }
    }

    /// One logical send: retries 429, 500/502/503/504 and failures before a response.
    async fn send(
        &self,
        options: &ClientOptions,
        ep: &Endpoint,
        req: &Req,
        auth: Option<&HeaderValue>,
    ) -> Result<Response> {
        let http = self.http();
        let make = || {
            let mut builder = http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(a) = auth {
                builder = builder.header(header::AUTHORIZATION, a.clone());
            }
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            builder
        };
        self.execute(options, &req.method, &req.url, make)
            .await
            .map_err(|e| e.context(format!("{}: {}", ep.describe(), req.what)))
    }

    /// A plain GET of a URL outside any registry (a bare module download), with the same
    /// TLS roots, timeouts, redirect rules and retries as registry requests; no
    /// credentials are sent. The response is returned whatever its status.
    pub async fn get_plain(&self, options: &ClientOptions, url: &Url) -> Result<Response> {
        let http = self.http();
        self.execute(options, &Method::GET, url, || http.get(url.clone()))
            .await
    }

    /// The retry loop shared by registry and token requests. Non-retryable statuses and
    /// the last retryable one are returned as responses for the caller to map.
    async fn execute(
        &self,
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

    /// The `Authorization` for a request, from what we know of the host's challenge.
    async fn authorization(
        &self,
        options: &ClientOptions,
        ep: &Endpoint,
        scope: &str,
        what: &str,
    ) -> Result<AuthState> {
        let challenge = self
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ep.host)
            .cloned();
        let Some(challenge) = challenge else {
            return Ok(AuthState::default());
        };
        let lookup = self.lookup(options, &ep.host).await?;
        let secret = lookup.found.as_ref().map(|f| &f.secret);
        match (&challenge, secret) {
            (_, Some(Secret::Bearer(token))) => Ok(AuthState {
                header: Some(sensitive(&format!("Bearer {token}"))?),
                with_credentials: true,
            }),
            (Challenge::Basic, Some(Secret::Basic { username, password })) => Ok(AuthState {
                header: Some(basic_header(username, password)?),
                with_credentials: true,
            }),
            (Challenge::Basic, _) => Ok(AuthState::default()),
            (Challenge::Bearer { realm, service }, secret) => {
                let token = match self.cached_token(ep, scope) {
                    Some(t) => t,
                    None => {
                        let t = self
                            .fetch_token(
                                options,
                                ep,
                                realm,
                                service.as_deref(),
                                scope,
                                secret,
                                &lookup,
                                what,
                            )
                            .await?;
                        self.tokens
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(format!("{}|{scope}", ep.host), t.clone());
                        t
                    }
                };
                Ok(AuthState {
                    header: Some(sensitive(&format!("Bearer {}", token.value))?),
                    with_credentials: token.with_credentials,
                })
            }
        }
    }

    /// A valid cached token for the scope; a pull,push token also serves pulls.
    fn cached_token(&self, ep: &Endpoint, scope: &str) -> Option<CachedToken> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        tokens.retain(|_, t| t.expires > now);
        let push_scope = scope
            .strip_suffix(":pull")
            .map(|s| format!("{s}:pull,push"));
        tokens
            .get(&format!("{}|{scope}", ep.host))
            .or_else(|| push_scope.and_then(|s| tokens.get(&format!("{}|{s}", ep.host))))
            .cloned()
    }

    fn forget_token(&self, ep: &Endpoint, scope: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("{}|{scope}", ep.host));
    }

    async fn lookup(&self, options: &ClientOptions, host: &str) -> Result<Arc<Lookup>> {
        if let Some(l) = self
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            return Ok(l.clone());
        }
        let (opts, h) = (options.clone(), host.to_string());
        let lookup = tokio::task::spawn_blocking(move || auth::lookup(&opts, &h))
            .await
            .map_err(|e| {
                Error::internal(format!("credential lookup for {host} panicked: {e}"))
            })??;
        let lookup = Arc::new(lookup);
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), lookup.clone());
        Ok(lookup)
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_token(
        &self,
        options: &ClientOptions,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        secret: Option<&Secret>,
        lookup: &Lookup,
        what: &str,
    ) -> Result<CachedToken> {
        let unauthorized =
            |m: String| Error::new(ErrorKind::Unauthorized, format!("{}: {m}", ep.describe()));
        let mut url = Url::parse(realm).map_err(|_| {
            unauthorized(format!(
                "the token server address {realm:?} in the registry's challenge is not a URL"
            ))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if ep.base.scheme() == "http" || options.insecure_registries.iter().any(|r| Some(r.as_str()) == host_port(&url).as_deref()) => {}
            "http" => {
                return Err(unauthorized(format!(
                    "refusing the plain-http token server {} of an https registry (credentials would travel unencrypted); list it in the insecure registries to allow it",
                    show_url(&url)
                )))
            }
            other => return Err(unauthorized(format!("the token server address uses scheme {other:?}; only http(s) is allowed"))),
        }
        self.check_realm(ep, &url).await?;
        let (with_credentials, basic, refresh) = match secret {
            Some(Secret::Basic { username, password }) => {
                (true, Some(basic_header(username, password)?), None)
            }
            Some(Secret::IdentityToken { token, .. }) => (true, None, Some(token.clone())),
            _ => (false, None, None),
        };
        let method = if refresh.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let form = refresh.map(|token| {
            let mut f = Url::parse("x:/").expect("static URL");
            f.query_pairs_mut()
                .append_pair("grant_type", "refresh_token")
                .append_pair("client_id", "wasm-image")
                .append_pair("service", service.unwrap_or_default())
                .append_pair("scope", scope)
                .append_pair("refresh_token", &token);
            f.query().unwrap_or_default().to_string()
        });
        if form.is_none() {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
        }
        let http = self.http();
        let make = || {
            let mut b = http.request(method.clone(), url.clone());
            if let Some(h) = &basic {
                b = b.header(header::AUTHORIZATION, h.clone());
            }
            if let Some(f) = &form {
                b = b
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(f.clone());
            }
            b
        };
        let token_server = show_url(&url);
        let response = self
            .execute(options, &method, &url, make)
            .await
            .map_err(|e| e.context(format!("{}: token server {token_server}", ep.describe())))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(if with_credentials {
                rejected(
                    ep,
                    what,
                    lookup,
                    Some(&format!(
                        "by its token server {token_server} ({})",
                        status.as_u16()
                    )),
                )
            } else {
                no_credentials(ep, what, lookup)
            }
            .with_registry(status.as_u16(), None));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::new(
                ErrorKind::RateLimited,
                format!(
                    "{}: token server {token_server} answered 429",
                    ep.describe()
                ),
            )
            .with_retry_after(retry_after(response.headers()))
            .with_registry(429, None));
        }
        if !status.is_success() {
            return Err(Error::new(
                ErrorKind::Registry,
                format!(
                    "{}: token server {token_server} answered {status}",
                    ep.describe()
                ),
            )
            .with_registry(status.as_u16(), None));
        }
        let body = read_limited(response, ERROR_BODY_LIMIT)
            .await
            .map_err(|e| e.context(format!("{}: token server {token_server}", ep.describe())))?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            Error::new(ErrorKind::Registry, format!("{}: token server {token_server} answered with something other than a token: {e}", ep.describe()))
        })?;
        let value = answer
            .token
            .filter(|t| !t.is_empty())
            .or(answer.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Registry,
                    format!(
                        "{}: token server {token_server} answered without a token",
                        ep.describe()
                    ),
                )
            })?;
        let lifetime = answer
            .expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        // Renew a little early so a token does not expire between check and use.
        let margin = (lifetime / 10).min(Duration::from_secs(10));
        Ok(CachedToken {
            value,
            expires: Instant::now() + lifetime - margin,
            with_credentials,
        })
    }

    /// Refuses token servers on loopback, link-local, private or metadata addresses unless
    /// the registry itself is on such an address.
    async fn check_realm(&self, ep: &Endpoint, realm: &Url) -> Result<()> {
        let Some(realm_host) = realm.host_str().map(str::to_string) else {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("{}: the token server address has no host", ep.describe()),
            ));
        };
        if !self
            .is_internal(&realm_host, realm.port_or_known_default().unwrap_or(443))
            .await
        {
            return Ok(());
        }
        let registry_host = ep.base.host_str().unwrap_or_default().to_string();
        if self
            .is_internal(
                &registry_host,
                ep.base.port_or_known_default().unwrap_or(443),
            )
            .await
        {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{}: refusing the token server {}: it is on a loopback, private, link-local or cloud metadata address while the registry is not (a registry must not send our credentials there)",
                ep.describe(),
                show_url(realm)
            ),
        ))
    }

    async fn is_internal(&self, host: &str, port: u16) -> bool {
        if let Some(v) = self
            .internal_hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            return *v;
        }
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let internal = if let Ok(ip) = bare.parse::<IpAddr>() {
            is_internal_ip(ip)
        } else if is_internal_name(&bare) {
            true
        } else {
            let name = bare.clone();
            tokio::task::spawn_blocking(move || {
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(|addrs| addrs.into_iter().any(|a| is_internal_ip(a.ip())))
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false)
        };
        self.internal_hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), internal);
        internal
    }

    async fn status_error(
        &self,
        options: &ClientOptions,
        ep: &Endpoint,
        req: &Req,
        response: Response,
        auth: &AuthState,
    ) -> Error {
        let status = response.status();
        let retry = retry_after(response.headers());
        let body = if req.method == Method::HEAD {
            Bytes::new()
        } else {
            read_limited(response, ERROR_BODY_LIMIT)
                .await
                .unwrap_or_default()
        };
        let (code, detail) = registry_error(&body);
        let suffix = match (&code, &detail) {
            (Some(c), Some(m)) => format!(" ({c}: {m})"),
            (Some(c), None) => format!(" ({c})"),
            (None, Some(m)) => format!(" ({m})"),
            (None, None) => String::new(),
        };
        let here = format!("{}: {}", ep.describe(), req.what);
        let error = match status {
            StatusCode::UNAUTHORIZED => {
                let lookup = self.lookup(options, &ep.host).await.unwrap_or_default();
                if auth.with_credentials {
                    rejected(ep, &req.what, &lookup, None)
                } else {
                    no_credentials(ep, &req.what, &lookup)
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
                format!(
                    "{here}: rate limited by the registry after {} tries{suffix}",
                    options.max_retries + 1
                ),
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
}

fn no_credentials(ep: &Endpoint, what: &str, lookup: &Lookup) -> Error {
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

fn rejected(ep: &Endpoint, what: &str, lookup: &Lookup, by: Option<&str>) -> Error {
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

fn sensitive(value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::invalid_argument("credentials contain characters not allowed in an HTTP header")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn basic_header(username: &str, password: &str) -> Result<HeaderValue> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(&format!("Basic {encoded}"))
}

fn host_port(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Splits `HOST[:PORT][/PATH]` into the host and a repository prefix.
fn split_mirror(mirror: &str) -> (&str, Option<&str>) {
    let m = mirror.trim_end_matches('/');
    match m.split_once('/') {
        Some((host, prefix)) => (host, Some(prefix)),
        None => (m, None),
    }
}

fn is_internal_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "metadata.google.internal"
        || h == "metadata"
}

/// Loopback, link-local (incl. 169.254.169.254), private and unspecified addresses.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_private() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00
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

fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let chain = error_chain(e).to_ascii_lowercase();
    chain.contains("certificate")
        || chain.contains("unknownissuer")
        || chain.contains("invalid peer")
}

/// `a: b: c` over an error and its sources, without URLs reqwest adds.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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

fn transport_error(e: &reqwest::Error, url: &Url) -> Error {
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

/// Seconds from a `Retry-After` header (the HTTP-date form is read as "soon").
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().or(Some(1))
}

/// Exponential backoff from the base delay, capped, with jitter (half fixed, half random).
fn backoff(options: &ClientOptions, attempt: u32) -> Duration {
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

/// The distribution error `code` and `message` from a JSON error body.
fn registry_error(body: &[u8]) -> (Option<String>, Option<String>) {
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
                i.code.filter(|c| !c.is_empty()),
                i.message
                    .filter(|m| !m.is_empty())
                    .map(|m| m.chars().take(200).collect()),
            ),
            None => (None, None),
        },
        Err(_) => (None, None),
    }
}

/// Parses `WWW-Authenticate` headers; prefers Bearer over Basic.
fn parse_challenges(headers: &HeaderMap) -> Option<Challenge> {
    let mut basic = false;
    for value in headers.get_all(header::WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        for (scheme, params) in split_challenges(text) {
            if scheme.eq_ignore_ascii_case("bearer") {
                let realm = params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("realm"))
                    .map(|(_, v)| v.clone());
                let service = params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("service"))
                    .map(|(_, v)| v.clone());
                if let Some(realm) = realm {
                    return Some(Challenge::Bearer { realm, service });
                }
            } else if scheme.eq_ignore_ascii_case("basic") {
                basic = true;
            }
        }
    }
    basic.then_some(Challenge::Basic)
}

/// Splits a header value into challenges: `Scheme k=v, k="v, with comma"[, Scheme2 …]`.
fn split_challenges(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let skip = |i: &mut usize, f: &dyn Fn(char) -> bool| {
        while *i < chars.len() && f(chars[*i]) {
            *i += 1;
        }
    };
    while i < chars.len() {
        skip(&mut i, &|c| c == ',' || c.is_whitespace());
        let start = i;
        skip(&mut i, &|c| c != '=' && c != ',' && !c.is_whitespace());
        let word: String = chars[start..i].iter().collect();
        if word.is_empty() {
            break;
        }
        skip(&mut i, &|c| c == ' ' || c == '\t');
        if i < chars.len() && chars[i] == '=' {
            // A parameter of the current challenge.
            i += 1;
            skip(&mut i, &|c| c == ' ' || c == '\t');
            let mut value = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                let s = i;
                skip(&mut i, &|c| c != ',' && !c.is_whitespace());
                value = chars[s..i].iter().collect();
            }
            if let Some(last) = out.last_mut() {
                last.1.push((word, value));
            }
        } else {
            out.push((word, Vec::new()));
        }
    }
    out
}

fn header_str<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The Content-Length header (HEAD responses have no body to measure).
fn content_length(response: &Response) -> Option<u64> {
    header_str(response, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok())
}

/// The media type of a manifest response, without parameters; `None` for generic types.
fn manifest_media_type(response: &Response) -> Option<String> {
    let ct = header_str(response, header::CONTENT_TYPE.as_str())?;
    let ct = ct.split(';').next().unwrap_or_default().trim();
    match ct {
        "" | "application/json" | "text/plain" | OCTET_STREAM => None,
        other => Some(other.to_string()),
    }
}

async fn read_limited(mut response: Response, max: usize) -> Result<Bytes> {
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
async fn read_bounded(mut response: Response, max: u64, what: &str) -> Result<Bytes> {
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

/// A repository in a registry (and its mirrors for reads).
pub struct RegistryStore {
    repository: Repository,
    ctx: Context,
    upstream: std::result::Result<Endpoint, String>,
    mirrors: Vec<Endpoint>,
}

impl RegistryStore {
    pub fn new(repository: Repository, ctx: Context) -> RegistryStore {
        let options = &ctx.options;
        let upstream = Endpoint::new(
            &repository.registry,
            repository.api_host(),
            repository.name.clone(),
            None,
            options,
        )
        .map_err(|e| e.message().to_string());
        let mut mirrors = Vec::new();
        for mirror in options
            .mirrors
            .get(&repository.registry)
            .into_iter()
            .flatten()
        {
            let (host, prefix) = split_mirror(mirror);
            let name = match prefix {
                Some(p) => format!("{p}/{}", repository.name),
                None => repository.name.clone(),
            };
            match Endpoint::new(host, host, name, Some(repository.registry.clone()), options) {
                Ok(ep) => mirrors.push(ep),
                Err(e) => {
                    warn!(mirror = %mirror, error = %e, "ignoring a mirror that does not form a URL")
                }
            }
        }
        RegistryStore {
            repository,
            ctx,
            upstream,
            mirrors,
        }
    }

    fn upstream(&self) -> Result<&Endpoint> {
        self.upstream
            .as_ref()
            .map_err(|m| Error::invalid_argument(m.clone()))
    }

    fn client(&self) -> &RegistryClient {
        &self.ctx.registry
    }

    fn options(&self) -> &ClientOptions {
        &self.ctx.options
    }

    /// Runs a read against each mirror in order, then the registry. A failing mirror
    /// (not found, 5xx, network, anything but cancellation) falls through to the next.
    async fn read<'a, T, F, Fut>(&'a self, what: &str, op: F) -> Result<T>
    where
        F: Fn(&'a Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        for mirror in &self.mirrors {
            match op(mirror).await {
                Ok(v) => return Ok(v),
                Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
                Err(e) => {
                    debug!(mirror = %mirror.describe(), what, error = %e, "mirror failed; trying the next source")
                }
            }
        }
        op(self.upstream()?).await
    }

    fn reference(selector: &Selector) -> Result<String> {
        match (&selector.digest, &selector.tag) {
            (Some(d), _) => Ok(d.to_string()),
            (None, Some(t)) => Ok(t.clone()),
            (None, None) => Err(Error::invalid_reference(
                "a registry image needs a tag or a digest",
            )),
        }
    }

    fn manifest_req(ep: &Endpoint, method: Method, reference: &str) -> Req {
        let sep = if reference.contains(':') { "@" } else { ":" };
        Req::new(
            method,
            ep.url(&format!("manifests/{reference}")),
            Action::Pull,
            format!("manifest {sep}{reference}"),
        )
        .header(header::ACCEPT, &MANIFEST_ACCEPT.join(", "))
    }

    async fn get_manifest(&self, ep: &Endpoint, reference: &str) -> Result<RawManifest> {
        let req = Self::manifest_req(ep, Method::GET, reference);
        let max = self.options().limits.max_metadata_bytes;
        let mut tries = 0;
        loop {
            let response = self.client().request(self.options(), ep, &req).await?;
            let media_type = manifest_media_type(&response);
            match read_bounded(response, max, &format!("{}: {}", ep.describe(), req.what)).await {
                Ok(bytes) => return Ok(RawManifest { bytes, media_type }),
                Err(e) if e.kind().is_transient() && tries < self.options().max_retries => {
                    tries += 1;
                    debug!(error = %e, "manifest body broke off; asking again");
                    tokio::time::sleep(backoff(self.options(), tries)).await;
                }
                Err(e) => return Err(e.context_if_missing(&ep.describe())),
            }
        }
    }

    async fn resolve_at(&self, ep: &Endpoint, selector: &Selector) -> Result<Descriptor> {
        let reference = Self::reference(selector)?;
        let req = Self::manifest_req(ep, Method::HEAD, &reference);
        let response = self.client().request(self.options(), ep, &req).await?;
        let header_digest = header_str(&response, DOCKER_CONTENT_DIGEST)
            .map(|d| {
                d.parse::<Digest>().map_err(|e| {
                    Error::new(
                        ErrorKind::Registry,
                        format!(
                            "{}: {}: the registry sent a malformed digest: {}",
                            ep.describe(),
                            req.what,
                            e.message()
                        ),
                    )
                })
            })
            .transpose()?;
        if let (Some(wanted), Some(got)) = (&selector.digest, &header_digest) {
            if wanted != got {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!(
                        "{}: asked for manifest {wanted}, the registry answered with {got}",
                        ep.describe()
                    ),
                ));
            }
        }
        let media_type =
            manifest_media_type(&response).filter(|m| mt::is_manifest(m) || mt::is_index(m));
        let size = content_length(&response);
        match (header_digest.or(selector.digest.clone()), media_type, size) {
            (Some(digest), Some(media_type), Some(size)) => {
                Ok(Descriptor::new(media_type, digest, size))
            }
            _ => {
                // Some registries (ECR) omit the digest: fetch the manifest and hash it.
                debug!(location = %ep.describe(), "HEAD lacked digest, media type or size; fetching the manifest");
                let raw = self.get_manifest(ep, &reference).await?;
                let digest = Digest::sha256_of(&raw.bytes);
                if let Some(wanted) = &selector.digest {
                    Descriptor::new("", wanted.clone(), raw.bytes.len() as u64)
                        .verify(&raw.bytes, &format!("{}: manifest", ep.describe()))?;
                }
                let parsed =
                    crate::manifest::parse(&raw.bytes, raw.media_type.as_deref(), &ep.describe())?;
                let media_type =
                    crate::manifest::effective_media_type(&parsed, raw.media_type.as_deref());
                Ok(Descriptor::new(
                    media_type,
                    selector.digest.clone().unwrap_or(digest),
                    raw.bytes.len() as u64,
                ))
            }
        }
    }

    async fn open_at(&self, ep: &Endpoint, descriptor: &Descriptor) -> Result<BlobStream> {
        let req = blob_req(ep, Method::GET, &descriptor.digest, Action::Pull);
        let response = self.client().request(self.options(), ep, &req).await?;
        if let Some(len) = content_length(&response) {
            if len != descriptor.size {
                return Err(size_mismatch(
                    &format!("{}: blob", ep.describe()),
                    &descriptor.digest,
                    descriptor.size,
                    len,
                ));
            }
        }
        let state = Resume {
            ctx: self.ctx.clone(),
            ep: ep.clone(),
            descriptor: descriptor.clone(),
            body: Some(Box::pin(response.bytes_stream())),
            offset: 0,
            skip: 0,
            resumes_left: self.options().max_retries,
        };
        Ok(Box::pin(StreamReader::new(resume_stream(state))))
    }

    async fn upload(
        &self,
        ep: &Endpoint,
        descriptor: &Descriptor,
        data: &mut BlobStream,
        session: &mut Option<Url>,
    ) -> Result<()> {
        let what = format!("blob upload {}", descriptor.digest);
        let mut start = Req::new(
            Method::POST,
            ep.url("blobs/uploads/"),
            Action::Push,
            what.clone(),
        );
        start
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let response = self.client().request(self.options(), ep, &start).await?;
        let mut location = upload_location(ep, &response, &what)?;
        *session = Some(location.clone());
        let read_err = |e: std::io::Error| {
            Error::from_io(e).context_if_missing(&format!(
                "{}: reading blob {}",
                ep.describe(),
                descriptor.digest
            ))
        };
        if descriptor.size <= UPLOAD_CHUNK as u64 {
            // Read to the end, so a verifying stream has checked the digest before we commit.
            let mut buf = Vec::with_capacity(descriptor.size as usize);
            data.as_mut()
                .take(descriptor.size + 1)
                .read_to_end(&mut buf)
                .await
                .map_err(read_err)?;
            if buf.len() as u64 != descriptor.size {
                return Err(size_mismatch(
                    &format!("{}: blob", ep.describe()),
                    &descriptor.digest,
                    descriptor.size,
                    buf.len() as u64,
                ));
            }
            let mut url = location.clone();
            url.query_pairs_mut()
                .append_pair("digest", &descriptor.digest.to_string());
            let put = Req::new(Method::PUT, url, Action::Push, what.clone())
                .header(header::CONTENT_TYPE, OCTET_STREAM)
                .body(Bytes::from(buf));
            let response = self.client().request(self.options(), ep, &put).await?;
            return check_created(ep, &response, &descriptor.digest, &what);
        }
        let mut sent: u64 = 0;
        loop {
            let chunk = read_chunk(data, UPLOAD_CHUNK).await.map_err(read_err)?;
            if chunk.is_empty() {
                break;
            }
            if sent + chunk.len() as u64 > descriptor.size {
                return Err(size_mismatch(
                    &format!("{}: blob", ep.describe()),
                    &descriptor.digest,
                    descriptor.size,
                    sent + chunk.len() as u64,
                ));
            }
            let end = sent + chunk.len() as u64 - 1;
            let patch = Req::new(Method::PATCH, location.clone(), Action::Push, what.clone())
                .header(header::CONTENT_TYPE, OCTET_STREAM)
                .header(header::CONTENT_RANGE, &format!("{sent}-{end}"))
                .body(chunk.clone());
            let response = self.client().request(self.options(), ep, &patch).await?;
            sent += chunk.len() as u64;
            location = upload_location(ep, &response, &what)?;
            *session = Some(location.clone());
        }
        if sent != descriptor.size {
            return Err(size_mismatch(
                &format!("{}: blob", ep.describe()),
                &descriptor.digest,
                descriptor.size,
                sent,
            ));
        }
        let mut url = location;
        url.query_pairs_mut()
            .append_pair("digest", &descriptor.digest.to_string());
        let mut put = Req::new(Method::PUT, url, Action::Push, what.clone());
        put.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let response = self.client().request(self.options(), ep, &put).await?;
        check_created(ep, &response, &descriptor.digest, &what)
    }
}

trait ContextIfMissing {
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

fn blob_req(ep: &Endpoint, method: Method, digest: &Digest, action: Action) -> Req {
    Req::new(
        method,
        ep.url(&format!("blobs/{digest}")),
        action,
        format!("blob {digest}"),
    )
}

fn upload_location(ep: &Endpoint, response: &Response, what: &str) -> Result<Url> {
    let location = header_str(response, header::LOCATION.as_str()).ok_or_else(|| {
        Error::new(
            ErrorKind::Registry,
            format!(
                "{}: {what}: the registry answered {} without a Location",
                ep.describe(),
                response.status()
            ),
        )
        .with_registry(response.status().as_u16(), None)
    })?;
    // Relative locations resolve against the registry; the query (upload state) is kept.
    response
        .url()
        .join(location)
        .or_else(|_| ep.base.join(location))
        .map_err(|e| {
            Error::new(
                ErrorKind::Registry,
                format!(
                    "{}: {what}: the upload Location {location:?} is not a URL: {e}",
                    ep.describe()
                ),
            )
        })
}

fn check_created(ep: &Endpoint, response: &Response, digest: &Digest, what: &str) -> Result<()> {
    if response.status() != StatusCode::CREATED {
        return Err(Error::new(
            ErrorKind::Registry,
            format!(
                "{}: {what}: expected 201 Created, the registry answered {}",
                ep.describe(),
                response.status()
            ),
        )
        .with_registry(response.status().as_u16(), None));
    }
    if let Some(got) = header_str(response, DOCKER_CONTENT_DIGEST) {
        if got != digest.to_string() {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!(
                    "{}: {what}: the registry stored {got} instead of {digest}",
                    ep.describe()
                ),
            ));
        }
    }
    Ok(())
}

/// Reads until `max` bytes or the end of the stream.
async fn read_chunk(data: &mut BlobStream, max: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(max);
    while buf.len() < max {
        let n = (&mut *data)
            .take((max - buf.len()) as u64)
            .read_buf(&mut buf)
            .await?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A blob download that picks up where it broke off (`Range: bytes=N-`).
struct Resume {
    ctx: Context,
    ep: Endpoint,
    descriptor: Descriptor,
    body: Option<BodyStream>,
    /// Bytes handed out so far.
    offset: u64,
    /// Bytes still to drop from a full (200) answer to a range request.
    skip: u64,
    resumes_left: u32,
}

impl Resume {
    async fn reopen(&mut self) -> Result<()> {
        let mut req = blob_req(&self.ep, Method::GET, &self.descriptor.digest, Action::Pull);
        req = req.header(header::RANGE, &format!("bytes={}-", self.offset));
        let response = self
            .ctx
            .registry
            .request(&self.ctx.options, &self.ep, &req)
            .await?;
        self.skip = match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let start = header_str(&response, header::CONTENT_RANGE.as_str())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match start {
                    Some(s) if s == self.offset => 0,
                    None => 0,
                    Some(s) => {
                        return Err(Error::new(
                            ErrorKind::Registry,
                            format!("{}: blob {}: asked to resume at byte {}, the registry answered from byte {s}", self.ep.describe(), self.descriptor.digest, self.offset),
                        ))
                    }
                }
            }
            _ => self.offset,
        };
        self.body = Some(Box::pin(response.bytes_stream()));
        Ok(())
    }
}

fn resume_stream(state: Resume) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    stream::unfold(state, |mut st| async move {
        loop {
            let body = st.body.as_mut()?;
            let failure = match body.next().await {
                Some(Ok(mut chunk)) => {
                    if st.skip > 0 {
                        let n = st.skip.min(chunk.len() as u64) as usize;
                        let _ = chunk.split_to(n);
                        st.skip -= n as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    st.offset += chunk.len() as u64;
                    return Some((Ok(chunk), st));
                }
                None if st.skip == 0 && st.offset >= st.descriptor.size => return None,
                None => format!(
                    "the connection closed after {} of {} bytes",
                    st.offset, st.descriptor.size
                ),
                Some(Err(e)) => error_chain(&e),
            };
            let give_up =
                |st: Resume, e: Error| Some((Err(e.into_io()), Resume { body: None, ..st }));
            if st.resumes_left == 0 {
                let kind = if failure.contains("timed out") {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Network
                };
                let e = Error::new(
                    kind,
                    format!(
                        "{}: blob {}: {failure}",
                        st.ep.describe(),
                        st.descriptor.digest
                    ),
                );
                return give_up(st, e);
            }
            let attempt = st.ctx.options.max_retries - st.resumes_left;
            st.resumes_left -= 1;
            warn!(location = %st.ep.describe(), digest = %st.descriptor.digest, offset = st.offset, %failure, "blob download broke off; resuming");
            tokio::time::sleep(backoff(&st.ctx.options, attempt)).await;
            if let Err(e) = st.reopen().await {
                return give_up(st, e);
            }
        }
    })
}

#[async_trait]
impl Store for RegistryStore {
    fn describe(&self) -> String {
        self.repository.to_string()
    }

    async fn resolve(&self, selector: &Selector) -> Result<Descriptor> {
        self.read("resolve", |ep| self.resolve_at(ep, selector))
            .await
    }

    async fn manifest(&self, selector: &Selector) -> Result<RawManifest> {
        let reference = Self::reference(selector)?;
        self.read("manifest", |ep| self.get_manifest(ep, &reference))
            .await
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        self.read("blob", |ep| self.open_at(ep, descriptor)).await
    }

    /// Asks the registry itself, never a mirror: callers ask before writing, and a
    /// mirror having a blob does not mean the registry has it.
    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        let ep = self.upstream()?;
        let req = blob_req(ep, Method::HEAD, &descriptor.digest, Action::Pull);
        match self.client().request(self.options(), ep, &req).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put_blob(&self, descriptor: &Descriptor, mut data: BlobStream) -> Result<()> {
        let ep = self.upstream()?;
        let mut session = None;
        let result = self.upload(ep, descriptor, &mut data, &mut session).await;
        if result.is_err() {
            if let Some(url) = session {
                // Best effort: free the upload session on the registry.
                let req = Req::new(
                    Method::DELETE,
                    url,
                    Action::Push,
                    format!("blob upload {}", descriptor.digest),
                );
                let mut opts = self.options().clone();
                opts.max_retries = 0;
                if let Err(e) = self.client().request(&opts, ep, &req).await {
                    debug!(error = %e, "could not cancel the upload session");
                }
            }
        }
        result
    }

    async fn put_manifest(
        &self,
        manifest: &RawManifest,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<()> {
        let ep = self.upstream()?;
        let media_type = match &manifest.media_type {
            Some(m) => m.clone(),
            None => {
                let parsed = crate::manifest::parse(&manifest.bytes, None, &ep.describe())?;
                crate::manifest::effective_media_type(&parsed, None)
            }
        };
        if HeaderValue::from_str(&media_type).is_err() {
            return Err(Error::invalid_argument(format!(
                "{}: manifest media type {media_type:?} cannot be sent as a Content-Type",
                ep.describe()
            )));
        }
        let reference = tag.map_or_else(|| digest.to_string(), str::to_string);
        let sep = if tag.is_some() { ":" } else { "@" };
        let req = Req::new(
            Method::PUT,
            ep.url(&format!("manifests/{reference}")),
            Action::Push,
            format!("manifest {sep}{reference}"),
        )
        .header(header::CONTENT_TYPE, &media_type)
        .body(manifest.bytes.clone());
        let response = self.client().request(self.options(), ep, &req).await?;
        if let Some(got) = header_str(&response, DOCKER_CONTENT_DIGEST) {
            if got != digest.to_string() {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!(
                        "{}: {}: the registry computed digest {got}, expected {digest}",
                        ep.describe(),
                        req.what
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenges(&headers(&[
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#
            ])),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenges(&headers(&[r#"Basic realm="Registry Realm""#])),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenges(&headers(&[
                r#"Basic realm="x, y", Bearer realm=https://t.example/token"#
            ])),
            Some(Challenge::Bearer {
                realm: "https://t.example/token".into(),
                service: None
            })
        );
        assert_eq!(parse_challenges(&headers(&["Negotiate"])), None);
        assert_eq!(parse_challenges(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn token_realms_are_guarded() {
        let o = ClientOptions::default();
        let client = RegistryClient::new(&o).unwrap();
        let public = Endpoint::new("8.8.8.8:5000", "8.8.8.8:5000", "a".into(), None, &o).unwrap();
        for realm in [
            "https://127.0.0.1:1/token",
            "https://169.254.169.254/latest",
            "https://[fd00::1]/t",
            "https://10.0.0.1/t",
            "https://metadata.google.internal/computeMetadata",
            "https://localhost/t",
        ] {
            let err = client
                .check_realm(&public, &Url::parse(realm).unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unauthorized, "{realm}");
            assert!(err.message().contains("refusing the token server"), "{err}");
        }
        client
            .check_realm(&public, &Url::parse("https://8.8.4.4/token").unwrap())
            .await
            .unwrap();
        // A registry on loopback may use a token server on loopback.
        let local =
            Endpoint::new("127.0.0.1:5000", "127.0.0.1:5000", "a".into(), None, &o).unwrap();
        client
            .check_realm(&local, &Url::parse("http://127.0.0.1:9999/token").unwrap())
            .await
            .unwrap();
        // Only http(s), and no plain http for an https registry.
        for realm in ["ftp://8.8.4.4/token", "http://8.8.4.4/token", "not a url"] {
            let err = client
                .fetch_token(
                    &o,
                    &public,
                    realm,
                    None,
                    "repository:a:pull",
                    None,
                    &Lookup::default(),
                    "manifest :v1",
                )
                .await
                .err()
                .expect("refused");
            assert_eq!(err.kind(), ErrorKind::Unauthorized, "{realm}: {err}");
        }
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "140.82.112.3"] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_internal_name("metadata.google.internal"));
        assert!(is_internal_name("LOCALHOST"));
    }

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
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(1));
    }

    #[test]
    fn bad_ca_pem_is_invalid_argument() {
        for pem in [
            &b"not a pem"[..],
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let o = ClientOptions {
                ca_certificates_pem: vec![pem.to_vec()],
                ..ClientOptions::default()
            };
            let err = RegistryClient::new(&o).err().expect("bad PEM must fail");
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
            assert!(err.message().contains("CA certificate"), "{err}");
        }
        let o = ClientOptions {
            mirrors: [("docker.io".to_string(), vec!["bad host/".to_string()])]
                .into_iter()
                .collect(),
            ..ClientOptions::default()
        };
        assert_eq!(
            RegistryClient::new(&o).err().unwrap().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn endpoints_and_urls() {
        let o = ClientOptions {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            ..ClientOptions::default()
        };
        let ep = Endpoint::new("127.0.0.1:5000", "127.0.0.1:5000", "a/b".into(), None, &o).unwrap();
        assert_eq!(
            ep.url("manifests/v1").as_str(),
            "http://127.0.0.1:5000/v2/a/b/manifests/v1"
        );
        let ep = Endpoint::new("127.0.0.1:5001", "127.0.0.1:5001", "a".into(), None, &o).unwrap();
        assert_eq!(
            ep.base.scheme(),
            "https",
            "only the exact HOST:PORT is insecure"
        );
        let ep = Endpoint::new(
            "docker.io",
            "registry-1.docker.io",
            "library/x".into(),
            None,
            &o,
        )
        .unwrap();
        assert_eq!(
            ep.url("blobs/uploads/").as_str(),
            "https://registry-1.docker.io/v2/library/x/blobs/uploads/"
        );
        assert_eq!(
            split_mirror("m.example:5000/prefix/"),
            ("m.example:5000", Some("prefix"))
        );
        let signed = Url::parse("https://u:p@s3.example/b?X-Amz-Signature=secret").unwrap();
        assert_eq!(show_url(&signed), "https://s3.example/b");
    }
}
