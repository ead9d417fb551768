//! What a layout directory holds, by path: `oci-layout`, `index.json` and
//! `blobs/<alg>/<hex>`. Shared with the OCI archive, whose tar holds the same members.

use std::path::{Path, PathBuf};

use crate::digest::Digest;

pub(crate) const OCI_LAYOUT_FILE: &str = "oci-layout";
pub(crate) const INDEX_FILE: &str = "index.json";
pub(crate) const BLOBS_DIR: &str = "blobs";

pub(crate) fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(BLOBS_DIR)
        .join(digest.algorithm_name())
        .join(digest.hex())
}

/// What a path inside a layout is, judged by its components alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Member {
    /// The root, `blobs` or `blobs/<alg>`.
    Dir,
    LayoutFile,
    Index,
    Blob(Digest),
}

/// Classifies a relative path of a layout; `None` for anything a layout does not hold.
pub(crate) fn classify_member(components: &[&str]) -> Option<Member> {
    match components {
        [] | [BLOBS_DIR] => Some(Member::Dir),
        [BLOBS_DIR, "sha256" | "sha512"] => Some(Member::Dir),
        [OCI_LAYOUT_FILE] => Some(Member::LayoutFile),
        [INDEX_FILE] => Some(Member::Index),
        [BLOBS_DIR, alg, hex] => format!("{alg}:{hex}").parse().ok().map(Member::Blob),
        _ => None,
    }
}
