//! What both archive readers (`oci-archive:` and `docker-archive:`) enforce on a tar
//! before trusting any entry: a bound on the number of entries, entry paths that stay
//! inside the archive, and a clear refusal of compressed archives.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path};

use crate::error::{Error, Result};

/// Most entries looked at in an archive.
pub(crate) const MAX_ARCHIVE_ENTRIES: usize = 100_000;

/// Most bytes read to reach one entry: its header and the records before it (GNU long
/// names and links, PAX headers), which the tar reader keeps in memory whole, plus the
/// padding of the entry before. Real records are a few hundred bytes; without a bound, a
/// 1 MB gzip layer declaring a 900 MiB long name costs 900 MiB of memory.
pub(crate) const MAX_TAR_HEADER_BYTES: u64 = 256 * 1024;

/// A reader under `tar::Archive` that fails once more than [`MAX_TAR_HEADER_BYTES`] are
/// read while the archive looks for its next entry (see [`HeaderBudget`]).
pub(crate) struct HeaderBounded<R> {
    inner: R,
    budget: HeaderBudget,
}

/// The switch shared by a [`HeaderBounded`] reader and the loop over the entries: on
/// while the tar reader parses headers, off while the caller reads an entry's data.
#[derive(Clone, Default)]
pub(crate) struct HeaderBudget(std::rc::Rc<std::cell::Cell<Option<u64>>>);

impl HeaderBudget {
    pub(crate) fn reader<R>(&self, inner: R) -> HeaderBounded<R> {
        HeaderBounded {
            inner,
            budget: self.clone(),
        }
    }

    /// The next entry of `entries`, reading at most [`MAX_TAR_HEADER_BYTES`] to reach it.
    /// Callers of a non-seekable archive read (or drain) each entry's data before asking
    /// for the next, so only headers and padding are read here.
    pub(crate) fn next_entry<I: Iterator>(&self, entries: &mut I) -> Option<I::Item> {
        self.0.set(Some(MAX_TAR_HEADER_BYTES));
        let next = entries.next();
        self.0.set(None);
        next
    }
}

impl<R: Read> Read for HeaderBounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(left) = self.budget.0.get() else {
            return self.inner.read(buf);
        };
        let n = self.inner.read(buf)?;
        if n as u64 > left {
            return Err(Error::limit_exceeded(format!(
                "a tar entry's header records (long names, PAX headers) take more than {MAX_TAR_HEADER_BYTES} bytes"
            ))
            .into_io());
        }
        self.budget.0.set(Some(left - n as u64));
        Ok(n)
    }
}

impl<R: Seek> Seek for HeaderBounded<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The error for a tar that cannot be read; our own errors (a bound reached) keep their kind.
pub(crate) fn bad_tar(name: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |e| match Error::find_in_io(&e) {
        Some(ours) => ours.context(name),
        None => Error::invalid_format(format!("{name}: not a readable tar archive: {e}")),
    }
}

/// The entries of a tar with their checked paths: at most [`MAX_ARCHIVE_ENTRIES`] of
/// them, each path made of normal components only (`.` dropped), each reached within
/// `budget` (the archive reads through `budget.reader`, and skips by seeking).
pub(crate) fn checked_entries<'a, R, I>(
    mut entries: I,
    budget: HeaderBudget,
    name: &'a str,
) -> impl Iterator<Item = Result<(tar::Entry<'a, R>, Vec<String>)>> + 'a
where
    R: Read + 'a,
    I: Iterator<Item = io::Result<tar::Entry<'a, R>>> + 'a,
{
    std::iter::from_fn(move || budget.next_entry(&mut entries))
        .enumerate()
        .map(move |(count, entry)| {
        if count >= MAX_ARCHIVE_ENTRIES {
            return Err(Error::limit_exceeded(format!(
                "{name}: the archive has more than {MAX_ARCHIVE_ENTRIES} entries"
            )));
        }
        let entry = entry.map_err(bad_tar(name))?;
        let raw_path = entry.path().map_err(bad_tar(name))?.into_owned();
        let Some(components) = entry_components(&raw_path) else {
            return Err(Error::invalid_format(format!(
                "{name}: entry {:?} has an absolute path, a \"..\" or a name that is not UTF-8; refusing the archive",
                raw_path.display().to_string()
            )));
        };
        Ok((entry, components))
    })
}

/// The normal components of a tar entry path, `.` dropped; `None` for an absolute path,
/// a `..`, or a name that is not UTF-8.
pub(crate) fn entry_components(path: &Path) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Rejects a compressed file with a message saying what to do.
pub(crate) fn reject_compressed(file: &mut fs::File, name: &str) -> Result<()> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match file.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("{name}: reading the archive"), e)),
        }
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("{name}: reading the archive"), e))?;
    let compression = match magic {
        [0x1f, 0x8b, ..] => "gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "zstd",
        _ => return Ok(()),
    };
    Err(Error::invalid_format(format!(
        "{name}: the archive is {compression}-compressed; decompress it to a plain tar first"
    )))
}

pub(crate) fn describe_entry_type(entry_type: tar::EntryType) -> &'static str {
    match entry_type {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Directory => "directory",
        tar::EntryType::Regular | tar::EntryType::Continuous => "regular file",
        tar::EntryType::Char | tar::EntryType::Block => "device",
        tar::EntryType::Fifo => "named pipe",
        _ => "special entry",
    }
}
