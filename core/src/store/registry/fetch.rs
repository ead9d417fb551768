//! Blob downloads that resume where they broke off (`Range: bytes=N-`).

use std::pin::Pin;

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use reqwest::header::{self};
use reqwest::{Method, StatusCode};
use tokio_util::io::StreamReader;
use tracing::warn;

use crate::digest::{size_mismatch, Descriptor};
use crate::error::{Error, ErrorKind, Result};
use crate::store::BlobStream;
use crate::store::Context;

use super::endpoint::{blob_req, Action, Endpoint};
use super::errors::error_chain;
use super::http::{backoff, content_length, header_str};

/// Opens a blob at an endpoint as a stream that resumes after a broken connection.
pub(super) async fn open_blob(
    ctx: &Context,
    ep: &Endpoint,
    descriptor: &Descriptor,
) -> Result<BlobStream> {
    let req = blob_req(ep, Method::GET, &descriptor.digest, Action::Pull);
    let response = ctx.registry.request(&ctx.options, ep, &req).await?;
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
        ctx: ctx.clone(),
        ep: ep.clone(),
        descriptor: descriptor.clone(),
        body: Some(Box::pin(response.bytes_stream())),
        offset: 0,
        skip: 0,
        resumes_left: ctx.options.max_retries,
    };
    Ok(Box::pin(StreamReader::new(resume_stream(state))))
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::digest::Digest;
    use crate::options::ClientOptions;
    use crate::store::registry::test_server::serve;

    /// The first answer breaks off; the resumed request's `Range` is ignored and the whole
    /// blob comes again with 200. The bytes already handed out must be skipped, not
    /// repeated.
    #[tokio::test]
    async fn a_resume_answered_in_full_skips_what_was_already_read() {
        let blob: Arc<Vec<u8>> =
            Arc::new((0..65_536u32).map(|i| (i * 7 + i / 251) as u8).collect());
        let ranges: Arc<Mutex<Vec<String>>> = Arc::default();
        let (data, seen) = (blob.clone(), ranges.clone());
        let server = serve("127.0.0.1", move |req, s| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            s.write_all(head.as_bytes())?;
            match req.header("range") {
                None => {
                    s.write_all(&data[..20_000])?;
                    s.flush()?;
                    s.shutdown(std::net::Shutdown::Both)
                }
                Some(range) => {
                    seen.lock().unwrap().push(range.to_string());
                    s.write_all(&data)
                }
            }
        });
        let host = server.addr.to_string();
        let options = ClientOptions {
            insecure_registries: vec![host.clone()],
            use_config_files: false,
            retry_base_delay: Duration::from_millis(1),
            ..ClientOptions::default()
        };
        let ep = Endpoint::new(&host, &host, "a".into(), None, &options).unwrap();
        let ctx = Context::new(options).unwrap();
        let descriptor = Descriptor::new(OCTET, Digest::sha256_of(&blob), blob.len() as u64);
        let mut stream = open_blob(&ctx, &ep, &descriptor).await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), blob.len());
        assert!(got == *blob, "the resumed bytes differ");
        let ranges = ranges.lock().unwrap();
        assert_eq!(ranges.len(), 1, "{ranges:?}");
        assert!(
            ranges[0].starts_with("bytes=") && ranges[0] != "bytes=0-",
            "{ranges:?}"
        );
    }

    const OCTET: &str = "application/octet-stream";
}
