//! Downloads a blob ahead of the blocking thread that consumes it, and checks its digest
//! on a thread of its own.
//!
//! Receiving (socket reads, on runtime workers), checking the digest and consuming
//! (decompressing, hashing a module, copying it into memory or a file, on a blocking
//! thread) then run side by side instead of taking turns: with a single reader, the
//! connection reads only when the consumer asks, and a pull costs the sum of all three
//! instead of the largest. The digest check is the longest of them for a large blob
//! (one SHA-256 stream, about 1.8 GB/s); done where the bytes are received, it held the
//! download back while another core sat idle.

use std::io::{self, BufRead, Read};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::task::AbortHandle;

use crate::digest::{Descriptor, Verifier, VerifyingReader};
use crate::embed::runtime::CancellationToken;
use crate::error::Error;
use crate::store::BlobStream;

/// The largest piece handed across: big enough that passing one costs nothing next to
/// its bytes. A smaller blob gets pieces of its own size, so a 16-byte blob holds 16
/// bytes, not a fixed read-ahead.
const PIECE: usize = 512 * 1024;
/// How many pieces may wait for the consumer: bounds the memory a pull holds (4 MiB)
/// while letting the download run ahead over a consumer's pauses.
const PIECES_AHEAD: usize = 8;
/// Of those, how many may wait for the digest check.
const PIECES_TO_CHECK: usize = 2;
/// Blobs up to this size are checked where they are received: their hash takes about a
/// millisecond, less than handing each piece to another thread would gain.
const CHECKED_INLINE_UP_TO: u64 = 2 << 20;

/// A blocking reader over a stream that a runtime task reads ahead of it. Every read that
/// has to wait also watches the cancellation token, so a stalled download stops at once
/// when the caller gives up; dropping the reader stops the download.
///
/// The bytes arrive in pieces the download fills and the reader sends back to be filled
/// again: fresh memory costs a page fault per 4 KiB (as much as copying it), so the same
/// few pieces carry the whole blob. Consumers that can take bytes where they lie use
/// [`BufRead`] (tar, the decompressors, a file write), so nothing copies them again.
pub struct ReadAhead {
    pieces: mpsc::Receiver<io::Result<Bytes>>,
    spent: mpsc::UnboundedSender<BytesMut>,
    current: Bytes,
    /// How much of `current` was read.
    taken: usize,
    finished: bool,
    handle: tokio::runtime::Handle,
    cancel: CancellationToken,
    download: AbortHandle,
}

impl ReadAhead {
    /// Starts reading `stream`, the blob `expected` describes as the store gives it, on
    /// the runtime behind `handle`. Its bytes are checked against `expected` (`what`
    /// names it in errors): the reader fails instead of ending when they differ.
    pub fn start(
        stream: BlobStream,
        expected: &Descriptor,
        what: String,
        handle: tokio::runtime::Handle,
        cancel: CancellationToken,
    ) -> ReadAhead {
        let (spent, reusable) = mpsc::unbounded_channel();
        let piece = expected.size.clamp(1, PIECE as u64) as usize;
        let (download, pieces) = if expected.size <= CHECKED_INLINE_UP_TO {
            let (sender, pieces) = mpsc::channel(PIECES_AHEAD);
            let verified: BlobStream = Box::pin(VerifyingReader::new(stream, expected, what));
            let task = handle.spawn(download(verified, piece, sender, reusable));
            (task, pieces)
        } else {
            let (sender, pieces) = mpsc::channel(PIECES_AHEAD - PIECES_TO_CHECK);
            let (to_check, received) = mpsc::channel(PIECES_TO_CHECK);
            let verifier = Verifier::new(what, expected.clone());
            // Not joined: it ends with the download's last piece, or at once when the
            // download or the reader is gone.
            drop(handle.spawn_blocking(move || check_pieces(received, sender, verifier)));
            let task = handle.spawn(download(stream, piece, to_check, reusable));
            (task, pieces)
        };
        let download = download.abort_handle();
        ReadAhead {
            pieces,
            spent,
            current: Bytes::new(),
            taken: 0,
            finished: false,
            handle,
            cancel,
            download,
        }
    }

