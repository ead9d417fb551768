//! Registries over the OCI distribution protocol, spoken directly with `reqwest`.
//!
//! Every request goes through [`RegistryClient::request`], which adds authentication
//! (Basic, or a bearer token from the registry's token server), retries what may succeed
//! when tried again (429 with `Retry-After`, 500/502/503/504, broken connections) and maps
//! failures to the library's error kinds. Reads try the configured mirrors before the
//! registry itself; writes go to the registry only.

mod bearer;
mod endpoint;
mod errors;
mod fetch;
mod http;
mod session;
mod ssrf;
#[cfg(test)]
pub(crate) mod test_server;
mod tls;
mod upload;

use async_trait::async_trait;
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, Response};
use tracing::{debug, warn};

use crate::digest::{Descriptor, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::location::{Repository, Selector};
use crate::media_types::{self as mt, MANIFEST_ACCEPT};
use crate::options::ClientOptions;
use crate::store::Context;
use crate::store::{BlobStream, RawManifest, Store};

use self::endpoint::{
    blob_req, split_mirror, Action, Endpoint, Req, DOCKER_CONTENT_DIGEST, OCTET_STREAM,
};
use self::errors::ContextIfMissing;
use self::http::{backoff, content_length, header_str, read_bounded};

pub use session::RegistryClient;
pub use upload::UPLOAD_CHUNK;

/// The fuzz targets' way into `WWW-Authenticate` parsing (private to the registry client):
/// the challenge these header values yield, as its `Debug` text.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz_www_authenticate(values: &[&[u8]]) -> Option<String> {
    let mut headers = reqwest::header::HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(header::WWW_AUTHENTICATE, value);
        }
    }
    bearer::parse_challenges(&headers).map(|c| format!("{c:?}"))
}

/// The media type of a manifest response, without parameters; `None` for generic types.
fn manifest_media_type(response: &Response) -> Option<String> {
    let ct = header_str(response, header::CONTENT_TYPE.as_str())?;
    let ct = ct.split(';').next().unwrap_or_default().trim();
    match ct {
        "" | "application/json" | "text/plain" | OCTET_STREAM => None,
        // Bounded and escaped: it may be quoted in an error.
        other => Some(crate::error::quoted(other, crate::error::QUOTED_CHARS)),
    }
}

/// The digest a response names in `Docker-Content-Digest`; a malformed one is an error.
fn header_digest(response: &Response, ep: &Endpoint, what: &str) -> Result<Option<Digest>> {
    header_str(response, DOCKER_CONTENT_DIGEST)
        .map(|d| {
            d.parse::<Digest>().map_err(|e| {
                Error::new(
                    ErrorKind::Registry,
                    format!(
                        "{}: {what}: the registry sent a malformed digest: {}",
                        ep.describe(),
                        e.message()
                    ),
                )
            })
        })
        .transpose()
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
            let claimed = header_digest(&response, ep, &req.what)?;
            match read_bounded(response, max, &format!("{}: {}", ep.describe(), req.what)).await {
                Ok(bytes) => {
                    // The registry names the bytes it sent; bytes that are not what it
                    // names were changed on the way (as go-containerregistry judges).
                    if let Some(claimed) = claimed {
                        Descriptor::new("", claimed, bytes.len() as u64).verify(
                            &bytes,
                            &format!(
                                "{}: {} (against the registry's {DOCKER_CONTENT_DIGEST})",
                                ep.describe(),
                                req.what
                            ),
                        )?;
                    }
                    return Ok(RawManifest { bytes, media_type });
                }
                Err(e) if e.kind().is_transient() && tries < self.options().max_retries => {
                    tries += 1;
                    debug!(error = %e, "manifest body broke off; asking again");
                    tokio::time::sleep(backoff(self.options(), tries)).await;
                }
                Err(e) => return Err(e.context_if_missing(&ep.describe())),
            }
        }
    }

    /// What one source lists as referrers of `subject`: its OCI 1.1 referrers API, or
    /// where it answers that with 404 (distribution 2.8 and most mirrors), the referrers
    /// tag schema; nothing when it has neither.
    async fn referrers_at(&self, ep: &Endpoint, subject: &Digest) -> Result<Vec<Descriptor>> {
        let req = Req::new(
            Method::GET,
            ep.url(&format!("referrers/{subject}")),
            Action::Pull,
            format!("referrers of {subject}"),
        )
        .header(header::ACCEPT, mt::OCI_INDEX);
        match self.client().request(self.options(), ep, &req).await {
            Ok(response) => {
                let what = format!("{}: {}", ep.describe(), req.what);
                let bytes =
                    read_bounded(response, self.options().limits.max_metadata_bytes, &what).await?;
                return crate::store::interface::referrers_in_index(&bytes, &what);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let tag = crate::store::interface::referrers_tag(subject);
        match self.get_manifest(ep, &tag).await {
            Ok(raw) => crate::store::interface::referrers_in_index(
                &raw.bytes,
                &format!("{}:{tag}", ep.describe()),
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn resolve_at(&self, ep: &Endpoint, selector: &Selector) -> Result<Descriptor> {
        let reference = Self::reference(selector)?;
        let req = Self::manifest_req(ep, Method::HEAD, &reference);
        let response = self.client().request(self.options(), ep, &req).await?;
        let header_digest = header_digest(&response, ep, &req.what)?;
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
                let media_type = crate::manifest::media_type_of(
                    &raw.bytes,
                    raw.media_type.as_deref(),
                    &ep.describe(),
                )?;
                Ok(Descriptor::new(
                    media_type,
                    selector.digest.clone().unwrap_or(digest),
                    raw.bytes.len() as u64,
                ))
            }
        }
    }
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

    /// The first source that lists any referrers, the registry itself last. A mirror
    /// that lists none may only lack them (pull-through caches often copy images but not
    /// what refers to them), so its empty answer does not end the search.
    async fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        let listed = self
            .read("referrers", |ep| async move {
                let listed = self.referrers_at(ep, subject).await?;
                if listed.is_empty() {
                    return Err(Error::not_found(format!(
                        "{}: no referrers of {subject}",
                        ep.describe()
                    )));
                }
                Ok(listed)
            })
            .await;
        match listed {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        self.read("blob", |ep| fetch::open_blob(&self.ctx, ep, descriptor))
            .await
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
        let result = upload::upload_blob(
            self.client(),
            self.options(),
            ep,
            descriptor,
            &mut data,
            &mut session,
        )
        .await;
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
        let media_type = crate::manifest::media_type_of(
            &manifest.bytes,
            manifest.media_type.as_deref(),
            &ep.describe(),
        )?;
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
                        "{}: {}: the registry computed digest {}, expected {digest}",
                        ep.describe(),
                        req.what,
                        crate::error::quoted(got, crate::error::QUOTED_CHARS)
                    ),
                ));
            }
        }
        Ok(())
    }
}
