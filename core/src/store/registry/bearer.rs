//! Authentication: `WWW-Authenticate` challenges, credentials looked up per registry,
//! and bearer tokens fetched from the registry's token server and cached per scope.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use crate::auth::{self, Lookup, Secret};
use crate::embed::runtime::run_blocking;
use crate::error::{Error, ErrorKind, Result};
use crate::options::ClientOptions;

use super::endpoint::{host_port, show_url, Endpoint};
use super::errors::{no_credentials, rejected};
use super::http::{execute, read_limited, retry_after, HttpClient, ERROR_BODY_LIMIT};
use crate::error::{quoted, QUOTED_CHARS};

/// Lifetime of a token whose answer has no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Longest a token is kept, whatever `expires_in` says: a token server chooses that
/// number, and a huge one would overflow the clock arithmetic.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone)]
pub(super) struct CachedToken {
    pub(super) value: String,
    pub(super) expires: Instant,
    pub(super) with_credentials: bool,
}

/// The `Authorization` a request carries, and whether it came from the user's credentials.
#[derive(Clone, Default)]
pub(super) struct AuthState {
    pub(super) header: Option<HeaderValue>,
    pub(super) with_credentials: bool,
}

/// What a client knows about authenticating to registries: the challenge each host sent,
/// bearer tokens by `host|scope` (the scope names the repository), and credential lookups
/// by host (so helpers run once per client).
#[derive(Default)]
pub(super) struct Authenticator {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    credentials: Mutex<HashMap<String, Arc<Lookup>>>,
}

impl Authenticator {
    /// Remembers a host's challenge, so later requests authenticate up front, and drops
    /// the token that was just refused.
    pub(super) fn challenged(&self, ep: &Endpoint, scope: &str, challenge: Challenge) {
        self.challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ep.host.clone(), challenge);
        self.forget_token(ep, scope);
    }

    /// The `Authorization` for a request, from what we know of the host's challenge.
    pub(super) async fn authorization(
        &self,
        http: &HttpClient,
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
                                http,
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

    pub(super) async fn lookup(&self, options: &ClientOptions, host: &str) -> Result<Arc<Lookup>> {
        if let Some(l) = self
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            return Ok(l.clone());
        }
        let (opts, h) = (options.clone(), host.to_string());
        // Config files and credential helper processes: blocking work.
        let lookup = run_blocking(move |_| auth::lookup(&opts, &h)).await?;
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
        http: &HttpClient,
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
                "the token server address \"{}\" in the registry's challenge is not a URL",
                quoted(realm, QUOTED_CHARS)
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
            other => return Err(unauthorized(format!("the token server address uses scheme \"{}\"; only http(s) is allowed", quoted(other, QUOTED_CHARS)))),
        }
        let guarded = http.guard().check_realm(ep, &url).await?;
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
        let client = if guarded {
            http.token_client()?
        } else {
            http.client()
        };
        let make = || {
            let mut b = client.request(method.clone(), url.clone());
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
        let response = execute(options, &method, &url, make)
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
        let lifetime = token_lifetime(answer.expires_in);
        // Renew a little early so a token does not expire between check and use.
        let margin = (lifetime / 10).min(Duration::from_secs(10));
        Ok(CachedToken {
            value,
            expires: Instant::now() + lifetime - margin,
            with_credentials,
        })
    }
}

/// How long to keep a token the server says lives `expires_in` seconds.
fn token_lifetime(expires_in: Option<u64>) -> Duration {
    expires_in
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
        .min(MAX_TOKEN_LIFETIME)
}

pub(super) fn sensitive(value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::invalid_argument("credentials contain characters not allowed in an HTTP header")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

pub(super) fn basic_header(username: &str, password: &str) -> Result<HeaderValue> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(&format!("Basic {encoded}"))
}

