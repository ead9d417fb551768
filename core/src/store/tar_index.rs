//! An index of a tar's entries by path, so files are served from their offsets without
//! extracting anything; links are followed within the archive only, never on disk.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, Result};
use crate::store::layout::MAX_JSON_BYTES;
use crate::store::tar_safety::{
    bad_tar, checked_entries, entry_components, reject_compressed, HeaderBudget,
};

/// Most links followed to find one file.
const MAX_LINK_HOPS: usize = 16;

/// Where a file lies in the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

pub(crate) enum Entry {
    File(Span),
    Symlink(PathBuf),
    HardLink(PathBuf),
    Other(tar::EntryType),
}

/// The tar's index and an open handle on it.
pub(crate) struct TarIndex {
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    file: fs::File,
    pub(crate) entries: HashMap<String, Entry>,
}

impl TarIndex {
    pub(crate) fn new(path: PathBuf, name: String) -> Result<TarIndex> {
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::invalid_argument(format!(
                    "{name}: {} is a directory, not a docker-archive tarball",
                    path.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!(
                    "{name}: archive {} does not exist",
                    path.display()
                )))
            }
            Err(e) => return Err(Error::io(format!("{name}: reading {}", path.display()), e)),
        }
        let mut file = fs::File::open(&path)
            .map_err(|e| Error::io(format!("{name}: opening the archive"), e))?;
        reject_compressed(&mut file, &name)?;
        let bad_tar = bad_tar(&name);
        let mut entries = HashMap::new();
        let budget = HeaderBudget::default();
        let mut archive = tar::Archive::new(budget.reader(BufReader::new(&file)));
        let all = archive.entries_with_seek().map_err(&bad_tar)?;
        for checked in checked_entries(all, budget.clone(), &name) {
            let (entry, components) = checked?;
            let link = || -> Result<PathBuf> {
                Ok(entry
                    .link_name()
                    .map_err(&bad_tar)?
                    .map(|l| l.into_owned())
                    .unwrap_or_default())
            };
            let indexed = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Entry::File(Span {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                }),
                tar::EntryType::Symlink => Entry::Symlink(link()?),
                tar::EntryType::Link => Entry::HardLink(link()?),
                tar::EntryType::Directory
                | tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader => continue,
                other => Entry::Other(other),
            };
            entries.insert(components.join("/"), indexed);
        }
        drop(archive);
        drop(bad_tar);
        Ok(TarIndex {
            path,
            name,
            file,
            entries,
        })
    }

    /// Finds the regular file a path names, following links within the archive.
    pub(crate) fn find(&self, path: &str) -> Result<Span> {
        let escapes = || {
            Error::invalid_format(format!(
                "{}: {path:?} leads outside the archive; refusing it",
                self.name
            ))
        };
        let mut current = entry_components(Path::new(path)).ok_or_else(escapes)?;
        for _ in 0..MAX_LINK_HOPS {
            match self.entries.get(&current.join("/")) {
                None => {
                    return Err(Error::invalid_format(format!(
                        "{}: {path:?} is named in manifest.json but is not in the archive",
                        self.name
                    )))
                }
                Some(Entry::File(span)) => return Ok(*span),
                Some(Entry::Symlink(target)) => {
                    current.pop();
                    current = join_inside(current, target).ok_or_else(escapes)?;
                }
                Some(Entry::HardLink(target)) => {
                    current = join_inside(Vec::new(), target).ok_or_else(escapes)?
                }
                Some(Entry::Other(kind)) => {
                    return Err(Error::invalid_format(format!(
                        "{}: {path:?} is a {kind:?} entry, not a file",
                        self.name
                    )))
                }
            }
        }
        Err(Error::invalid_format(format!(
            "{}: {path:?} goes through more than {MAX_LINK_HOPS} links",
            self.name
        )))
    }

    fn reader(&self, span: Span) -> Result<io::Take<&fs::File>> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(span.offset))
            .map_err(|e| Error::io(format!("{}: reading the archive", self.name), e))?;
        Ok(file.take(span.size))
    }

    pub(crate) fn read_small(&self, span: Span, what: &str) -> Result<Vec<u8>> {
        if span.size > MAX_JSON_BYTES {
            return Err(Error::limit_exceeded(format!(
                "{}: {what} is {} bytes, more than the {MAX_JSON_BYTES} allowed",
                self.name, span.size
            )));
        }
        let mut data = Vec::with_capacity(span.size as usize);
        self.reader(span)?
            .read_to_end(&mut data)
            .map_err(|e| Error::io(format!("{}: reading {what}", self.name), e))?;
        self.check_complete(data.len() as u64, span)?;
        Ok(data)
    }

    fn check_complete(&self, read: u64, span: Span) -> Result<()> {
        if read == span.size {
            Ok(())
        } else {
            Err(Error::invalid_format(format!(
                "{}: the archive is truncated",
                self.name
            )))
        }
    }

    /// The digest of a file in the tar, and its first bytes (to tell gzip from tar).
    pub(crate) fn hash(&self, span: Span, what: &str) -> Result<(Digest, [u8; 2])> {
        let mut reader = self.reader(span)?;
        let mut hasher = Hasher::new(Algorithm::Sha256);
        let mut buffer = vec![0u8; 256 * 1024];
        let mut magic = [0u8; 2];
        let mut read = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(format!("{}: reading {what}", self.name), e)),
            };
            if read < magic.len() as u64 {
                let start = read as usize;
                let take = (magic.len() - start).min(n);
                magic[start..start + take].copy_from_slice(&buffer[..take]);
            }
            hasher.update(&buffer[..n]);
            read += n as u64;
        }
        self.check_complete(read, span)?;
        Ok((hasher.finish(), magic))
    }
}

/// Resolves a link target against the components of the directory holding the link,
/// staying inside the archive.
fn join_inside(mut base: Vec<String>, target: &Path) -> Option<Vec<String>> {
    for component in target.components() {
        match component {
            std::path::Component::Normal(part) => base.push(part.to_str()?.to_string()),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                base.pop()?;
            }
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return None,
        }
    }
    Some(base)
}
