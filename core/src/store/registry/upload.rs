//! Blob uploads: one PUT for small blobs, 4 MiB PATCH chunks for large ones, and the
//! checks on what the registry says it stored.

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::digest::{size_mismatch, Descriptor, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::store::BlobStream;

use super::endpoint::{Action, Endpoint, Req, DOCKER_CONTENT_DIGEST, OCTET_STREAM};
use super::errors::ContextIfMissing;
use super::http::header_str;
use super::session::RegistryClient;
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
    let response = client.request(options, ep, &put).await?;
    check_created(ep, &response, &descriptor.digest, &what)
}

pub(super) fn upload_location(ep: &Endpoint, response: &Response, what: &str) -> Result<Url> {
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
                    "{}: {what}: the registry stored {got} instead of {digest}",
                    ep.describe()
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
