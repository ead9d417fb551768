//! Bounds on what an image may make us read, so a hostile image cannot exhaust memory or disk.

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest module accepted (Istio's default is 256 MiB).
    pub max_module_bytes: u64,
    /// Largest manifest, index or config blob read into memory.
    pub max_metadata_bytes: u64,
    /// Most bytes decompressed from one layer while looking for the module.
    pub max_decompressed_bytes: u64,
    /// Most tar entries looked at in one layer.
    pub max_tar_entries: u64,
    /// How many indexes may point at further indexes.
    pub max_index_depth: u32,
    /// Most entries in one index, and most distinct manifests one copy moves.
    pub max_index_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_module_bytes: 256 * MIB,
            max_metadata_bytes: 4 * MIB,
            max_decompressed_bytes: 1024 * MIB,
            max_tar_entries: 10_000,
            max_index_depth: 4,
            max_index_entries: 1_000,
        }
    }
}

/// Most layers one image manifest may list. Docker stops at 127; an image listing
/// thousands is hostile, and every listed layer may cost a download.
pub const MAX_IMAGE_LAYERS: usize = 1_000;

fn memory_refused(len: u64, what: &str) -> crate::Error {
    crate::Error::limit_exceeded(format!(
        "{what} declares {len} bytes, more memory than this system grants"
    ))
}

/// An empty buffer with room for `len` bytes, for sizes an image declares: a size the
/// system cannot grant is `LIMIT_EXCEEDED` instead of aborting the process (limits may
/// have been raised to anything).
pub(crate) fn reserve_bytes(len: u64, what: &str) -> crate::Result<Vec<u8>> {
    let mut out = Vec::new();
    let len_usize = usize::try_from(len).map_err(|_| memory_refused(len, what))?;
    out.try_reserve_exact(len_usize)
        .map_err(|_| memory_refused(len, what))?;
    Ok(out)
}

/// `len` zero bytes, fallibly (see [`reserve_bytes`]). Zeroed pages come from the kernel
/// already zero, so nothing is written here, unlike reserving and then filling.
pub(crate) fn zeroed_bytes(len: u64, what: &str) -> crate::Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let len_usize = usize::try_from(len).map_err(|_| memory_refused(len, what))?;
    let layout =
        std::alloc::Layout::array::<u8>(len_usize).map_err(|_| memory_refused(len, what))?;
    // SAFETY: the layout's size is not zero.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(memory_refused(len, what));
    }
    // SAFETY: `ptr` comes from the global allocator with this layout (align 1, size
    // `len_usize`, which is the capacity), and all `len_usize` bytes are initialised.
    Ok(unsafe { Vec::from_raw_parts(ptr, len_usize, len_usize) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_memory_are_limit_exceeded_not_an_abort() {
        for len in [1u64 << 62, u64::MAX] {
            let err = zeroed_bytes(len, "a module").unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::LimitExceeded, "{err}");
            let err = reserve_bytes(len, "a config").unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::LimitExceeded, "{err}");
        }
        let zeros = zeroed_bytes(3 << 20, "a module").unwrap();
        assert_eq!(zeros.len(), 3 << 20);
        assert!(zeros.iter().all(|b| *b == 0));
        assert!(reserve_bytes(1024, "a config").unwrap().capacity() >= 1024);
    }
}
