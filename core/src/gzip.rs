//! Gzip of a large layer on every core, with the two digests a layer needs (of its
//! uncompressed and of its compressed bytes) computed in the same pass.
//!
//! The input is cut into fixed blocks of [`BLOCK`] bytes, each deflated on its own (primed
//! with the 32 KiB before it, as pigz does) and ended with a sync flush, so the blocks
//! concatenate into one deflate stream inside one gzip member. Block size and dictionary
//! depend on the input alone, never on how many threads ran: the output is the same
//! bytes on every machine. Level 0 writes stored blocks directly, at the speed of a copy.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::digest::{Algorithm, Digest, Hasher};

/// Bytes of input deflated as one independent piece of work.
pub const BLOCK: usize = 1 << 20;
/// How far back deflate can refer: each block is primed with this much of the input before it.
const WINDOW: usize = 32 * 1024;
/// The largest stored deflate block.
const STORED_MAX: usize = 65_535;
/// Bytes hashed (and checksummed) at a time, so they are still in cache for the next pass.
const STEP: usize = 256 * 1024;
/// More deflate threads than this gain little against the hashing that runs beside them.
const MAX_WORKERS: usize = 8;

/// Bytes given as consecutive pieces (a tar header, the module, the end of the tar), so a
/// layer never needs copying into one buffer.
#[derive(Debug, Clone, Copy)]
pub struct Pieces<'a> {
    parts: &'a [&'a [u8]],
    len: usize,
}

impl<'a> Pieces<'a> {
    pub fn new(parts: &'a [&'a [u8]]) -> Pieces<'a> {
        Pieces {
            parts,
            len: parts.iter().map(|p| p.len()).sum(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes `start..end` of the whole: borrowed when they lie within one piece.
    pub fn range(&self, start: usize, end: usize) -> Cow<'a, [u8]> {
        assert!(start <= end && end <= self.len, "range out of bounds");
        let mut gathered = Vec::new();
        let mut offset = 0;
        for part in self.parts {
            let (part_start, part_end) = (offset, offset + part.len());
            offset = part_end;
            if part_end <= start || part.is_empty() {
                continue;
            }
            if part_start >= end {
                break;
            }
            let slice = &part[start.max(part_start) - part_start..end.min(part_end) - part_start];
            if gathered.is_empty() && slice.len() == end - start {
                return Cow::Borrowed(slice);
            }
            gathered.extend_from_slice(slice);
        }
        if start == end {
            return Cow::Borrowed(&[]);
        }
        Cow::Owned(gathered)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }
}

/// A gzip member and the digests of both sides of it.
pub struct Gzipped {
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: Digest,
    /// sha256 of the input.
    pub input_digest: Digest,
}

/// The gzip header flate2's `GzBuilder` writes with mtime 0 and OS 255 (unknown), so the
/// output depends on the bytes only.
fn header(level: Compression) -> [u8; 10] {
    let xfl = if level.level() >= Compression::best().level() {
        2
    } else if level.level() <= Compression::fast().level() {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Exact size of the stored (level 0) gzip of `len` bytes; also a bound for any level.
fn stored_size(len: usize) -> usize {
    10 + len + 5 * len.div_ceil(STORED_MAX).max(1) + 8
}

/// Gzips the input, deflating blocks on up to [`MAX_WORKERS`] threads while this one
/// assembles and hashes the output, and another hashes the input.
pub fn gzip(input: Pieces<'_>, level: Compression) -> Gzipped {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    gzip_on(input, level, workers)
}

/// [`gzip`] deflating on `workers` threads; the output does not depend on how many.
fn gzip_on(input: Pieces<'_>, level: Compression, workers: usize) -> Gzipped {
    let next_block = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let input_side = s.spawn(move || {
            let mut sha = Hasher::new(Algorithm::Sha256);
            let mut crc = Crc::new();
            for part in input.parts {
                for step in part.chunks(STEP) {
                    sha.update(step);
                    crc.update(step);
                }
            }
            (sha.finish(), crc.sum())
        });
        let mut out = Vec::with_capacity(stored_size(input.len()));
        out.extend_from_slice(&header(level));
        let mut sha = Hasher::new(Algorithm::Sha256);
        sha.update(&out);
        if level.level() == 0 {
            stored(input, &mut out, &mut sha);
        } else {
            deflated(s, input, level, workers, &next_block, &mut out, &mut sha);
        }
        let (input_digest, crc) = input_side
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let trailer_at = out.len();
        out.extend_from_slice(&crc.to_le_bytes());
        // ISIZE is the input length modulo 2^32.
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        sha.update(&out[trailer_at..]);
        out.shrink_to_fit();
        Gzipped {
            bytes: out,
            digest: sha.finish(),
            input_digest,
        }
    })
}

/// Stored blocks of up to 64 KiB, the last one final; output hashed as it is written.
fn stored(input: Pieces<'_>, out: &mut Vec<u8>, sha: &mut Hasher) {
    let mut hashed = out.len();
    let mut pos = 0;
    loop {
        let end = (pos + STORED_MAX).min(input.len());
        let last = end == input.len();
        let n = (end - pos) as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(&input.range(pos, end));
        pos = end;
        if out.len() - hashed >= STEP || last {
            sha.update(&out[hashed..]);
            hashed = out.len();
        }
        if last {
            return;
        }
    }
}

