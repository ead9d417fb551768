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
/// What the reader does with the bytes, which decides when it may have them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// Parses them: only pieces the check has passed.
    Parses,
    /// Copies them somewhere that is discarded unless the end comes: pieces as they
    /// arrive, never more bytes than declared.
    Copies,
}

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
        consumer: Consumer,
    ) -> ReadAhead {
        let (spent, reusable) = mpsc::unbounded_channel();
        let piece = expected.size.clamp(1, PIECE as u64) as usize;
        let (stream, outlets, pieces) = if expected.size <= CHECKED_INLINE_UP_TO {
            let (sender, pieces) = mpsc::channel(PIECES_AHEAD);
            let verified: BlobStream = Box::pin(VerifyingReader::new(stream, expected, what));
            (verified, Outlets::direct(sender), pieces)
        } else if consumer == Consumer::Parses {
            let (sender, pieces) = mpsc::channel(PIECES_AHEAD - PIECES_TO_CHECK);
            let (to_check, received) = mpsc::channel(PIECES_TO_CHECK);
            let verifier = Verifier::new(what, expected.clone());
            // Not joined: it ends with the download's last piece, or at once when the
            // download or the reader is gone.
            drop(handle.spawn_blocking(move || check_pieces(received, sender, verifier)));
            (stream, Outlets::direct(to_check), pieces)
        } else {
            let (sender, pieces) = mpsc::channel(PIECES_AHEAD);
            let (to_check, received) = mpsc::channel(PIECES_AHEAD);
            let verifier = Verifier::new(what, expected.clone());
            let verdict = sender.clone();
            let returned = spent.clone();
            drop(
                handle.spawn_blocking(move || check_beside(received, verdict, verifier, returned)),
            );
            let outlets = Outlets {
                first: sender,
                beside: Some((to_check, expected.size)),
            };
            (stream, outlets, pieces)
        };
        let download = handle.spawn(download(stream, outlets, piece, reusable));
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

/// Checks, beside the reader, pieces the reader already has: it keeps what it was given
/// for reuse once both are done with a piece, and sends the reader only its verdict, in
/// place of the end. Stops when either side is gone.
fn check_beside(
    mut received: mpsc::Receiver<io::Result<Bytes>>,
    verdict: mpsc::Sender<io::Result<Bytes>>,
    mut verifier: Verifier,
    spent: mpsc::UnboundedSender<BytesMut>,
) {
    while let Some(next) = received.blocking_recv() {
        let outcome = match next {
            Ok(piece) if piece.is_empty() => verifier.finish().map(|()| piece),
            Ok(piece) => match verifier.feed(&piece) {
                Ok(()) => {
                    // The last of the two to let go of a piece returns it.
                    if let Ok(mut piece) = piece.try_into_mut() {
                        piece.clear();
                        let _ = spent.send(piece);
                    }
                    continue;
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let _ = verdict.blocking_send(outcome);
        return;
    }
}

/// Where a download sends what it reads.
struct Outlets {
    /// Every piece in order, and the end unless a check runs beside.
    first: mpsc::Sender<io::Result<Bytes>>,
    /// The check beside a copying reader, with the declared size: it gets every piece
    /// too, and the end, for which it sends the reader its verdict. A piece that would
    /// take the reader past the declared size goes to the check only.
    beside: Option<(mpsc::Sender<io::Result<Bytes>>, u64)>,
}

impl Outlets {
    fn direct(first: mpsc::Sender<io::Result<Bytes>>) -> Outlets {
        Outlets {
            first,
            beside: None,
        }
    }

    /// Passes a piece on; `false` once nobody wants more.
    async fn send(&self, piece: Bytes, received: u64) -> bool {
        match &self.beside {
            None => self.first.send(Ok(piece)).await.is_ok(),
            Some((check, declared)) if received > *declared => {
                let _ = check.send(Ok(piece)).await;
                false
            }
            Some((check, _)) => {
                self.first.send(Ok(piece.clone())).await.is_ok()
                    && check.send(Ok(piece)).await.is_ok()
            }
        }
    }

    async fn end(&self) {
        let to = self.beside.as_ref().map_or(&self.first, |(check, _)| check);
        let _ = to.send(Ok(Bytes::new())).await;
    }
}

/// Reads the stream into pieces of `piece` bytes until its end or its first error, each
/// passed on in turn; stops when the reader is gone.
async fn download(
    mut stream: BlobStream,
    outlets: Outlets,
    piece_size: usize,
    mut reusable: mpsc::UnboundedReceiver<BytesMut>,
) {
    let mut received = 0u64;
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
                    received += piece.len() as u64;
                    if !piece.is_empty() && !outlets.send(piece.freeze(), received).await {
                        return;
                    }
                    let _ = outlets.first.send(Err(e)).await;
                    return;
                }
            }
        }
        received += piece.len() as u64;
        if !piece.is_empty() && !outlets.send(piece.freeze(), received).await {
            return;
        }
        if ended {
            outlets.end().await;
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

    /// Both kinds of reader, for the properties both must have.
    const CONSUMERS: [Consumer; 2] = [Consumer::Parses, Consumer::Copies];

    fn start_as(
        source: Source,
        declared: &Descriptor,
        rt: &tokio::runtime::Runtime,
        cancel: CancellationToken,
        consumer: Consumer,
    ) -> ReadAhead {
        ReadAhead::start(
            Box::pin(source),
            declared,
            "test blob".into(),
            rt.handle().clone(),
            cancel,
            consumer,
        )
    }

    fn kind_of(err: &io::Error) -> Option<ErrorKind> {
        Error::find_in_io(err).map(|e| e.kind())
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    fn start(
        source: Source,
        rt: &tokio::runtime::Runtime,
        cancel: CancellationToken,
        consumer: Consumer,
    ) -> ReadAhead {
        let descriptor = descriptor_of(&source.data);
        start_as(source, &descriptor, rt, cancel, consumer)
    }

    #[test]
    fn the_download_runs_ahead_by_the_pieces_that_may_wait_and_no_further() {
        let rt = runtime();
        for consumer in CONSUMERS {
            let data = pattern(PIECE * PIECES_AHEAD * 3);
            let (source, _) = Source::new(data.clone());
            let received = source.progress.clone();
            let mut reader = start(source, &rt, CancellationToken::new(), consumer);
            // Nothing is consumed: the download must stop once the pieces that may wait
            // are full, holding at most those plus the one it was filling.
            let mut last = usize::MAX;
            while received.load(Ordering::SeqCst) != last {
                last = received.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(
                last >= PIECE * PIECES_AHEAD,
                "{consumer:?}: ran ahead only {last} bytes"
            );
            // The pieces that may wait, the one the digest check holds and the one filling.
            assert!(
                last <= PIECE * (PIECES_AHEAD + 2),
                "{consumer:?}: ran ahead {last} bytes"
            );
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            assert!(out == data, "{consumer:?}");
        }
    }

    #[test]
    fn a_small_blob_comes_whole_in_one_piece_read_in_place() {
        let rt = runtime();
        let (source, _) = Source::new(pattern(16));
        let mut reader = start(source, &rt, CancellationToken::new(), Consumer::Parses);
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
        for consumer in CONSUMERS {
            // Many more bytes than the pieces that may wait, so the download blocks and resumes.
            let data = pattern(PIECE * PIECES_AHEAD * 3 + 12_345);
            let (source, _) = Source::new(data.clone());
            let mut reader = start(source, &rt, CancellationToken::new(), consumer);
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
    }

    #[test]
    fn an_error_arrives_after_the_bytes_before_it() {
        let rt = runtime();
        for (size, consumer) in [
            (300_000, Consumer::Parses),
            (CHECKED_BESIDE, Consumer::Parses),
            (CHECKED_BESIDE, Consumer::Copies),
        ] {
            let data = pattern(size);
            let (mut source, _) = Source::new(data.clone());
            source.tail = Some(Error::new(ErrorKind::DigestMismatch, "bad bytes").into_io());
            let mut reader = start(source, &rt, CancellationToken::new(), consumer);
            let mut out = Vec::new();
            let err = reader.read_to_end(&mut out).unwrap_err();
            assert_eq!(out.len(), data.len(), "{size} bytes, {consumer:?}");
            assert!(out == data, "{size} bytes, {consumer:?}");
            assert_eq!(
                kind_of(&err),
                Some(ErrorKind::DigestMismatch),
                "{size} bytes, {consumer:?}"
            );
        }
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
        for (size, consumer) in [16, CHECKED_BESIDE]
            .into_iter()
            .flat_map(|size| CONSUMERS.map(|consumer| (size, consumer)))
        {
            let declared = descriptor_of(&pattern(size));
            let mut reader = ReadAhead::start(
                Box::pin(Panics),
                &declared,
                "test blob".into(),
                rt.handle().clone(),
                CancellationToken::new(),
                consumer,
            );
            let err = reader.read(&mut [0u8; 16]).unwrap_err();
            assert_eq!(
                kind_of(&err),
                Some(ErrorKind::Internal),
                "{size} bytes, {consumer:?}"
            );
        }
    }

    #[test]
    fn bytes_that_do_not_match_the_digest_end_in_an_error_never_an_end() {
        let rt = runtime();
        for size in [1000, CHECKED_BESIDE, PIECE * PIECES_AHEAD * 3] {
            for consumer in CONSUMERS {
                let data = pattern(size);
                let mut other = data.clone();
                other[size / 2] ^= 1;
                let (source, _) = Source::new(other);
                let declared = descriptor_of(&data);
                let mut reader =
                    start_as(source, &declared, &rt, CancellationToken::new(), consumer);
                let mut out = Vec::new();
                let err = reader.read_to_end(&mut out).unwrap_err();
                let case = format!("{size} bytes, {consumer:?}");
                assert_eq!(kind_of(&err), Some(ErrorKind::DigestMismatch), "{case}");
                assert!(
                    reader.read(&mut [0u8; 16]).is_err(),
                    "{case}: the end never comes after a mismatch"
                );
            }
        }
    }

    #[test]
    fn more_bytes_than_declared_fail_before_the_end() {
        let rt = runtime();
        for size in [1000, CHECKED_BESIDE] {
            for consumer in CONSUMERS {
                let data = pattern(size);
                let mut longer = data.clone();
                longer.extend_from_slice(&pattern(PIECE * PIECES_AHEAD * 2));
                let (mut source, _) = Source::new(longer);
                // Stalls after its bytes: only the size check can end the read.
                source.stall = true;
                let declared = descriptor_of(&data);
                let mut reader =
                    start_as(source, &declared, &rt, CancellationToken::new(), consumer);
                let mut out = Vec::new();
                let err = reader.read_to_end(&mut out).unwrap_err();
                let case = format!("{size} bytes, {consumer:?}");
                assert_eq!(kind_of(&err), Some(ErrorKind::DigestMismatch), "{case}");
                assert!(out.len() <= size, "{case}: {} handed out", out.len());
            }
        }
    }

    #[test]
    fn cancelling_stops_a_stalled_read_and_dropping_stops_the_download() {
        let rt = runtime();
        for size in [1000, CHECKED_BESIDE] {
            for consumer in CONSUMERS {
                stalled_reads_stop(&rt, size, consumer);
            }
        }
    }

    fn stalled_reads_stop(rt: &tokio::runtime::Runtime, size: usize, consumer: Consumer) {
        let (mut source, dropped) = Source::new(pattern(size));
        source.stall = true;
        let cancel = CancellationToken::new();
        let mut reader = start(source, rt, cancel.clone(), consumer);
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
