//! Carries out a format's [`Plan`]: streams the module out of its layer into memory or a
//! file, bounded by the limits, with every layer read verified to its end.

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::digest::{Algorithm, Descriptor, Digest, Hasher};
use crate::embed::buffer::{ModuleAllocator, ModuleBuffer};
use crate::error::{Error, Result};
use crate::files;
use crate::formats::{ModuleSource, Plan, TarTarget};
use crate::image::RuntimeConfig;
use crate::limits::Limits;
use crate::media_types::{self as mt, Compression};
use crate::module_facts::check_wasm_header;
use crate::store::tar_safety::HeaderBudget;
use crate::store::verified::{BlobOpener, SyncBlob};

/// The most a module is copied or filled in at a time out of a tar entry: big reads keep
/// the per-read costs of tar and the decompressors small next to the bytes.
const CHUNK: usize = 1 << 20;

/// Copies through a buffer no larger than `size`, the most that should come: a small
/// module costs a small buffer.
fn copy_in_chunks(reader: &mut impl Read, writer: &mut impl Write, size: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; size.clamp(1, CHUNK as u64) as usize];
    let mut total = 0;
    loop {
        let n = match read_retrying(reader, &mut buf)? {
            0 => return Ok(total),
            n => n,
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Where the module goes.
#[derive(Clone)]
pub enum Destination {
    Memory,
    /// Memory the caller provides, of the module's exact size.
    Buffer(ModuleAllocator),
    /// Written to a temporary file beside the path and renamed into place only when
    /// everything checked out.
    File(PathBuf),
}

enum SinkOut {
    /// Memory of the module's exact size (ours or the caller's), filled in place.
    Memory {
        buffer: Box<dyn ModuleBuffer>,
        filled: usize,
    },
    File(tempfile::NamedTempFile),
}

/// Receives module bytes: bounded, hashed unless the digest is already known, header kept.
struct ModuleSink {
    out: SinkOut,
    seen: Seen,
}

/// What the sink checks and remembers of the bytes going through it.
struct Seen {
    hasher: Option<Hasher>,
    /// The size announced for the module.
    expected: u64,
    size: u64,
    limit: u64,
    head: Vec<u8>,
}

impl Seen {
    fn take(&mut self, data: &[u8]) -> io::Result<()> {
        if self.size + data.len() as u64 > self.limit {
            return Err(Error::limit_exceeded(format!(
                "the module is larger than the limit of {} bytes",
                self.limit
            ))
            .into_io());
        }
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
        self.size += data.len() as u64;
        Ok(())
    }
}

/// Module memory of our own, for callers that bring none.
pub(crate) struct OwnedBuffer(pub(crate) Vec<u8>);

impl ModuleBuffer for OwnedBuffer {
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn freeze(self: Box<Self>) -> Bytes {
        Bytes::from(self.0)
    }
}

fn more_bytes_than_announced(size: usize) -> io::Error {
    Error::new(
        crate::ErrorKind::DigestMismatch,
        format!("the module has more bytes than the {size} announced"),
    )
    .into_io()
}

impl ModuleSink {
    /// `size` is the module's exact size, as its layer or tar header declares it; the
    /// callers have checked it against the limit.
    fn new(destination: &Destination, size: u64, limit: u64, hash: bool) -> Result<ModuleSink> {
        let exact = size.min(limit) as usize;
        let out = match destination {
            // Zeroed memory comes from the kernel already zero, so this writes nothing.
            Destination::Memory => SinkOut::Memory {
                buffer: Box::new(OwnedBuffer(crate::limits::zeroed_bytes(
                    exact as u64,
                    "the module",
                )?)),
                filled: 0,
            },
            Destination::Buffer(allocate) => SinkOut::Memory {
                buffer: allocate(exact)?,
                filled: 0,
            },
            Destination::File(path) => {
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                // The module file gets the mode any new file would (0666 less the umask),
                // not the 0600 of a private temporary file.
                let file = files::temp_file_in(&dir, ".partial", 0o666).map_err(|e| {
                    Error::io(format!("cannot create a file in {}", dir.display()), e)
                })?;
                SinkOut::File(file)
            }
        };
        Ok(ModuleSink {
            out,
            seen: Seen {
                hasher: hash.then(|| Hasher::new(Algorithm::Sha256)),
                expected: size,
                size: 0,
                limit,
                head: Vec::with_capacity(8),
            },
        })
    }

    /// Reads the module to the reader's end. Into memory, bytes are read straight into
    /// their place: no bounce buffer, so each byte is copied once.
    fn fill_from(&mut self, reader: &mut impl Read) -> io::Result<()> {
        let ModuleSink { out, seen } = self;
        let (buffer, filled) = match out {
            SinkOut::File(f) => {
                let most = seen.limit.min(seen.expected);
                let mut writer = SeenWriter {
                    file: f,
                    seen,
                    written: 0,
                    writeback_from: 0,
                };
                return copy_in_chunks(reader, &mut writer, most).map(drop);
            }
            SinkOut::Memory { buffer, filled } => (buffer, filled),
        };
        let size = buffer.size();
        loop {
            if *filled == size {
                // One more read: it must find the end (and lets a verifying reader check
                // the digest there).
                let mut probe = [0u8; 1];
                return match read_retrying(reader, &mut probe)? {
                    0 => Ok(()),
                    _ => Err(more_bytes_than_announced(size)),
                };
            }
            let end = size.min(*filled + CHUNK);
            // Asked for as bytes arrive, so memory is committed only for what came.
            let slot = buffer.slice_mut(*filled..end);
            let n = read_retrying(reader, slot)?;
            if n == 0 {
                return Ok(());
            }
            seen.take(&slot[..n])?;
            *filled += n;
        }
    }

    /// Takes the blob's bytes where they lie in the read-ahead's pieces: into memory
    /// with the one copy that puts them in place, into a file with none of ours (each
    /// piece is written as it is, no bounce buffer).
    fn fill_from_blob(&mut self, blob: &mut SyncBlob) -> io::Result<()> {
        let ModuleSink { out, seen } = self;
        match out {
            SinkOut::File(file) => {
                let mut writer = SeenWriter {
                    file,
                    seen,
                    written: 0,
                    writeback_from: 0,
                };
                loop {
                    let piece = blob.fill_buf()?;
                    if piece.is_empty() {
                        return Ok(());
                    }
                    writer.write_all(piece)?;
                    let n = piece.len();
                    blob.consume(n);
                }
            }
            SinkOut::Memory { buffer, filled } => {
                let size = buffer.size();
                loop {
                    let piece = blob.fill_buf()?;
                    if piece.is_empty() {
                        return Ok(());
                    }
                    let end = *filled + piece.len();
                    if end > size {
                        return Err(more_bytes_than_announced(size));
                    }
                    seen.take(piece)?;
                    buffer.fill(*filled, piece);
                    *filled = end;
                    let n = piece.len();
                    blob.consume(n);
                }
            }
        }
    }

    fn finish(
        self,
        known_digest: Option<&Digest>,
        destination: &Destination,
        what: &str,
    ) -> Result<Extracted> {
        check_wasm_header(&self.seen.head, what)?;
        let digest = match (self.seen.hasher, known_digest) {
            (Some(h), _) => h.finish(),
            (None, Some(d)) => d.clone(),
            (None, None) => {
                return Err(Error::internal("module digest neither computed nor known"))
            }
        };
        let module = match (self.out, destination) {
            (SinkOut::Memory { mut buffer, filled }, _) => {
                if filled != buffer.size() {
                    return Err(Error::internal(format!(
                        "{what}: {filled} bytes arrived for a module of {} bytes",
                        buffer.size()
                    )));
                }
                Some(buffer.freeze())
            }
            (SinkOut::File(f), Destination::File(path)) => {
                files::commit(f, path, files::Existing::Replace)
                    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                None
            }
            (SinkOut::File(_), _) => unreachable!("a file sink is built for a file destination"),
        };
        Ok(Extracted {
            module,
            digest,
            size: self.seen.size,
            runtime_config: None,
        })
    }
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The file side of a sink: bytes are checked, then written.
struct SeenWriter<'a> {
    file: &'a mut tempfile::NamedTempFile,
    seen: &'a mut Seen,
    written: u64,
    writeback_from: u64,
}

/// How much written data may wait before the disk is asked to start on it: the final
/// fsync waits for at most this much (about a millisecond at 2 MiB; four at 8 MiB).
const WRITEBACK_EVERY: u64 = 2 << 20;

impl SeenWriter<'_> {
    /// Starts writing to disk what was written so far, without waiting: the fsync that
    /// makes the module durable then finds little left to do, instead of writing the
    /// whole module after the download.
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor of our open file and a range inside what we
            // wrote; SYNC_FILE_RANGE_WRITE only schedules writeback.
            unsafe {
                libc::sync_file_range(
                    self.file.as_file().as_raw_fd(),
                    self.writeback_from as libc::off64_t,
                    (self.written - self.writeback_from) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.writeback_from = self.written;
    }
}

impl Write for SeenWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.seen.take(buf)?;
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        if self.written - self.writeback_from >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Cloning shares the module's `Bytes` (reference counted): no module bytes are copied.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The module when extracted into memory.
    pub module: Option<Bytes>,
    pub digest: Digest,
    pub size: u64,
    /// `runtime-config.json` found beside the module in a compat layer.
    pub runtime_config: Option<RuntimeConfig>,
}

/// Turns an I/O error from inside tar or a decompressor into ours: our own errors (digest,
/// limits, cancellation) pass through, anything else means the layer is malformed.
fn layer_error(err: io::Error, layer: &Descriptor, what: &str) -> Error {
    match Error::find_in_io(&err) {
        Some(ours) => ours,
        None => Error::invalid_format(format!(
            "layer {} ({}): {what}: {err}",
            layer.digest, layer.media_type
        )),
    }
}

pub fn extract(
    plan: &Plan,
    opener: &BlobOpener,
    limits: &Limits,
    destination: &Destination,
) -> Result<Extracted> {
    let what = opener.describe();
    match &plan.source {
        ModuleSource::Raw(layer) => {
            if layer.size > limits.max_module_bytes {
                return Err(Error::limit_exceeded(format!(
                    "{what}: module layer {} is {} bytes, more than the limit of {}",
                    layer.digest, layer.size, limits.max_module_bytes
                )));
            }
            // The verified layer digest is the module digest when both are sha256.
            let known = (layer.digest.algorithm() == Algorithm::Sha256).then_some(&layer.digest);
            let mut sink = ModuleSink::new(
                destination,
                layer.size,
                limits.max_module_bytes,
                known.is_none(),
            )?;
            let mut blob = opener.open_for_copy(layer)?;
            sink.fill_from_blob(&mut blob).map_err(Error::from_io)?;
            sink.finish(
                known,
                destination,
                &format!("{what}: module layer {}", layer.digest),
            )
        }
        ModuleSource::InTar {
            layers,
            target,
            runtime_config_file,
        } => {
            for layer in layers {
                let compression =
                    mt::tar_layer_compression(&layer.media_type).unwrap_or(Compression::None);
                if let Some(found) = search_layer(
                    layer,
                    compression,
                    target,
                    *runtime_config_file,
                    opener,
                    limits,
                    destination,
                )? {
                    return Ok(found);
                }
            }
            let wanted = match target {
                TarTarget::BaseName(name) => name.to_string(),
                TarTarget::Path(p) => p.clone(),
            };
            Err(Error::invalid_format(format!(
                "{what}: no regular file {wanted:?} in any of the {} tar layers",
                layers.len()
            )))
        }
    }
}

/// Decompressors that read the blob's pieces in place (`BufRead`), with no buffer between.
enum Decoder<R: io::BufRead> {
    Plain(R),
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, R>>),
}