/// Parses `WWW-Authenticate` headers; prefers Bearer over Basic.
pub(super) fn parse_challenges(headers: &HeaderMap) -> Option<Challenge> {
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
pub(super) fn split_challenges(text: &str) -> Vec<(String, Vec<(String, String)>)> {
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

    #[test]
    fn token_lifetimes_are_clamped() {
        assert_eq!(token_lifetime(None), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(token_lifetime(Some(0)), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(token_lifetime(Some(300)), Duration::from_secs(300));
        assert_eq!(token_lifetime(Some(u64::MAX)), MAX_TOKEN_LIFETIME);
        // What fetch_token then computes must not overflow.
        let _ = Instant::now() + token_lifetime(Some(u64::MAX));
    }

    use super::super::ssrf::{is_internal_ip, InternalAddressGuard, Lookup as NameLookup};
    use super::super::test_server::{respond, serve};
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn token(
        http: &HttpClient,
        o: &ClientOptions,
        ep: &Endpoint,
        realm: &str,
    ) -> Result<CachedToken> {
        Authenticator::default()
            .fetch_token(
                http,
                o,
                ep,
                realm,
                Some("s"),
                "repository:a:pull",
                None,
                &Lookup::default(),
                "manifest :v1",
            )
            .await
    }

    fn answer_token(expires_in: &'static str) -> impl Fn(&str) -> Vec<u8> {
        move |_| format!(r#"{{"token":"t0k","expires_in":{expires_in}}}"#).into_bytes()
    }

    #[tokio::test]
    async fn a_huge_expires_in_is_clamped() {
        let body = answer_token("18446744073709551615");
        let server = serve("127.0.0.1", move |_, s| {
            respond(
                s,
                "200 OK",
                &[("Content-Type", "application/json")],
                &body(""),
            )
        });
        let o = ClientOptions {
            insecure_registries: vec![server.addr.to_string()],
            max_retries: 0,
            ..ClientOptions::default()
        };
        let http = HttpClient::new(&o).unwrap();
        let ep = Endpoint::new(
            &server.addr.to_string(),
            &server.addr.to_string(),
            "a".into(),
            None,
            &o,
        )
        .unwrap();
        let realm = format!("http://{}/token", server.addr);
        let t = token(&http, &o, &ep, &realm).await.unwrap();
        assert_eq!(t.value, "t0k");
        assert!(t.expires <= Instant::now() + MAX_TOKEN_LIFETIME);
    }

    /// Here 127.0.0.1 stands for the public internet (tests reach only loopback); every
    /// other internal address, 127.0.0.2 included, is what the guard must keep away from.
    fn loopback_is_public(ip: IpAddr) -> bool {
        ip != IpAddr::from([127, 0, 0, 1]) && is_internal_ip(ip)
    }

    #[tokio::test]
    async fn token_requests_reach_no_internal_address() {
        // The internal service a hostile registry wants our credentials (or its answer) from.
        let inside = serve("127.0.0.2", |_, s| {
            respond(s, "200 OK", &[], br#"{"token":"from-inside"}"#)
        });
        let inside_port = inside.addr.port();
        let public = serve("127.0.0.1", move |req, s| {
            let to = match req.path.split('?').next().unwrap_or_default() {
                "/to-metadata" => "http://169.254.169.254/latest/meta-data".to_string(),
                "/to-alibaba-metadata" => "http://100.100.100.200/latest".to_string(),
                "/to-inside" => format!("http://127.0.0.2:{inside_port}/token"),
                "/to-inside-by-name" => format!("http://inside.test:{inside_port}/token"),
                _ => return respond(s, "200 OK", &[], br#"{"token":"public"}"#),
            };
            respond(s, "302 Found", &[("Location", &to)], b"")
        });
        let rebinds = Arc::new(AtomicUsize::new(0));
        let counter = rebinds.clone();
        let lookup: NameLookup = Arc::new(move |name: &str| {
            Ok(match name {
                "tokens.test" => vec![IpAddr::from([127, 0, 0, 1])],
                "inside.test" => vec![IpAddr::from([127, 0, 0, 2])],
                // Public when checked, internal when connecting.
                "rebind.test" => match counter.fetch_add(1, Ordering::SeqCst) {
                    0 => vec![IpAddr::from([127, 0, 0, 1])],
                    _ => vec![IpAddr::from([127, 0, 0, 2])],
                },
                _ => vec![],
            })
        });
        let guard = InternalAddressGuard::with(loopback_is_public, lookup);
        let o = ClientOptions {
            insecure_registries: vec!["8.8.8.8:5000".into()],
            max_retries: 0,
            ..ClientOptions::default()
        };
        let http = HttpClient::with_guard(&o, guard).unwrap();
        let registry = Endpoint::new("8.8.8.8:5000", "8.8.8.8:5000", "a".into(), None, &o).unwrap();
        let port = public.addr.port();
        let t = token(
            &http,
            &o,
            &registry,
            &format!("http://tokens.test:{port}/token"),
        )
        .await
        .unwrap();
        assert_eq!(
            t.value, "public",
            "the guarded client works for a public realm"
        );
        for realm in [
            format!("http://tokens.test:{port}/to-metadata"),
            format!("http://tokens.test:{port}/to-alibaba-metadata"),
            format!("http://tokens.test:{port}/to-inside"),
            format!("http://tokens.test:{port}/to-inside-by-name"),
            format!("http://rebind.test:{inside_port}/token"),
        ] {
            let err = token(&http, &o, &registry, &realm)
                .await
                .map(drop)
                .expect_err(&realm);
            assert!(err.message().contains("refusing"), "{realm}: {err}");
        }
        assert_eq!(
            rebinds.load(Ordering::SeqCst),
            2,
            "checked, then resolved again to connect"
        );
        assert_eq!(
            inside.hits.load(Ordering::SeqCst),
            0,
            "a request reached the internal server"
        );
    }

    #[tokio::test]
    async fn token_servers_must_speak_https_to_an_https_registry() {
        let o = ClientOptions::default();
        let http = HttpClient::new(&o).unwrap();
        let client = Authenticator::default();
        let public = Endpoint::new("8.8.8.8:5000", "8.8.8.8:5000", "a".into(), None, &o).unwrap();
        // Only http(s), and no plain http for an https registry.
        for realm in ["ftp://8.8.4.4/token", "http://8.8.4.4/token", "not a url"] {
            let err = client
                .fetch_token(
                    &http,
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
                .map(drop)
                .expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::Unauthorized, "{realm}: {err}");
        }
    }
}
