//! What both archive readers (`oci-archive:` and `docker-archive:`) enforce on a tar
//! before trusting any entry: a bound on the number of entries, entry paths that stay
//! inside the archive, and a clear refusal of compressed archives.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path};

use crate::error::{Error, Result};

/// Most entries looked at in an archive.
pub(crate) const MAX_ARCHIVE_ENTRIES: usize = 100_000;

/// The error for a tar that cannot be read.
pub(crate) fn bad_tar(name: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::invalid_format(format!("{name}: not a readable tar archive: {e}"))
}

/// The entries of a tar with their checked paths: at most [`MAX_ARCHIVE_ENTRIES`] of
/// them, each path made of normal components only (`.` dropped).
pub(crate) fn checked_entries<'a, R, I>(
    entries: I,
    name: &'a str,
) -> impl Iterator<Item = Result<(tar::Entry<'a, R>, Vec<String>)>> + 'a
where
    R: Read + 'a,
    I: Iterator<Item = io::Result<tar::Entry<'a, R>>> + 'a,
{
    entries.enumerate().map(move |(count, entry)| {
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
