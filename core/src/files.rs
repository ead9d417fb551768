//! Files on the local disk: the one way a file appears (a temporary file beside its
//! target, fsync, rename, fsync of the directory, so a reader sees the whole file or
//! none and a crash leaves no partial file under the target's name), bounded reads, and
//! reading the caller's own input files with the error kinds every binding reports.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Names of temporary files start with this, so a reader of a directory can skip them.
pub const TEMP_PREFIX: &str = ".wasm-image-";

/// A temporary file in `dir` (so the rename into place is atomic) with the permission
/// bits the final file should have (less the umask).
pub fn temp_file_in(dir: &Path, suffix: &str, mode: u32) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.tempfile_in(dir)
}

/// Whether committing over an existing file replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Replace,
    /// Leave the existing file alone (content-addressed files are equal by name).
    Keep,
}

/// Makes a finished temporary file appear at `target`, durably: its data is synced, it is
/// renamed into place, and the directory is synced so the rename survives a crash.
/// Returns `false` when `Existing::Keep` found a file there (the temporary is removed).
pub fn commit(mut temp: NamedTempFile, target: &Path, existing: Existing) -> io::Result<bool> {
    temp.flush()?;
    temp.as_file().sync_all()?;
    match existing {
        Existing::Replace => {
            temp.persist(target).map_err(|e| e.error)?;
        }
        Existing::Keep => match temp.persist_noclobber(target) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e.error),
        },
    }
    if let Some(dir) = target.parent() {
        sync_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })?;
    }
    Ok(true)
}

/// Writes `target` from bytes in memory, the same way (see [`commit`]).
pub fn write_atomic(target: &Path, data: &[u8], existing: Existing) -> io::Result<bool> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut temp = temp_file_in(dir, ".tmp", 0o644)?;
    temp.write_all(data)?;
    commit(temp, target, existing)
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Opens a file of a store's directory (a layout's `oci-layout`, `index.json`, manifests
/// and blobs) for reading; `what` names the store in messages. Only a regular file is
/// accepted: a symbolic link is not followed (`O_NOFOLLOW`) and a FIFO, device or
/// directory is refused, all as `INVALID_FORMAT`. The open itself never waits
/// (`O_NONBLOCK`): opening a FIFO for reading would wait for a writer, in a blocking
/// thread that no cancel can reach. A missing file keeps the NOT_FOUND kind.
pub fn open_regular(path: &Path, what: &str) -> Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK has no effect on reads of regular files, the only files kept open.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    // Judged before opening too: opening some devices has effects of its own. The check
    // after opening is the one that holds if the file is swapped in between.
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_file() {
            return Err(not_regular(
                path,
                describe_file_type(meta.file_type()),
                what,
            ));
        }
    }
    let file = match options.open(path) {
        Ok(file) => file,
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(not_regular(path, "a symbolic link", what))
        }
        Err(e) => return Err(Error::io(format!("{what}: opening {}", path.display()), e)),
    };
    let kind = file
        .metadata()
        .map_err(|e| Error::io(format!("{what}: reading {}", path.display()), e))?
        .file_type();
    if kind.is_file() {
        Ok(file)
    } else {
        Err(not_regular(path, describe_file_type(kind), what))
    }
}

fn not_regular(path: &Path, is: &str, what: &str) -> Error {
    Error::invalid_format(format!(
        "{what}: {} is {is}, not a regular file; a store's files must be regular files",
        path.display()
    ))
}

fn describe_file_type(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a plain file"
    }
}

/// Makes sure `root/components…` is a chain of real directories, creating the missing
/// ones, before files are written in it; returns its path. A component that is a symbolic
/// link (or not a directory) is refused as `INVALID_FORMAT`: a link planted in a store
/// (`blobs/sha256 -> /elsewhere`) would make writes land outside it. `root` itself is the
/// caller's own path and may be a link.
pub fn real_dirs_within(root: &Path, components: &[&str], what: &str) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    for component in components {
        path.push(component);
        loop {
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_dir() => break,
                Ok(meta) => {
                    return Err(Error::invalid_format(format!(
                        "{what}: {} is {}, not a directory; refusing to write through it",
                        path.display(),
                        describe_file_type(meta.file_type())
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Made, or made first by a concurrent writer: either way, judge what
                    // is there now.
                    match fs::create_dir(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => {
                            return Err(Error::io(
                                format!("{what}: creating {}", path.display()),
                                e,
                            ))
                        }
                    }
                }
                Err(e) => return Err(Error::io(format!("{what}: reading {}", path.display()), e)),
            }
        }
    }
    Ok(path)
}

/// Reads a whole file of at most `max` bytes; `what` names it in messages. A missing file
/// keeps the NOT_FOUND kind; anything but a regular file is refused (see [`open_regular`]).
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let context = || format!("{what}: reading {}", path.display());
    let file = open_regular(path, what)?;
    let mut data = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(context(), e))?;
    if data.len() as u64 > max {
        return Err(Error::limit_exceeded(format!(
            "{what}: {} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(data)
}

/// Reads a whole input file; `what` names it in messages ("module", "CA certificates").
/// A missing file is `NOT_FOUND`, a directory `INVALID_ARGUMENT`, other failures `IO`.
pub fn read_input(path: &Path, what: &str) -> Result<Bytes> {
    if path.is_dir() {
        return Err(Error::invalid_argument(format!(
            "{what} {} is a directory, expected a file",
            path.display()
        )));
    }
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|e| Error::io(format!("{what} {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn commit_replaces_or_keeps_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        assert!(write_atomic(&target, b"one", Existing::Keep).unwrap());
        assert!(!write_atomic(&target, b"two", Existing::Keep).unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"one");
        assert!(write_atomic(&target, b"three", Existing::Replace).unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"three");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }

    #[test]
    fn bounded_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5, "test").unwrap(), b"12345");
        assert_eq!(
            read_bounded(&path, 4, "test").unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        assert_eq!(
            read_bounded(&dir.path().join("none"), 4, "test")
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn kinds_for_missing_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_input(&dir.path().join("nope"), "module")
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            read_input(dir.path(), "module").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        std::fs::write(dir.path().join("m"), b"abc").unwrap();
        assert_eq!(
            &read_input(&dir.path().join("m"), "module").unwrap()[..],
            b"abc"
        );
    }
}