impl<R: io::BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// Fails once more than `limit` decompressed bytes were read: a decompression bomb stops
/// here instead of filling memory or disk.
struct Bounded<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.remaining {
            return Err(Error::limit_exceeded(format!(
                "a layer decompresses to more than the limit of {} bytes",
                self.limit
            ))
            .into_io());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A tar path made relative: `./a/b`, `/a/b` and `a/b` are the same; `..` is refused.
fn normalize(path: &Path) -> std::result::Result<String, ()> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            std::path::Component::ParentDir | std::path::Component::Prefix(_) => return Err(()),
        }
    }
    Ok(parts.join("/"))
}

fn target_matches(target: &TarTarget, path: &Path) -> bool {
    match target {
        TarTarget::BaseName(name) => path.file_name().is_some_and(|n| n == *name),
        TarTarget::Path(wanted) => match normalize(path) {
            Ok(p) => p == normalize(Path::new(wanted)).unwrap_or_default(),
            // An escaping path named like the target matches, so it is reported as an
            // error rather than skipped.
            Err(()) => path.file_name() == Path::new(wanted).file_name(),
        },
    }
}

fn search_layer(
    layer: &Descriptor,
    compression: Compression,
    target: &TarTarget,
    want_runtime_config: bool,
    opener: &BlobOpener,
    limits: &Limits,
    destination: &Destination,
) -> Result<Option<Extracted>> {
    let mut blob = opener.open(layer)?;
    // Finished only after the whole layer was verified, so no file appears before that.
    let mut module: Option<(ModuleSink, String)> = None;
    let mut runtime_config: Option<Vec<u8>> = None;
    {
        // The blob is read in place, a piece at a time, whatever sizes tar and the
        // decompressors ask for: small reads cost no trip to the runtime.
        let decoder = match compression {
            Compression::None => Decoder::Plain(&mut blob),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(&mut blob)))
            }
            Compression::Zstd => Decoder::Zstd(Box::new(
                zstd::stream::read::Decoder::with_buffer(&mut blob)
                    .map_err(|e| layer_error(e, layer, "cannot start zstd"))?,
            )),
        };
        let bounded = Bounded {
            inner: decoder,
            remaining: limits.max_decompressed_bytes,
            limit: limits.max_decompressed_bytes,
        };
        let budget = HeaderBudget::default();
        let mut archive = tar::Archive::new(budget.reader(bounded));
        let mut entries = archive
            .entries()
            .map_err(|e| layer_error(e, layer, "not a valid tar"))?;
        let mut count = 0u64;
        while let Some(entry) = budget.next_entry(&mut entries) {
            let mut entry =
                entry.map_err(|e| layer_error(e, layer, "corrupt tar or compressed data"))?;
            count += 1;
            if count > limits.max_tar_entries {
                return Err(Error::limit_exceeded(format!(
                    "layer {} has more than the limit of {} tar entries",
                    layer.digest, limits.max_tar_entries
                )));
            }
            let path = entry
                .path()
                .map_err(|e| layer_error(e, layer, "bad tar entry name"))?
                .into_owned();
            let kind = entry.header().entry_type();
            let regular = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
            // The entry's data is read to its end below, so only headers are read while
            // the next entry is looked for (see `HeaderBudget`).
            'entry: {
                if target_matches(target, &path) {
                    let shown = path.display().to_string();
                    if !regular {
                        return Err(Error::invalid_format(format!(
                        "layer {}: {shown:?} is a {} entry, not a regular file; links are never followed",
                        layer.digest,
                        entry_kind_name(kind)
                    )));
                    }
                    if normalize(&path).is_err() {
                        return Err(Error::invalid_format(format!(
                            "layer {}: {shown:?} has a path that escapes the image root",
                            layer.digest
                        )));
                    }
                    if module.is_some() {
                        break 'entry;
                    }
                    // The entry's size, a PAX `size` record included, not the header's field.
                    let size = entry.size();
                    if size > limits.max_module_bytes {
                        return Err(Error::limit_exceeded(format!(
                            "layer {}: {shown:?} is {size} bytes, more than the module limit of {}",
                            layer.digest, limits.max_module_bytes
                        )));
                    }
                    let mut sink =
                        ModuleSink::new(destination, size, limits.max_module_bytes, true)?;
                    sink.fill_from(&mut entry)
                        .map_err(|e| layer_error(e, layer, "cannot read the module"))?;
                    module = Some((sink, format!("{shown:?} in layer {}", layer.digest)));
                } else if want_runtime_config
                    && regular
                    && runtime_config.is_none()
                    && path
                        .file_name()
                        .is_some_and(|n| n == mt::COMPAT_RUNTIME_CONFIG_FILE)
                    && normalize(&path).is_ok()
                {
                    let too_big = || {
                        Error::limit_exceeded(format!(
                            "layer {}: runtime-config.json is more than the limit of {} bytes",
                            layer.digest, limits.max_metadata_bytes
                        ))
                    };
                    if entry.size() > limits.max_metadata_bytes {
                        return Err(too_big());
                    }
                    // Read through the limit whatever the headers say.
                    let mut data = Vec::new();
                    (&mut entry)
                        .take(limits.max_metadata_bytes.saturating_add(1))
                        .read_to_end(&mut data)
                        .map_err(|e| layer_error(e, layer, "cannot read runtime-config.json"))?;
                    if data.len() as u64 > limits.max_metadata_bytes {
                        return Err(too_big());
                    }
                    runtime_config = Some(data);
                }
            }
            io::copy(&mut entry, &mut io::sink())
                .map_err(|e| layer_error(e, layer, "corrupt tar or compressed data"))?;
        }
        // Read what follows the tar's end so the decompressor checks its trailer.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink())
            .map_err(|e| layer_error(e, layer, "corrupt data after the tar"))?;
    }
    // The layer's digest is known only once its last byte has been read.
    loop {
        let rest = blob
            .fill_buf()
            .map_err(|e| layer_error(e, layer, "cannot read the layer"))?;
        if rest.is_empty() {
            break;
        }
        let n = rest.len();
        blob.consume(n);
    }
    match module {
        Some((sink, what)) => {
            let mut found = sink.finish(None, destination, &what)?;
            if let Some(data) = runtime_config {
                found.runtime_config = Some(RuntimeConfig::parse(&data).map_err(|e| {
                    e.context(format!("runtime-config.json in layer {}", layer.digest))
                })?);
            }
            Ok(Some(found))
        }
        None => Ok(None),
    }
}

fn entry_kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Directory => "directory",
        tar::EntryType::Fifo => "FIFO",
        _ => "special",
    }
}