    /// The next piece, or `None` at the end of the stream.
    fn next_piece(&mut self) -> io::Result<Option<Bytes>> {
        if self.cancel.is_cancelled() {
            return Err(Error::cancelled().into_io());
        }
        let next = match self.pieces.try_recv() {
            Ok(piece) => Some(piece),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => {
                let ReadAhead {
                    pieces,
                    handle,
                    cancel,
                    ..
                } = self;
                handle.block_on(async {
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => Err(Error::cancelled().into_io()),
                        piece = pieces.recv() => Ok(piece),
                    }
                })?
            }
        };
        match next {
            // The download sends an empty piece when, and only when, the stream ended.
            Some(Ok(piece)) if piece.is_empty() => Ok(None),
            Some(Ok(piece)) => Ok(Some(piece)),
            Some(Err(e)) => Err(e),
            None => {
                Err(Error::internal("the download stopped before the end of the blob").into_io())
            }
        }
    }
}

impl BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.taken == self.current.len() && !self.finished {
            if let Ok(mut piece) = std::mem::take(&mut self.current).try_into_mut() {
                piece.clear();
                let _ = self.spent.send(piece);
            }
            self.taken = 0;
            match self.next_piece()? {
                Some(piece) => self.current = piece,
                None => self.finished = true,
            }
        }
        Ok(&self.current[self.taken..])
    }

    fn consume(&mut self, amount: usize) {
        self.taken = (self.taken + amount).min(self.current.len());
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let rest = self.fill_buf()?;
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.download.abort();
    }
}

/// Checks the pieces of a download against the blob's descriptor as they pass on to the
/// reader, on a blocking thread: a piece goes on once hashed, the end only once the
/// digest matched (else the mismatch goes instead). Stops when either side is gone.
fn check_pieces(
    mut received: mpsc::Receiver<io::Result<Bytes>>,
    checked: mpsc::Sender<io::Result<Bytes>>,
    mut verifier: Verifier,
) {
    while let Some(next) = received.blocking_recv() {
        let (verdict, last) = match next {
            Ok(piece) if piece.is_empty() => (verifier.finish().map(|()| piece), true),
            Ok(piece) => (verifier.feed(&piece).map(|()| piece), false),
            Err(e) => (Err(e), true),
        };
        let failed = verdict.is_err();
        if checked.blocking_send(verdict).is_err() || failed || last {
            return;
        }
    }
}

