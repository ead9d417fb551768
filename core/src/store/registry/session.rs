//! Authenticated requests to an endpoint: the `Authorization` a request needs, one
//! answer to a challenge, and the mapping of failed answers to error kinds.

use reqwest::header::{self, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use tracing::debug;

use crate::auth::Lookup;
use crate::error::{Error, Result};
use crate::options::ClientOptions;

use super::bearer::{parse_challenges, AuthState, Authenticator};
use super::endpoint::{split_mirror, Endpoint, Req};
use super::errors::status_error;
use super::http::{execute, read_limited, retry_after, HttpClient, ERROR_BODY_LIMIT};

/// Shared HTTP state of a client: connection pool, TLS roots, token and credential caches.
/// One per wasm-image client; thread-safe.
pub struct RegistryClient {
    http: HttpClient,
    auth: Authenticator,
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
        Ok(RegistryClient {
            http: HttpClient::new(options)?,
            auth: Authenticator::default(),
        })
    }

    /// A plain GET of a URL outside any registry (a bare module download), with the same
    /// TLS roots, timeouts, redirect rules and retries as registry requests; no
    /// credentials are sent. The response is returned whatever its status.
    pub async fn get_plain(&self, options: &ClientOptions, url: &Url) -> Result<Response> {
        let client = self.http.client();
        execute(options, &Method::GET, url, || client.get(url.clone())).await
    }

    /// Sends a request with authentication, retries and error mapping. Returns only
    /// successful (2xx) responses.
    pub(super) async fn request(
        &self,
        options: &ClientOptions,
        ep: &Endpoint,
        req: &Req,
    ) -> Result<Response> {
        let scope = ep.scope(req.action);
        let mut auth = self
            .auth
            .authorization(&self.http, options, ep, &scope, &req.what)
            .await?;
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
                self.auth.challenged(ep, &scope, challenge);
                let next = self
                    .auth
                    .authorization(&self.http, options, ep, &scope, &req.what)
                    .await?;
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
        let client = self.http.client();
        let make = || {
            let mut builder = client
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
        execute(options, &req.method, &req.url, make)
            .await
            .map_err(|e| e.context(format!("{}: {}", ep.describe(), req.what)))
    }

    /// Reads what the registry said about a failure and maps it to an error kind.
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
            Default::default()
        } else {
            read_limited(response, ERROR_BODY_LIMIT)
                .await
                .unwrap_or_default()
        };
        let lookup = if status == StatusCode::UNAUTHORIZED {
            self.auth
                .lookup(options, &ep.host)
                .await
                .unwrap_or_default()
        } else {
            std::sync::Arc::new(Lookup::default())
        };
        status_error(
            ep,
            req,
            (status, retry, &body),
            options.max_retries + 1,
            &lookup,
            auth.with_credentials,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

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
}
