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
