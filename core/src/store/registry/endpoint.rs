//! Endpoints: the registry or a mirror, with the URLs, scopes and origins of its requests.

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Url};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::options::ClientOptions;

pub(super) const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
pub(super) const OCTET_STREAM: &str = "application/octet-stream";

/// One place a repository can be read from or written to: the registry or a mirror.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// `HOST[:PORT]` as configured (Docker Hub as `docker.io`): keys credentials and caches.
    pub(super) host: String,
    /// `scheme://api-host/`.
    pub(super) base: Url,
    /// The repository path at this endpoint.
    pub(super) name: String,
    /// The registry this endpoint mirrors, for mirrors.
    pub(super) mirror_of: Option<String>,
}

impl Endpoint {
    pub(super) fn new(
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

    pub(super) fn url(&self, rest: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/v2/{}/{rest}", self.name));
        url
    }

    pub(super) fn describe(&self) -> String {
        match &self.mirror_of {
            Some(of) => format!("{}/{} (mirror of {of})", self.host, self.name),
            None => format!("{}/{}", self.host, self.name),
        }
    }

    pub(super) fn scope(&self, action: Action) -> String {
        match action {
            Action::Pull => format!("repository:{}:pull", self.name),
            Action::Push => format!("repository:{}:pull,push", self.name),
        }
    }

    pub(super) fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Pull,
    Push,
}

pub(super) fn host_port(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Splits `HOST[:PORT][/PATH]` into the host and a repository prefix.
pub(super) fn split_mirror(mirror: &str) -> (&str, Option<&str>) {
    let m = mirror.trim_end_matches('/');
    match m.split_once('/') {
        Some((host, prefix)) => (host, Some(prefix)),
        None => (m, None),
    }
}

/// A request that can be sent again (bodies are held as `Bytes`).
pub(super) struct Req {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Bytes>,
    pub(super) action: Action,
    /// What is asked for, for messages: `manifest :v1`, `blob sha256:…`.
    pub(super) what: String,
}

impl Req {
    pub(super) fn new(method: Method, url: Url, action: Action, what: impl Into<String>) -> Req {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            action,
            what: what.into(),
        }
    }
    pub(super) fn header(mut self, name: header::HeaderName, value: &str) -> Req {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
    pub(super) fn body(mut self, body: Bytes) -> Req {
        self.body = Some(body);
        self
    }
}

/// A URL fit for logs and messages: no query (upload state, signed redirects), no userinfo,
/// and bounded (a registry chooses token realms and upload locations).
pub(super) fn show_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    crate::error::quoted(u.as_str(), crate::error::QUOTED_CHARS)
}

pub(super) fn blob_req(ep: &Endpoint, method: Method, digest: &Digest, action: Action) -> Req {
    Req::new(
        method,
        ep.url(&format!("blobs/{digest}")),
        action,
        format!("blob {digest}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
