//! Memory a binding provides for a pulled module, so the module is written once, straight
//! into the object the caller receives (a Python `bytes`, say), and never copied after.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;

/// A buffer of exactly the module's size, filled by the library, then frozen.
pub trait ModuleBuffer: Send {
    /// The size asked for.
    fn size(&mut self) -> usize {
        self.as_mut_slice().len()
    }
    /// The bytes in `range`, about to be filled. The library asks for ranges in order as
    /// bytes arrive, so a buffer may commit its memory piece by piece (a registry that
    /// declares a huge module and sends it slowly then holds only what it sent).
    fn slice_mut(&mut self, range: std::ops::Range<usize>) -> &mut [u8] {
        &mut self.as_mut_slice()[range]
    }
    /// Writes `data` at `at`. The library writes in order, each range once, as bytes
    /// arrive; a buffer whose memory starts uninitialised can copy straight in instead of
    /// zeroing a range first only to overwrite it.
    fn fill(&mut self, at: usize, data: &[u8]) {
        self.slice_mut(at..at + data.len()).copy_from_slice(data);
    }
    /// The whole buffer; its length is the size asked for.
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// The filled buffer as `Bytes` that still own the binding's memory.
    fn freeze(self: Box<Self>) -> Bytes;
}

/// Gives a buffer of the requested size. Called on a worker thread, once the module's
/// exact size is known (and within the size limit).
pub type ModuleAllocator = Arc<dyn Fn(usize) -> Result<Box<dyn ModuleBuffer>> + Send + Sync>;