/// Blocks deflated on worker threads, appended and hashed here in order as they come.
fn deflated<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    input: Pieces<'scope>,
    level: Compression,
    workers: usize,
    next: &'scope AtomicUsize,
    out: &mut Vec<u8>,
    sha: &mut Hasher,
) {
    let blocks = input.len().div_ceil(BLOCK).max(1);
    let workers = workers.clamp(1, blocks);
    let (tx, rx) = mpsc::channel();
    for _ in 0..workers {
        let tx = tx.clone();
        s.spawn(move || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= blocks
                || tx
                    .send((k, deflate_block(input, k, blocks, level)))
                    .is_err()
            {
                return;
            }
        });
    }
    drop(tx);
    let mut waiting = BTreeMap::new();
    let mut wanted = 0;
    for (k, piece) in rx {
        waiting.insert(k, piece);
        while let Some(piece) = waiting.remove(&wanted) {
            sha.update(&piece);
            out.extend_from_slice(&piece);
            wanted += 1;
        }
    }
    // Fewer blocks means a worker panicked; the scope re-raises that panic.
}

/// Raw deflate of block `k`, primed with the window before it, ended with a sync flush
/// (byte-aligned, not final) or, for the last block, finished.
fn deflate_block(input: Pieces<'_>, k: usize, blocks: usize, level: Compression) -> Vec<u8> {
    let start = k * BLOCK;
    let end = (start + BLOCK).min(input.len());
    let data = input.range(start, end);
    let mut deflate = Compress::new(level, false);
    if start > 0 {
        deflate
            .set_dictionary(&input.range(start.saturating_sub(WINDOW), start))
            .expect("a raw deflate stream takes a dictionary before any input");
    }
    let flush = if k + 1 == blocks {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut piece = Vec::with_capacity(data.len() / 2 + 1024);
    let mut consumed = 0;
    loop {
        if piece.capacity() - piece.len() < 1024 {
            piece.reserve(piece.capacity().max(64 * 1024));
        }
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(&data[consumed..], &mut piece, flush)
            .expect("deflating bytes in memory");
        consumed += (deflate.total_in() - before) as usize;
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A flush is complete once deflate stops with output space to spare.
            _ => consumed == data.len() && piece.len() < piece.capacity(),
        };
        if done {
            return piece;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// Text-like bytes: a random sequence of words from a small vocabulary.
    fn compressible(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words: Vec<[u8; 6]> = (0..2048)
            .map(|_| next().to_le_bytes()[..6].try_into().unwrap())
            .collect();
        let mut out = Vec::with_capacity(len + 6);
        while out.len() < len {
            out.extend_from_slice(&words[(next() & 2047) as usize]);
        }
        out.truncate(len);
        out
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    fn system_gunzip(gz: &[u8]) -> Vec<u8> {
        let mut child = std::process::Command::new("gzip")
            .args(["-d", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip is installed");
        let mut stdin = child.stdin.take().unwrap();
        let gz = gz.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&gz).unwrap());
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(output.status.success(), "gzip -d failed");
        output.stdout
    }

    fn sha(data: &[u8]) -> Digest {
        Digest::sha256_of(data)
    }

    #[test]
    fn pieces_ranges_cross_boundaries() {
        let parts: [&[u8]; 4] = [b"abc", b"", b"defg", b"h"];
        let p = Pieces::new(&parts);
        assert_eq!(p.len(), 8);
        let whole = p.to_vec();
        for start in 0..=8 {
            for end in start..=8 {
                assert_eq!(&p.range(start, end)[..], &whole[start..end]);
            }
        }
        assert!(matches!(p.range(3, 7), Cow::Borrowed(b"defg")));
    }

    #[test]
    fn compressed_blocks_round_trip_and_are_reproducible() {
        // 3.5 blocks, split unevenly into pieces so blocks straddle them.
        let data = compressible(3 * BLOCK + BLOCK / 2);
        let parts: [&[u8]; 3] = [
            &data[..512],
            &data[512..2 * BLOCK + 7],
            &data[2 * BLOCK + 7..],
        ];
        let gz = gzip(Pieces::new(&parts), Compression::default());
        assert_eq!(gz.input_digest, sha(&data));
        assert_eq!(gz.digest, sha(&gz.bytes));
        assert!(gz.bytes.len() < data.len() / 2);
        assert!(gunzip(&gz.bytes) == data);
        assert!(system_gunzip(&gz.bytes) == data);
        for workers in [1, 3] {
            let again = gzip_on(Pieces::new(&[&data]), Compression::default(), workers);
            assert!(
                again.bytes == gz.bytes,
                "output depends on the bytes only, not the pieces or threads"
            );
        }
        // One gzip member: a plain (single-member) decoder reads it all.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
    }

    #[test]
    fn stored_blocks_round_trip() {
        for len in [
            0,
            1,
            STORED_MAX - 1,
            STORED_MAX,
            STORED_MAX + 1,
            2 * BLOCK + 3,
        ] {
            let data = compressible(len);
            let (a, b) = data.split_at(len / 3);
            let gz = gzip(Pieces::new(&[a, b]), Compression::none());
            assert_eq!(gz.bytes.len(), stored_size(len), "{len}");
            assert_eq!(gz.input_digest, sha(&data));
            assert_eq!(gz.digest, sha(&gz.bytes));
            assert!(gunzip(&gz.bytes) == data, "{len}");
            assert!(system_gunzip(&gz.bytes) == data, "{len}");
        }
    }

    #[test]
    fn empty_input() {
        for level in [Compression::none(), Compression::default()] {
            let gz = gzip(Pieces::new(&[]), level);
            assert_eq!(gunzip(&gz.bytes), b"");
            assert_eq!(system_gunzip(&gz.bytes), b"");
        }
    }
}
