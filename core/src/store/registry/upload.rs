//! Blob uploads: one PUT for small blobs, 4 MiB PATCH chunks for large ones, and the
//! checks on what the registry says it stored.

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::digest::{size_mismatch, Descriptor, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::store::BlobStream;

use super::endpoint::{
    host_port, show_url, Action, Endpoint, Req, DOCKER_CONTENT_DIGEST, OCTET_STREAM,
};
use super::errors::ContextIfMissing;
use super::http::header_str;
use super::session::RegistryClient;
use crate::error::{quoted, QUOTED_CHARS};
use crate::options::ClientOptions;

/// Largest request body we send (GHCR rejects more): blob uploads go in chunks of this size.
pub const UPLOAD_CHUNK: usize = 4 * 1024 * 1024;

/// Uploads one blob. `session` holds the upload's URL once the registry opened one, so
/// a caller can cancel it after a failure.
pub(super) async fn upload_blob(
    client: &RegistryClient,
    options: &ClientOptions,
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
    let response = client.request(options, ep, &start).await?;
    let mut location = upload_location(ep, options, &response, &what)?;
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
        let response = client.request(options, ep, &put).await?;
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
        let response = client.request(options, ep, &patch).await?;
        sent += chunk.len() as u64;
        location = upload_location(ep, options, &response, &what)?;
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
    let response = client.request(options, ep, &put).await?;
    check_created(ep, &response, &descriptor.digest, &what)
}

pub(super) fn upload_location(
    ep: &Endpoint,
    options: &ClientOptions,
    response: &Response,
    what: &str,
) -> Result<Url> {
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
    resolve_location(ep, options, response.url(), location, what)
        .map_err(|e| e.with_registry(response.status().as_u16(), None))
}

/// Where the next request of an upload goes. Relative locations resolve against the
/// answer's URL; the query (upload state) is kept. An https upload must not continue over
/// plain http (the blob would travel in clear) unless that host is listed as insecure.
fn resolve_location(
    ep: &Endpoint,
    options: &ClientOptions,
    answered: &Url,
    location: &str,
    what: &str,
) -> Result<Url> {
    let url = answered
        .join(location)
        .or_else(|_| ep.base.join(location))
        .map_err(|e| {
            Error::new(
                ErrorKind::Registry,
                format!(
                    "{}: {what}: the upload Location \"{}\" is not a URL: {e}",
                    ep.describe(),
                    quoted(location, QUOTED_CHARS)
                ),
            )
        })?;
    let allowed = match url.scheme() {
        "https" => true,
        "http" => {
            answered.scheme() == "http"
                || host_port(&url).is_some_and(|h| options.insecure_registries.contains(&h))
        }
        _ => false,
    };
    if !allowed {
        return Err(Error::new(
            ErrorKind::Registry,
            format!(
                "{}: {what}: refusing the upload Location {}: the registry answered over {} and the upload would continue over {} (list the host in the insecure registries to allow plain http)",
                ep.describe(),
                show_url(&url),
                answered.scheme(),
                quoted(url.scheme(), QUOTED_CHARS)
            ),
        ));
    }
    Ok(url)
}

pub(super) fn check_created(
    ep: &Endpoint,
    response: &Response,
    digest: &Digest,
    what: &str,
) -> Result<()> {
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
                    "{}: {what}: the registry stored {} instead of {digest}",
                    ep.describe(),
                    quoted(got, QUOTED_CHARS)
                ),
            ));
        }
    }
    Ok(())
}

/// Reads until `max` bytes or the end of the stream.
pub(super) async fn read_chunk(data: &mut BlobStream, max: usize) -> std::io::Result<Bytes> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(options: &ClientOptions, answered: &str, location: &str) -> Result<Url> {
        let ep = Endpoint::new(
            "registry.example:5000",
            "registry.example:5000",
            "a".into(),
            None,
            options,
        )
        .unwrap();
        resolve_location(
            &ep,
            options,
            &Url::parse(answered).unwrap(),
            location,
            "blob upload",
        )
    }

    #[test]
    fn an_https_upload_never_continues_over_plain_http() {
        let o = ClientOptions::default();
        let https = "https://registry.example:5000/v2/a/blobs/uploads/";
        let err = resolve(
            &o,
            https,
            "http://registry.example:5000/v2/a/blobs/uploads/u1?s=1",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Registry, "{err}");
        assert!(
            err.message().contains("refusing the upload Location"),
            "{err}"
        );
        assert!(!err.message().contains("s=1"), "upload state leaked: {err}");
        // Other hosts, other schemes: refused too.
        for location in ["http://elsewhere.example/u", "ftp://registry.example/u"] {
            assert!(resolve(&o, https, location).is_err(), "{location}");
        }
        // Relative and https locations are followed, with their query.
        assert_eq!(
            resolve(&o, https, "/v2/a/blobs/uploads/u1?s=1")
                .unwrap()
                .as_str(),
            "https://registry.example:5000/v2/a/blobs/uploads/u1?s=1"
        );
        assert!(resolve(&o, https, "https://storage.example/u?sig=x").is_ok());
        // A plain-http registry stays on plain http; a host listed as insecure may be used.
        let http = "http://registry.example:5000/v2/a/blobs/uploads/";
        assert!(resolve(&o, http, "http://registry.example:5000/u").is_ok());
        let listed = ClientOptions {
            insecure_registries: vec!["storage.example:8080".into()],
            ..ClientOptions::default()
        };
        assert!(resolve(&listed, https, "http://storage.example:8080/u").is_ok());
    }
}