/// Reads the stream into pieces of `piece` bytes until its end or its first error, each
/// passed on in turn; stops when the reader is gone.
async fn download(
    mut stream: BlobStream,
    piece_size: usize,
    sender: mpsc::Sender<io::Result<Bytes>>,
    mut reusable: mpsc::UnboundedReceiver<BytesMut>,
) {
    loop {
        let mut piece = reusable
            .try_recv()
            .unwrap_or_else(|_| BytesMut::with_capacity(piece_size));
        let mut ended = false;
        // Waits for the first bytes, then takes what else is there at once: a piece goes
        // out when full or when the stream has nothing more for now, so a slow stream is
        // passed on as it comes.
        let mut waiting = true;
        while piece.len() < piece_size {
            let read = if waiting {
                Some(stream.read_buf(&mut piece).await)
            } else {
                // `read_buf` is cancel-safe: a read not ready is dropped, nothing lost.
                stream.read_buf(&mut piece).now_or_never()
            };
            waiting = false;
            match read {
                None => break,
                Some(Ok(0)) => {
                    ended = true;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if !piece.is_empty() && sender.send(Ok(piece.freeze())).await.is_err() {
                        return;
                    }
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            }
        }
        if !piece.is_empty() && sender.send(Ok(piece.freeze())).await.is_err() {
            return;
        }
        if ended {
            let _ = sender.send(Ok(Bytes::new())).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncRead, ReadBuf};

    use super::*;
    use crate::error::ErrorKind;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Gives `data` in reads of at most 100,000 bytes, then `tail`; flags its drop.
    struct Source {
        data: Vec<u8>,
        at: usize,
        /// How far the download has read, for the test to watch.
        progress: Arc<std::sync::atomic::AtomicUsize>,
        tail: Option<io::Error>,
        stall: bool,
        dropped: Arc<AtomicBool>,
    }

    impl Source {
        fn new(data: Vec<u8>) -> (Source, Arc<AtomicBool>) {
            let dropped = Arc::new(AtomicBool::new(false));
            let source = Source {
                data,
                at: 0,
                progress: Arc::default(),
                tail: None,
                stall: false,
                dropped: dropped.clone(),
            };
            (source, dropped)
        }
    }

    impl AsyncRead for Source {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = &mut *self;
            if this.at == this.data.len() {
                if this.stall {
                    return Poll::Pending;
                }
                return Poll::Ready(this.tail.take().map_or(Ok(()), Err));
            }
            let n = buf.remaining().min(100_000).min(this.data.len() - this.at);
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            this.progress.store(this.at, Ordering::SeqCst);
            Poll::Ready(Ok(()))
        }
    }

    impl Drop for Source {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    fn descriptor_of(data: &[u8]) -> Descriptor {
        Descriptor::new(
            "application/octet-stream",
            crate::digest::Digest::sha256_of(data),
            data.len() as u64,
        )
    }

    /// Larger than what is checked where it is received, so a thread of its own checks it.
    const CHECKED_BESIDE: usize = CHECKED_INLINE_UP_TO as usize + 12_345;

    fn start_as(
        source: Source,
        declared: &Descriptor,
        rt: &tokio::runtime::Runtime,
        cancel: CancellationToken,
    ) -> ReadAhead {
        ReadAhead::start(
            Box::pin(source),
            declared,
            "test blob".into(),
            rt.handle().clone(),
            cancel,
        )
    }

    fn kind_of(err: &io::Error) -> Option<ErrorKind> {
        Error::find_in_io(err).map(|e| e.kind())
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    fn start(source: Source, rt: &tokio::runtime::Runtime, cancel: CancellationToken) -> ReadAhead {
        let descriptor = descriptor_of(&source.data);
        ReadAhead::start(
            Box::pin(source),
            &descriptor,
            "test blob".into(),
            rt.handle().clone(),
            cancel,
        )
    }

    #[test]
    fn the_download_runs_ahead_by_the_pieces_that_may_wait_and_no_further() {
        let rt = runtime();
        let data = pattern(PIECE * PIECES_AHEAD * 3);
        let (source, _) = Source::new(data.clone());
        let received = source.progress.clone();
        let mut reader = start(source, &rt, CancellationToken::new());
        // Nothing is consumed: the download must stop once the pieces that may wait are
        // full, holding at most those plus the one it was filling.
        let mut last = usize::MAX;
        while received.load(Ordering::SeqCst) != last {
            last = received.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(last >= PIECE * PIECES_AHEAD, "ran ahead only {last} bytes");
        // The pieces that may wait, the one the digest check holds and the one filling.
        assert!(last <= PIECE * (PIECES_AHEAD + 2), "ran ahead {last} bytes");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert!(out == data);
    }

    #[test]
    fn a_small_blob_comes_whole_in_one_piece_read_in_place() {
        let rt = runtime();
        let (source, _) = Source::new(pattern(16));
        let mut reader = start(source, &rt, CancellationToken::new());
        assert_eq!(reader.fill_buf().unwrap(), &pattern(16)[..]);
        reader.consume(10);
        assert_eq!(reader.fill_buf().unwrap(), &pattern(16)[10..]);
        reader.consume(6);
        assert!(reader.fill_buf().unwrap().is_empty());
        assert_eq!(reader.read(&mut [0u8; 4]).unwrap(), 0);
    }

    #[test]
    fn delivers_every_byte_in_order_past_the_read_ahead_bound() {
        let rt = runtime();
        // Many more bytes than the pieces that may wait, so the download blocks and resumes.
        let data = pattern(PIECE * PIECES_AHEAD * 3 + 12_345);
        let (source, _) = Source::new(data.clone());
        let mut reader = start(source, &rt, CancellationToken::new());
        let mut out = Vec::new();
        let mut buf = vec![0u8; 300_001];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            // A slow consumer: the download must wait for it, not grow without bound.
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(out.len(), data.len());
        assert!(out == data);
        assert_eq!(reader.read(&mut buf).unwrap(), 0, "the end stays the end");
    }

    #[test]
    fn an_error_arrives_after_the_bytes_before_it() {
        let rt = runtime();
        let data = pattern(300_000);
        let (mut source, _) = Source::new(data.clone());
        source.tail = Some(Error::new(ErrorKind::DigestMismatch, "bad bytes").into_io());
        let mut reader = start(source, &rt, CancellationToken::new());
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).unwrap_err();
        assert_eq!(out.len(), data.len());
        assert!(out == data);
        assert_eq!(
            Error::find_in_io(&err).map(|e| e.kind()),
            Some(ErrorKind::DigestMismatch)
        );
    }

    /// Fails the way no stream should: by panicking in the middle.
    struct Panics;

    impl AsyncRead for Panics {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            panic!("a broken stream");
        }
    }

    #[test]
    fn a_download_that_dies_is_an_error_not_an_end() {
        let rt = runtime();
        for size in [16, CHECKED_BESIDE] {
            let declared = descriptor_of(&pattern(size));
            let mut reader = ReadAhead::start(
                Box::pin(Panics),
                &declared,
                "test blob".into(),
                rt.handle().clone(),
                CancellationToken::new(),
            );
            let err = reader.read(&mut [0u8; 16]).unwrap_err();
            assert_eq!(kind_of(&err), Some(ErrorKind::Internal), "{size} bytes");
        }
    }

    #[test]
    fn bytes_that_do_not_match_the_digest_end_in_an_error_never_an_end() {
        let rt = runtime();
        for size in [1000, CHECKED_BESIDE, PIECE * PIECES_AHEAD * 3] {
            let data = pattern(size);
            let mut other = data.clone();
            other[size / 2] ^= 1;
            let (source, _) = Source::new(other);
            let mut reader = start_as(source, &descriptor_of(&data), &rt, CancellationToken::new());
            let mut out = Vec::new();
            let err = reader.read_to_end(&mut out).unwrap_err();
            assert_eq!(
                kind_of(&err),
                Some(ErrorKind::DigestMismatch),
                "{size} bytes"
            );
            assert!(
                reader.read(&mut [0u8; 16]).is_err(),
                "{size} bytes: the end never comes after a mismatch"
            );
        }
    }

    #[test]
    fn more_bytes_than_declared_fail_before_the_end() {
        let rt = runtime();
        for size in [1000, CHECKED_BESIDE] {
            let data = pattern(size);
            let mut longer = data.clone();
            longer.extend_from_slice(&pattern(PIECE * PIECES_AHEAD * 2));
            let (mut source, _) = Source::new(longer);
            // Stalls after its bytes: only the size check can end the read.
            source.stall = true;
            let mut reader = start_as(source, &descriptor_of(&data), &rt, CancellationToken::new());
            let mut out = Vec::new();
            let err = reader.read_to_end(&mut out).unwrap_err();
            assert_eq!(
                kind_of(&err),
                Some(ErrorKind::DigestMismatch),
                "{size} bytes"
            );
            assert!(out.len() <= size, "{size} bytes: {} handed out", out.len());
        }
    }

    #[test]
    fn cancelling_stops_a_stalled_read_and_dropping_stops_the_download() {
        let rt = runtime();
        for size in [1000, CHECKED_BESIDE] {
            stalled_reads_stop(&rt, size);
        }
    }

    fn stalled_reads_stop(rt: &tokio::runtime::Runtime, size: usize) {
        let (mut source, dropped) = Source::new(pattern(size));
        source.stall = true;
        let cancel = CancellationToken::new();
        let mut reader = start(source, rt, cancel.clone());
        let mut buf = vec![0u8; size];
        reader.read_exact(&mut buf).unwrap();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            cancel.cancel();
        });
        let started = Instant::now();
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(
            Error::find_in_io(&err).map(|e| e.kind()),
            Some(ErrorKind::Cancelled)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        canceller.join().unwrap();
        assert!(!dropped.load(Ordering::SeqCst));
        drop(reader);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the download outlived its reader"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
