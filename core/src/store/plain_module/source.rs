//! Bare modules named by `https://`, `http://` or `file://`: a byte stream with its
//! announced size, bounded by the module limit. Control planes accept such URLs for Wasm
//! plugins, usually with an expected digest; there is no manifest to verify against.

use std::path::Path;

use futures_util::TryStreamExt;
use reqwest::{StatusCode, Url};
use tokio_util::io::StreamReader;

use crate::error::{Error, ErrorKind, Result};
use crate::location::Location;
use crate::store::BlobStream;
use crate::store::Context;

/// An opened bare module: its bytes and, when the source said, its size.
pub struct PlainModule {
    pub reader: BlobStream,
    pub size: Option<u64>,
    /// Names the source in messages.
    pub what: String,
}

/// Opens the module a `Location::Url` or `Location::ModuleFile` names.
pub async fn open(location: &Location, ctx: &Context) -> Result<PlainModule> {
    let limit = ctx.options.limits.max_module_bytes;
    let opened = match location {
        Location::ModuleFile { path } => open_file(path).await?,
        Location::Url { url } => open_url(url, ctx).await?,
        other => {
            return Err(Error::internal(format!(
                "{other} is not a bare module location"
            )))
        }
    };
    if let Some(size) = opened.size {
        if size > limit {
            return Err(Error::limit_exceeded(format!(
                "{}: the module has {size} bytes, more than the limit of {limit}",
                opened.what
            )));
        }
    }
    Ok(opened)
}

async fn open_file(path: &Path) -> Result<PlainModule> {
    let what = format!("file://{}", path.display());
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| Error::io(&what, e))?;
    if meta.is_dir() {
        return Err(Error::invalid_argument(format!(
            "{what} is a directory, expected a module file"
        )));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(&what, e))?;
    Ok(PlainModule {
        reader: Box::pin(file),
        size: Some(meta.len()),
        what,
    })
}

/// Plain `http://` is allowed only for `HOST[:PORT]` on the insecure list, the same
/// allow-list registries use: nothing is fetched unencrypted by accident.
fn check_scheme(url: &Url, ctx: &Context) -> Result<()> {
    if url.scheme() == "https" {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let allowed = ctx
        .options
        .insecure_registries
        .iter()
        .any(|r| *r == host_port || *r == host);
    if allowed {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "refusing plain http to {host_port}: add {host_port:?} to the client's insecure registries to allow it, or use https://"
        )))
    }
}

async fn open_url(url: &str, ctx: &Context) -> Result<PlainModule> {
    let parsed = Url::parse(url)
        .map_err(|e| Error::invalid_reference(format!("{url:?} is not a valid URL: {e}")))?;
    check_scheme(&parsed, ctx)?;
    let what = Location::Url {
        url: url.to_string(),
    }
    .to_string();
    let response = ctx
        .registry
        .get_plain(&ctx.options, &parsed)
        .await
        .map_err(|e| e.context(&what))?;
    let status = response.status();
    if !status.is_success() {
        return Err(status_error(status, &what, &response));
    }
    let size = response.content_length();
    let stream = response
        .bytes_stream()
        .map_err(|e| Error::new(ErrorKind::Network, format!("{e}")).into_io());
    Ok(PlainModule {
        reader: Box::pin(StreamReader::new(stream)),
        size,
        what,
    })
}

fn status_error(status: StatusCode, what: &str, response: &reqwest::Response) -> Error {
    let code = status.as_u16();
    let kind = match code {
        404 | 410 => ErrorKind::NotFound,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        429 => ErrorKind::RateLimited,
        _ => ErrorKind::Registry,
    };
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    Error::new(kind, format!("{what}: the server answered HTTP {status}"))
        .with_registry(code, None)
        .with_retry_after(retry_after)
}

/// Reads a whole bare module into memory, bounded by the limit, and checks it is Wasm.
pub async fn read_all(location: &Location, ctx: &Context) -> Result<(bytes::Bytes, String)> {
    use tokio::io::AsyncReadExt;
    let limit = ctx.options.limits.max_module_bytes;
    let opened = open(location, ctx).await?;
    let mut data = Vec::with_capacity(opened.size.unwrap_or(0).min(limit) as usize);
    let read = opened
        .reader
        .take(limit + 1)
        .read_to_end(&mut data)
        .await
        .map_err(|e| Error::from_io(e).context(&opened.what))?;
    if read as u64 > limit {
        return Err(Error::limit_exceeded(format!(
            "{}: the module is larger than the limit of {limit} bytes",
            opened.what
        )));
    }
    crate::module_facts::check_wasm_header(&data, &opened.what)?;
    Ok((bytes::Bytes::from(data), opened.what))
}
