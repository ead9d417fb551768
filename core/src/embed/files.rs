//! Reading the caller's own input files (modules, CA certificates), with the error kinds
//! every binding reports the same way.

use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, Result};

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
