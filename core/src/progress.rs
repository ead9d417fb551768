//! Progress reporting for transfers, and the reader that produces it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};

use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    pub digest: Digest,
    pub media_type: String,
    /// Bytes moved so far for this blob.
    pub done: u64,
    pub total: u64,
}

pub type Progress = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// Reports at most every 50 ms, and always at the start and the end of a blob.
const REPORT_EVERY: Duration = Duration::from_millis(50);

pub struct ProgressReader<R> {
    inner: R,
    sink: Progress,
    event: ProgressEvent,
    last: Option<Instant>,
}

impl<R> ProgressReader<R> {
    pub fn new(inner: R, sink: Progress, digest: Digest, media_type: String, total: u64) -> Self {
        ProgressReader {
            inner,
            sink,
            event: ProgressEvent {
                digest,
                media_type,
                done: 0,
                total,
            },
            last: None,
        }
    }

    fn report(&mut self, force: bool) {
        let now = Instant::now();
        if force
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= REPORT_EVERY)
        {
            self.last = Some(now);
            (self.sink)(&self.event);
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ProgressReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.last.is_none() {
            this.report(true);
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            let n = (buf.filled().len() - before) as u64;
            this.event.done += n;
            let finished = n == 0 || this.event.done >= this.event.total;
            this.report(finished);
        }
        result
    }
}
